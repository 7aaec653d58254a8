package embedrank_test

// End-to-end tests against a live embedrank server. They run only when
// EMBEDRANK_TARGET (host:port) is set; EMBEDRANK_EXPECTED must then name the
// JSON file the Python client wrote for the same inputs:
//
//	EMBEDRANK_TARGET=localhost:50051 EMBEDRANK_EXPECTED=/tmp/expected.json go test -run E2E -v ./...

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	embedrank "github.com/embedrank/embedrank/clients/go"
	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

const tolerance = 1e-5

type expected struct {
	EmbedModel  string      `json:"embed_model"`
	RerankModel string      `json:"rerank_model"`
	Texts       []string    `json:"texts"`
	Embeddings  [][]float64 `json:"embeddings"`
	Query       string      `json:"query"`
	Documents   []string    `json:"documents"`
	Rerank      []struct {
		Index int     `json:"index"`
		Score float64 `json:"score"`
	} `json:"rerank"`
	StreamBatches    [][]string    `json:"stream_batches"`
	StreamEmbeddings [][][]float64 `json:"stream_embeddings"`
	Bad              struct {
		EmptyTextsCode   *int `json:"empty_texts_code"`
		UnknownModelCode *int `json:"unknown_model_code"`
	} `json:"bad"`
	Chunked *struct {
		Texts           []string      `json:"texts"`
		Overlap         uint32        `json:"overlap"`
		Embeddings      [][]float64   `json:"embeddings"`
		ChunkEmbeddings [][]float64   `json:"chunk_embeddings"`
		Chunks          []expectChunk `json:"chunks"`
		Documents       []string      `json:"documents"`
		Rerank          []struct {
			Index      int     `json:"index"`
			Score      float64 `json:"score"`
			Span       []int   `json:"span"`
			ChunkCount int     `json:"chunk_count"`
		} `json:"rerank"`
	} `json:"chunked"`
	Kinds *struct {
		Target           string   `json:"target"`
		SparseModel      string   `json:"sparse_model"`
		MultiVectorModel string   `json:"multi_vector_model"`
		Texts            []string `json:"texts"`
		Sparse           []struct {
			Indices []uint32  `json:"indices"`
			Values  []float64 `json:"values"`
			Tokens  []string  `json:"tokens"`
		} `json:"sparse"`
		MultiVector     [][][]float64 `json:"multi_vector"`
		MultiVectorInt8 [][][]float64 `json:"multi_vector_int8"`
		Documents       []string      `json:"documents"`
		MaxSim          []struct {
			Index int     `json:"index"`
			Score float64 `json:"score"`
		} `json:"maxsim"`
	} `json:"kinds"`
}

type expectChunk struct {
	TextIndex  int    `json:"text_index"`
	Start      int    `json:"start"`
	End        int    `json:"end"`
	TokenCount int    `json:"token_count"`
	Text       string `json:"text"`
}

// e2e dials EMBEDRANK_TARGET and loads EMBEDRANK_EXPECTED, or skips.
func e2e(t *testing.T) (*embedrank.Client, *expected, context.Context) {
	t.Helper()
	target := os.Getenv("EMBEDRANK_TARGET")
	if target == "" {
		t.Skip("end-to-end test: set EMBEDRANK_TARGET=host:port of a running server and EMBEDRANK_EXPECTED=path of the Python client's expected-results JSON")
	}
	path := os.Getenv("EMBEDRANK_EXPECTED")
	if path == "" {
		t.Fatal("EMBEDRANK_TARGET is set but EMBEDRANK_EXPECTED is not: it must name the Python client's expected-results JSON")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var exp expected
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if exp.EmbedModel == "" || exp.RerankModel == "" {
		t.Fatalf("%s: embed_model or rerank_model missing", path)
	}
	c, err := embedrank.Dial(target, embedrank.WithRetry(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c, &exp, ctx
}

func checkMatrix(t *testing.T, what string, got [][]float32, want [][]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s row %d: %d dimensions, want %d", what, i, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			if d := math.Abs(float64(got[i][j]) - want[i][j]); d > tolerance {
				t.Fatalf("%s[%d][%d] = %v, want %v (diff %g)", what, i, j, got[i][j], want[i][j], d)
			}
		}
	}
}

func TestE2EEncode(t *testing.T) {
	c, exp, ctx := e2e(t)
	got, err := c.Encode(ctx, exp.EmbedModel, exp.Texts)
	if err != nil {
		t.Fatal(err)
	}
	checkMatrix(t, "embeddings", got, exp.Embeddings)
}

func TestE2ERerank(t *testing.T) {
	c, exp, ctx := e2e(t)
	got, err := c.Rerank(ctx, exp.RerankModel, exp.Query, exp.Documents)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(exp.Rerank) {
		t.Fatalf("%d results, want %d", len(got), len(exp.Rerank))
	}
	for i, want := range exp.Rerank {
		if got[i].Index != want.Index {
			t.Errorf("result %d: index %d, want %d", i, got[i].Index, want.Index)
		}
		if d := math.Abs(float64(got[i].Score) - want.Score); d > tolerance {
			t.Errorf("result %d: score %v, want %v (diff %g)", i, got[i].Score, want.Score, d)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i].Score > got[i-1].Score {
			t.Errorf("results not sorted by score: %v then %v", got[i-1].Score, got[i].Score)
		}
	}
}

func TestE2EEncodeStream(t *testing.T) {
	c, exp, ctx := e2e(t)
	if len(exp.StreamBatches) != len(exp.StreamEmbeddings) {
		t.Fatalf("expected JSON: %d stream_batches, %d stream_embeddings", len(exp.StreamBatches), len(exp.StreamEmbeddings))
	}
	res, err := c.EncodeStream(ctx, exp.EmbedModel, exp.StreamBatches)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(exp.StreamBatches) {
		t.Fatalf("%d results for %d batches", len(res), len(exp.StreamBatches))
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("batch %d: %v", i, r.Err)
		}
		checkMatrix(t, "stream batch", r.Result.Embeddings, exp.StreamEmbeddings[i])
	}
}

// A bad item of a stream gets its own error; the items around it succeed.
func TestE2EEncodeStreamItemError(t *testing.T) {
	c, exp, ctx := e2e(t)
	one := exp.Texts[:1]
	res, err := c.EncodeStream(ctx, exp.EmbedModel, [][]string{one, {}, one})
	if err != nil {
		t.Fatal(err)
	}
	var e *embedrank.Error
	if !errors.As(res[1].Err, &e) || e.Code != codes.InvalidArgument {
		t.Errorf("empty batch: %v, want InvalidArgument", res[1].Err)
	}
	for _, i := range []int{0, 2} {
		if res[i].Err != nil {
			t.Fatalf("batch %d: %v", i, res[i].Err)
		}
		checkMatrix(t, "stream batch", res[i].Result.Embeddings, exp.Embeddings[:1])
	}
}

func TestE2EErrors(t *testing.T) {
	c, exp, ctx := e2e(t)
	if p := exp.Bad.EmptyTextsCode; p != nil && codes.Code(*p) != codes.InvalidArgument {
		t.Errorf("the Python client got code %d for empty texts, want %d", *p, codes.InvalidArgument)
	}
	if p := exp.Bad.UnknownModelCode; p != nil && codes.Code(*p) != codes.NotFound {
		t.Errorf("the Python client got code %d for an unknown model, want %d", *p, codes.NotFound)
	}

	_, err := c.Encode(ctx, exp.EmbedModel, []string{})
	var e *embedrank.Error
	if !errors.As(err, &e) {
		t.Fatalf("empty texts: got %v, want an *embedrank.Error", err)
	}
	if e.Code != codes.InvalidArgument || !strings.Contains(e.Message, "texts") {
		t.Errorf("empty texts: code %v message %q, want InvalidArgument mentioning \"texts\"", e.Code, e.Message)
	}

	_, err = c.Encode(ctx, "no-such-model", exp.Texts[:1])
	if !errors.As(err, &e) || e.Code != codes.NotFound {
		t.Errorf("unknown model: got %v, want NotFound", err)
	}
}

func TestE2EListModels(t *testing.T) {
	c, exp, ctx := e2e(t)
	resp, err := pb.NewModelsClient(c.Conn()).ListModels(ctx, &pb.ListModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]pb.ModelKind{}
	for _, m := range resp.GetModels() {
		kinds[m.GetName()] = m.GetKind()
		if m.GetName() == exp.EmbedModel && len(exp.Embeddings) > 0 && int(m.GetDimensions()) != len(exp.Embeddings[0]) {
			t.Errorf("%s: dimensions %d, embeddings have %d", m.GetName(), m.GetDimensions(), len(exp.Embeddings[0]))
		}
	}
	for name, kind := range map[string]pb.ModelKind{
		exp.EmbedModel:  pb.ModelKind_MODEL_KIND_EMBEDDING,
		exp.RerankModel: pb.ModelKind_MODEL_KIND_RERANK,
	} {
		got, ok := kinds[name]
		if !ok {
			t.Errorf("ListModels lacks %q (has %v)", name, kinds)
		} else if got != kind {
			t.Errorf("%s: kind %v, want %v", name, got, kind)
		}
	}
}

// long_input CHUNK: the same vectors, windows and spans as the Python client
// (spans are code points: the texts hold a multi-byte emoji).
func TestE2EChunks(t *testing.T) {
	c, exp, ctx := e2e(t)
	ch := exp.Chunked
	if ch == nil {
		t.Fatal("expected JSON has no \"chunked\" section")
	}
	r, err := c.EncodeFull(ctx, exp.EmbedModel, ch.Texts,
		embedrank.LongInputs(embedrank.LongInputChunk), embedrank.ChunkOverlap(ch.Overlap), embedrank.ReturnChunks())
	if err != nil {
		t.Fatal(err)
	}
	checkMatrix(t, "chunked embeddings", r.Embeddings, ch.Embeddings)
	checkMatrix(t, "chunk embeddings", r.ChunkEmbeddings, ch.ChunkEmbeddings)
	if len(r.Chunks) != len(ch.Chunks) || len(r.Chunks) < 3 {
		t.Fatalf("%d chunks, want %d (at least 3)", len(r.Chunks), len(ch.Chunks))
	}
	for i, want := range ch.Chunks {
		got := r.Chunks[i]
		if got.TextIndex != want.TextIndex || got.Span.Start != want.Start || got.Span.End != want.End || got.TokenCount != want.TokenCount {
			t.Errorf("chunk %d: %+v, want %+v", i, got, want)
		}
		if text := got.Text(ch.Texts); text != want.Text {
			t.Errorf("chunk %d text %q, want %q", i, text, want.Text)
		}
	}

	hits, err := c.Rerank(ctx, exp.RerankModel, exp.Query, ch.Documents,
		embedrank.LongInputs(embedrank.LongInputChunk), embedrank.ChunkOverlap(16))
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != len(ch.Rerank) {
		t.Fatalf("%d results, want %d", len(hits), len(ch.Rerank))
	}
	for i, want := range ch.Rerank {
		got := hits[i]
		if got.Index != want.Index || got.ChunkCount != want.ChunkCount || got.Span == nil ||
			got.Span.Start != want.Span[0] || got.Span.End != want.Span[1] {
			t.Errorf("result %d: %+v (span %v), want %+v", i, got, got.Span, want)
		}
		if d := math.Abs(float64(got.Score) - want.Score); d > tolerance {
			t.Errorf("result %d: score %v, want %v", i, got.Score, want.Score)
		}
	}
}

// TestE2ESparseAndMultiVector: EncodeSparse (top_k, tokens), EncodeMultiVector
// (queries) and MaxSim Rerank on the second server, which serves those kinds.
func TestE2ESparseAndMultiVector(t *testing.T) {
	_, exp, ctx := e2e(t)
	k := exp.Kinds
	if k == nil {
		t.Fatal("expected-results JSON has no kinds section")
	}
	c, err := embedrank.Dial(k.Target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sparse, err := c.EncodeSparse(ctx, k.SparseModel, k.Texts, embedrank.SparseTopK(10), embedrank.SparseReturnTokens())
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range k.Sparse {
		got := sparse[i]
		if len(got.Indices) != len(want.Indices) || strings.Join(got.Tokens, " ") != strings.Join(want.Tokens, " ") {
			t.Fatalf("sparse %d: %v %v, want %v %v", i, got.Indices, got.Tokens, want.Indices, want.Tokens)
		}
		for j := range want.Indices {
			if got.Indices[j] != want.Indices[j] || math.Abs(float64(got.Values[j])-want.Values[j]) > tolerance {
				t.Fatalf("sparse %d[%d] = (%d, %v), want (%d, %v)", i, j, got.Indices[j], got.Values[j], want.Indices[j], want.Values[j])
			}
		}
	}
	multi, err := c.EncodeMultiVector(ctx, k.MultiVectorModel, k.Texts, embedrank.MultiVectorInput(embedrank.InputQuery))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range k.MultiVector {
		checkMatrix(t, "multi-vector", multi[i], want)
	}
	hits, err := c.Rerank(ctx, k.MultiVectorModel, exp.Query, k.Documents)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range k.MaxSim {
		if hits[i].Index != want.Index || math.Abs(float64(hits[i].Score)-want.Score) > 1e-4 {
			t.Fatalf("maxsim hit %d = %+v, want %+v", i, hits[i], want)
		}
	}
	_, err = c.EncodeSparse(ctx, k.MultiVectorModel, k.Texts)
	var e *embedrank.Error
	if !errors.As(err, &e) || e.Code != codes.FailedPrecondition || !strings.Contains(e.Message, "MultiVectorEmbed.EncodeMultiVector") {
		t.Fatalf("EncodeSparse on a multi-vector model: %v", err)
	}
}

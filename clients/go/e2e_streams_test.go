package embedrank_test

import (
	"errors"
	"math"
	"testing"

	"google.golang.org/grpc/codes"

	embedrank "github.com/embedrank/embedrank/clients/go"
	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

// wantInvalid checks that a stream item failed on its own with InvalidArgument naming field.
func wantInvalid(t *testing.T, what string, err error, field string) {
	t.Helper()
	var e *embedrank.Error
	if !errors.As(err, &e) || e.Code != codes.InvalidArgument || e.Field != field {
		t.Errorf("%s: %v, want InvalidArgument on %q", what, err, field)
	}
}

// ClassifyStream and TokenizeStream on the first server: per batch the
// Python client's unary answers, in order; an empty batch fails alone.
func TestE2EClassifyAndTokenizeStreams(t *testing.T) {
	c, _, ctx := e2e(t)
	k := loadKinds(t)
	pairs := make([]embedrank.Pair, len(k.Pairs))
	for i, p := range k.Pairs {
		pairs[i] = embedrank.Pair{First: p[0], Second: p[1]}
	}
	classified, err := c.ClassifyPairsStream(ctx, k.ClassifyModel, [][]embedrank.Pair{pairs[:1], {}, pairs[1:]})
	if err != nil {
		t.Fatal(err)
	}
	if len(classified) != 3 {
		t.Fatalf("%d results for 3 batches", len(classified))
	}
	wantInvalid(t, "empty classify batch", classified[1].Err, "texts")
	var got []embedrank.Classification
	for _, i := range []int{0, 2} {
		if classified[i].Err != nil {
			t.Fatalf("classify batch %d: %v", i, classified[i].Err)
		}
		got = append(got, classified[i].Result...)
	}
	if len(got) != len(k.Classify) {
		t.Fatalf("%d classifications, want %d", len(got), len(k.Classify))
	}
	for i, want := range k.Classify {
		for j, w := range want {
			g := got[i].Labels[j]
			if g.Index != w.Index || math.Abs(float64(g.Score)-w.Score) > tolerance {
				t.Errorf("stream input %d label %d: %+v, want %+v", i, j, g, w)
			}
		}
	}
	batches := [][]string{k.TokenizeTexts[:1], {}, k.TokenizeTexts[1:]}
	tokenized, err := c.TokenizeStream(ctx, k.TokenizeModel, batches, embedrank.TokenizeAs(pb.InputType_INPUT_TYPE_QUERY))
	if err != nil {
		t.Fatal(err)
	}
	wantInvalid(t, "empty tokenize batch", tokenized[1].Err, "texts")
	for n, i := range []int{0, 2} {
		if tokenized[i].Err != nil {
			t.Fatalf("tokenize batch %d: %v", i, tokenized[i].Err)
		}
		in := tokenized[i].Result.Inputs[0]
		want := k.Tokenize[n]
		if in.Prompt != want.Prompt || len(in.Tokens) != len(want.IDs) {
			t.Fatalf("tokenize batch %d: %d tokens, prompt %q; want %d, %q", i, len(in.Tokens), in.Prompt, len(want.IDs), want.Prompt)
		}
		for j, id := range in.IDs() {
			if id != want.IDs[j] {
				t.Errorf("tokenize batch %d token %d: id %d, want %d", i, j, id, want.IDs[j])
			}
		}
	}
}

// EncodeSparseStream and EncodeMultiVectorStream (float32 and int8) on the
// second server, and int8 multi-vector on the wire: the Python client's bytes.
func TestE2ESparseAndMultiVectorStreams(t *testing.T) {
	_, exp, ctx := e2e(t)
	k := exp.Kinds
	if k == nil || len(k.MultiVectorInt8) != len(k.Texts) {
		t.Fatal("expected-results JSON has no kinds.multi_vector_int8")
	}
	c, err := embedrank.Dial(k.Target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	batches := [][]string{k.Texts[:1], {}, k.Texts[1:]}
	sparse, err := c.EncodeSparseStream(ctx, k.SparseModel, batches, embedrank.SparseTopK(10), embedrank.SparseReturnTokens())
	if err != nil {
		t.Fatal(err)
	}
	wantInvalid(t, "empty sparse batch", sparse[1].Err, "texts")
	var vecs []embedrank.SparseVector
	for _, i := range []int{0, 2} {
		if sparse[i].Err != nil {
			t.Fatalf("sparse batch %d: %v", i, sparse[i].Err)
		}
		vecs = append(vecs, sparse[i].Result...)
	}
	for i, want := range k.Sparse {
		if len(vecs[i].Indices) != len(want.Indices) {
			t.Fatalf("sparse %d: %v, want %v", i, vecs[i].Indices, want.Indices)
		}
		for j := range want.Indices {
			if vecs[i].Indices[j] != want.Indices[j] || math.Abs(float64(vecs[i].Values[j])-want.Values[j]) > tolerance {
				t.Fatalf("sparse %d[%d] = (%d, %v), want (%d, %v)", i, j, vecs[i].Indices[j], vecs[i].Values[j], want.Indices[j], want.Values[j])
			}
		}
	}
	query := embedrank.MultiVectorInput(embedrank.InputQuery)
	for _, p := range []embedrank.Precision{embedrank.PrecisionFloat32, embedrank.PrecisionInt8} {
		multi, err := c.EncodeMultiVectorStream(ctx, k.MultiVectorModel, batches, query, embedrank.MultiVectorPrecision(p))
		if err != nil {
			t.Fatal(err)
		}
		wantInvalid(t, "empty multi-vector batch", multi[1].Err, "texts")
		text := 0
		for _, i := range []int{0, 2} {
			if multi[i].Err != nil {
				t.Fatalf("multi-vector batch %d (%v): %v", i, p, multi[i].Err)
			}
			for n := range batches[i] {
				if p == embedrank.PrecisionFloat32 {
					checkMatrix(t, "multi-vector stream", multi[i].Result.Vectors[n], k.MultiVector[text])
				} else {
					checkInt8(t, multi[i].Result.Quantized[n], k.MultiVectorInt8[text])
				}
				text++
			}
		}
	}
	q, err := c.EncodeMultiVectorQuantized(ctx, k.MultiVectorModel, k.Texts, embedrank.PrecisionInt8, query)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range k.MultiVectorInt8 {
		checkInt8(t, q[i], want)
	}
	if _, err := c.EncodeMultiVectorQuantized(ctx, k.MultiVectorModel, k.Texts, pb.Precision(42)); err == nil {
		t.Error("EncodeMultiVectorQuantized took precision 42")
	}
	_, err = c.EncodeMultiVectorFull(ctx, k.MultiVectorModel, k.Texts, embedrank.MultiVectorPrecision(pb.Precision(42)))
	wantInvalid(t, "precision 42", err, "precision")
}

func checkInt8(t *testing.T, got *embedrank.QuantizedEmbeddings, want [][]float64) {
	t.Helper()
	if got.Precision != embedrank.PrecisionInt8 || got.Rows != len(want) || got.RowBytes() != len(want[0]) {
		t.Fatalf("int8 matrix %d x %d bytes (%v), want %d x %d", got.Rows, got.RowBytes(), got.Precision, len(want), len(want[0]))
	}
	for r := range want {
		for d, v := range got.Int8(r) {
			if float64(v) != want[r][d] {
				t.Fatalf("int8[%d][%d] = %d, want %v", r, d, v, want[r][d])
			}
		}
	}
}

package embedrank

// Unit tests: no embedrank server needed. The client is exercised against
// an in-process fake of the three services over bufconn.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

func packFloat32(rows [][]float32) []byte {
	var b []byte
	for _, r := range rows {
		for _, v := range r {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return b
}

func TestDecodeFloat32(t *testing.T) {
	want := [][]float32{{1, -2.5, 3}, {float32(math.Inf(1)), 0, 1e-7}}
	got, err := DecodeFloat32(&pb.Embeddings{Rows: 2, Dimensions: 3, Data: packFloat32(want)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Rows must not share capacity: appending to one leaves the next alone.
	_ = append(got[0], 42)
	if got[1][0] != want[1][0] {
		t.Fatal("append to row 0 overwrote row 1")
	}
	empty, err := DecodeFloat32(&pb.Embeddings{Precision: PrecisionFloat32})
	if err != nil || len(empty) != 0 {
		t.Fatalf("empty matrix: %v, %v", empty, err)
	}
	for _, bad := range []*pb.Embeddings{
		{Rows: 2, Dimensions: 3, Data: make([]byte, 23)},
		{Rows: 1, Dimensions: 1, Data: make([]byte, 4), Precision: PrecisionInt8},
	} {
		if _, err := DecodeFloat32(bad); err == nil {
			t.Errorf("DecodeFloat32(%v): no error", bad)
		}
	}
}

func TestDecodeQuantized(t *testing.T) {
	// 10 dimensions, positive at 0, 2 and 9: numpy.packbits gives
	// 0b10100000 0b01000000 = 0xA0 0x40; binary stores those minus 128.
	ub, err := DecodeQuantized(&pb.Embeddings{Precision: PrecisionUbinary, Rows: 1, Dimensions: 10, Data: []byte{0xA0, 0x40}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeQuantized(&pb.Embeddings{Precision: PrecisionBinary, Rows: 1, Dimensions: 10, Data: []byte{0x20, 0xC0}})
	if err != nil {
		t.Fatal(err)
	}
	if ub.RowBytes() != 2 || b.RowBytes() != 2 {
		t.Fatalf("RowBytes %d %d, want 2", ub.RowBytes(), b.RowBytes())
	}
	wantBits := []bool{true, false, true, false, false, false, false, false, false, true}
	if got := ub.Bits(0); !slices.Equal(got, wantBits) {
		t.Errorf("ubinary bits %v, want %v", got, wantBits)
	}
	if got := b.Bits(0); !slices.Equal(got, wantBits) {
		t.Errorf("binary bits %v, want %v", got, wantBits)
	}
	if got := b.Int8(0); !slices.Equal(got, []int8{32, -64}) {
		t.Errorf("binary Int8 %v", got)
	}
	if got := ub.Uint8(0); !slices.Equal(got, []uint8{0xA0, 0x40}) {
		t.Errorf("ubinary Uint8 %v", got)
	}
	if b.Uint8(0) != nil || ub.Int8(0) != nil || b.Row(1) != nil || b.Row(-1) != nil {
		t.Error("wrong-type or out-of-range view is not nil")
	}

	i8, err := DecodeQuantized(&pb.Embeddings{Precision: PrecisionInt8, Rows: 2, Dimensions: 2, Data: []byte{0x01, 0xFF, 0x80, 0x7F}})
	if err != nil {
		t.Fatal(err)
	}
	if got := i8.Int8(1); !slices.Equal(got, []int8{-128, 127}) {
		t.Errorf("int8 row 1 %v", got)
	}
	if i8.Bits(0) != nil {
		t.Error("Bits of int8 is not nil")
	}

	for _, bad := range []*pb.Embeddings{
		{Precision: PrecisionUbinary, Rows: 2, Dimensions: 9, Data: make([]byte, 3)},
		{Precision: PrecisionUint8, Rows: 2, Dimensions: 9, Data: make([]byte, 17)},
		{Precision: PrecisionFloat32, Rows: 1, Dimensions: 1, Data: make([]byte, 4)},
	} {
		if _, err := DecodeQuantized(bad); err == nil {
			t.Errorf("DecodeQuantized(%v): no error", bad)
		}
	}
}

func TestEncodeOptions(t *testing.T) {
	req, err := buildEncodeRequest("m", []string{"a"}, []EncodeOption{
		AsQuery(), PromptName("p"), Normalize(false), Dimensions(64),
		Truncate(TruncationNone), OutputPrecision(PrecisionUbinary),
	})
	if err != nil {
		t.Fatal(err)
	}
	if req.GetModel() != "m" || req.GetInputType() != pb.InputType_INPUT_TYPE_QUERY ||
		req.GetPromptName() != "p" || req.Normalize == nil || req.GetNormalize() ||
		req.GetDimensions() != 64 || req.GetTruncation() != TruncationNone ||
		req.GetPrecision() != PrecisionUbinary {
		t.Fatalf("request %v", req)
	}
	req, _ = buildEncodeRequest("m", nil, []EncodeOption{AsDocument()})
	if req.Normalize != nil || req.GetInputType() != pb.InputType_INPUT_TYPE_DOCUMENT {
		t.Fatalf("request %v", req)
	}
	if _, err := buildEncodeRequest("m", nil, []EncodeOption{Dimensions(-1)}); err == nil {
		t.Error("Dimensions(-1): no error")
	}
}

func TestRerankOptions(t *testing.T) {
	req := buildRerankRequest("m", "q", []string{"d"}, []RerankOption{TopK(3), ReturnDocuments(), RawScores(), Truncate(TruncationStart)})
	if req.TopK == nil || req.GetTopK() != 3 || !req.GetReturnDocuments() ||
		req.GetScores() != pb.ScoreMode_SCORE_MODE_RAW || req.GetTruncation() != TruncationStart {
		t.Fatalf("request %v", req)
	}
	if req := buildRerankRequest("m", "q", nil, []RerankOption{TopK(0)}); req.TopK == nil || *req.TopK != 0 {
		t.Error("TopK(0) must be sent as set")
	}
	if req := buildRerankRequest("m", "q", nil, nil); req.TopK != nil {
		t.Error("TopK set without the option")
	}
	if req := buildRerankRequest("m", "q", nil, []RerankOption{TopK(math.MaxInt64)}); req.GetTopK() != math.MaxInt32 {
		t.Errorf("TopK(MaxInt64) = %d", req.GetTopK())
	}
}

func TestRetryServiceConfig(t *testing.T) {
	sc, err := retryServiceConfig(4)
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		MethodConfig []struct {
			Name []struct {
				Service string `json:"service"`
			} `json:"name"`
			RetryPolicy struct {
				MaxAttempts          int      `json:"maxAttempts"`
				RetryableStatusCodes []string `json:"retryableStatusCodes"`
			} `json:"retryPolicy"`
		} `json:"methodConfig"`
	}
	if err := json.Unmarshal([]byte(sc), &parsed); err != nil {
		t.Fatalf("invalid JSON %s: %v", sc, err)
	}
	mc := parsed.MethodConfig
	if len(mc) != 1 || mc[0].RetryPolicy.MaxAttempts != 4 || !slices.Equal(mc[0].RetryPolicy.RetryableStatusCodes, []string{"UNAVAILABLE"}) {
		t.Fatalf("service config %s", sc)
	}
	var names []string
	for _, n := range mc[0].Name {
		names = append(names, n.Service)
	}
	if !slices.Equal(names, []string{"embedrank.v1.Embed", "embedrank.v1.Rerank", "embedrank.v1.Models", "embedrank.v1.Tokenize", "embedrank.v1.Classify", "embedrank.v1.SparseEmbed", "embedrank.v1.MultiVectorEmbed"}) {
		t.Fatalf("services %v", names)
	}
	// gRPC itself must accept it: NewClient parses the default service config.
	cc, err := grpc.NewClient("passthrough:///x", grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultServiceConfig(sc))
	if err != nil {
		t.Fatalf("grpc rejects the service config: %v", err)
	}
	cc.Close()
}

func TestDialOptions(t *testing.T) {
	if _, err := Dial(""); err == nil {
		t.Error("Dial(\"\"): no error")
	}
	c, err := Dial("localhost:1", WithTLS(nil), WithInsecure(), WithBearerToken("t"), WithRetry(3), WithDefaultTimeout(time.Second), WithStreamWindow(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.streamWindow != 1 {
		t.Errorf("stream window %d, want 1", c.streamWindow)
	}
	cfg := defaultConfig()
	WithTLS(nil)(&cfg)
	if cfg.tls == nil {
		t.Error("WithTLS(nil) left the connection plaintext")
	}
}

func TestErrorType(t *testing.T) {
	err := wrapErr(status.Error(codes.NotFound, "no model \"x\""))
	var e *Error
	if !errors.As(err, &e) || e.Code != codes.NotFound || e.Message != `no model "x"` {
		t.Fatalf("wrapErr: %#v", err)
	}
	if status.Code(err) != codes.NotFound {
		t.Errorf("status.Code = %v", status.Code(err))
	}
	if !strings.Contains(err.Error(), "NotFound") {
		t.Errorf("Error() = %q", err.Error())
	}
	se := streamErr(&pb.StreamError{Code: 3, Message: "empty", Field: "texts"})
	if se.Code != codes.InvalidArgument || status.Code(se) != codes.InvalidArgument || !strings.Contains(se.Error(), "texts") {
		t.Errorf("streamErr: %v", se)
	}
	if err := wrapErr(io.ErrUnexpectedEOF); err != io.ErrUnexpectedEOF {
		t.Errorf("non-status error changed: %v", err)
	}
}

func TestEncodeFake(t *testing.T) {
	f, dial := startFake(t)
	c := dial(WithBearerToken("s3cret"))
	ctx := context.Background()
	texts := []string{"a", "bbb"}
	got, err := c.Encode(ctx, "e", texts, Normalize(true))
	if err != nil {
		t.Fatal(err)
	}
	for i, txt := range texts {
		if !slices.Equal(got[i], fakeVector(txt, i)) {
			t.Errorf("row %d: %v", i, got[i])
		}
	}
	if !slices.Equal(f.auth, []string{"Bearer s3cret"}) {
		t.Errorf("authorization %v", f.auth)
	}

	full, err := c.EncodeFull(ctx, "e", texts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(full.TokenCounts, []uint32{1, 3}) || len(full.Truncated) != 2 || full.Metadata.GetRequestId() != "r1" || full.Quantized != nil {
		t.Errorf("EncodeFull %+v", full)
	}

	q, err := c.EncodeQuantized(ctx, "e", texts, PrecisionInt8)
	if err != nil {
		t.Fatal(err)
	}
	if q.Rows != 2 || q.Dimensions != 3 || !slices.Equal(q.Int8(1), []int8{3, 1, -1}) {
		t.Errorf("int8 %+v", q)
	}
	q, err = c.EncodeQuantized(ctx, "e", texts, PrecisionUbinary)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(q.Bits(0), []bool{true, false, false}) || !slices.Equal(q.Bits(1), []bool{true, true, false}) {
		t.Errorf("ubinary %+v", q)
	}
	if _, err := c.EncodeQuantized(ctx, "e", texts, PrecisionFloat32); err == nil {
		t.Error("EncodeQuantized(float32): no error")
	}
}

func TestEncodeErrorsFake(t *testing.T) {
	_, dial := startFake(t)
	c := dial()
	ctx := context.Background()
	_, err := c.Encode(ctx, "e", nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != codes.InvalidArgument || !strings.Contains(e.Message, "texts") {
		t.Errorf("empty texts: %v", err)
	}
	if _, err := c.Encode(ctx, "no-such-model", []string{"a"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown model: %v", err)
	}
	_, err = c.Encode(ctx, "detailed", []string{"a", "b"})
	if !errors.As(err, &e) || e.Field != "texts[1]" {
		t.Errorf("BadRequest detail: %v", err)
	}
	if _, err := c.Encode(ctx, "e", []string{"a"}, Dimensions(-3)); err == nil {
		t.Error("Dimensions(-3): no error")
	}
}

func TestDefaultTimeout(t *testing.T) {
	_, dial := startFake(t)
	c := dial(WithDefaultTimeout(50 * time.Millisecond))
	start := time.Now()
	_, err := c.Encode(context.Background(), "slow", []string{"a"})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	// A deadline of the caller's own wins over the default.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c.Encode(ctx, "slow", []string{"a"})
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) < 250*time.Millisecond {
		t.Errorf("own deadline: %v after %v", err, time.Since(start))
	}
	// Streams get the default timeout too, and still work within it.
	if _, err := c.EncodeStream(context.Background(), "e", [][]string{{"a"}}); err != nil {
		t.Errorf("stream under default timeout: %v", err)
	}
}

func TestRetry(t *testing.T) {
	f, dial := startFake(t)
	f.flakyLeft = 2
	if _, err := dial().Encode(context.Background(), "flaky", []string{"a"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("without retry: %v", err)
	}
	f.flakyLeft, f.calls = 2, 0
	if _, err := dial(WithRetry(3)).Encode(context.Background(), "flaky", []string{"a"}); err != nil {
		t.Fatalf("with retry: %v", err)
	}
	if f.calls != 3 {
		t.Errorf("%d calls, want 3", f.calls)
	}
}

func TestRerankFake(t *testing.T) {
	_, dial := startFake(t)
	c := dial()
	docs := []string{"aa", "aaaa", "a", "aaa"}
	res, err := c.Rerank(context.Background(), "r", "q", docs, TopK(2), ReturnDocuments())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Index != 1 || res[1].Index != 3 || res[0].Document != "aaaa" ||
		math.Abs(float64(res[0].Score)-0.04) > 1e-6 || res[0].TokenCount != 4 {
		t.Fatalf("results %+v", res)
	}
	full, err := c.RerankFull(context.Background(), "r", "q", docs, RawScores())
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Results) != 4 || full.Results[0].Document != "" || math.Abs(float64(full.Results[0].Score)-0.4) > 1e-6 || full.Metadata.GetModel() != "r" {
		t.Fatalf("full %+v", full)
	}
	if _, err := c.Rerank(context.Background(), "r", "q", docs, TopK(-1)); status.Code(err) != codes.InvalidArgument {
		t.Errorf("TopK(-1): %v", err)
	}
}

func TestEncodeStreamFake(t *testing.T) {
	f, dial := startFake(t)
	c := dial(WithStreamWindow(4))
	var batches [][]string
	for i := range 30 {
		b := []string{strings.Repeat("x", i), "y"}
		if i == 7 {
			b = nil // the server refuses it; the stream goes on
		}
		batches = append(batches, b)
	}
	res, err := c.EncodeStream(context.Background(), "e", batches)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(batches) {
		t.Fatalf("%d results for %d batches", len(res), len(batches))
	}
	for i, r := range res {
		if i == 7 {
			var e *Error
			if !errors.As(r.Err, &e) || e.Code != codes.InvalidArgument || e.Field != "texts" || r.Result != nil {
				t.Errorf("batch 7: %+v", r)
			}
			continue
		}
		if r.Err != nil {
			t.Fatalf("batch %d: %v", i, r.Err)
		}
		for j, txt := range batches[i] {
			if !slices.Equal(r.Result.Embeddings[j], fakeVector(txt, j)) {
				t.Errorf("batch %d row %d: %v", i, j, r.Result.Embeddings[j])
			}
		}
	}
	f.mu.Lock()
	inFlight := f.maxInFlight
	f.mu.Unlock()
	if inFlight > 4 || inFlight < 2 {
		t.Errorf("at most %d requests in flight, want 2 to 4 (window 4)", inFlight)
	}

	if res, err := c.EncodeStream(context.Background(), "e", nil); err != nil || len(res) != 0 {
		t.Errorf("no batches: %v %v", res, err)
	}
	if _, err := c.EncodeStream(context.Background(), "bad-ids", batches[:3]); err == nil || !strings.Contains(err.Error(), "id") {
		t.Errorf("mismatched ids: %v", err)
	}
	stop := errors.New("stop")
	n := 0
	err = c.EncodeStreamEach(context.Background(), "e", batches, func(i int, r EncodeStreamResult) error {
		if i != n {
			t.Errorf("result %d out of order, want %d", i, n)
		}
		n++
		if i == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 {
		t.Errorf("EncodeStreamEach stopped with %v after %d", err, n)
	}
}

func TestRerankStreamFake(t *testing.T) {
	_, dial := startFake(t)
	c := dial()
	res, err := c.RerankStream(context.Background(), "r", []RerankQuery{
		{Query: "q1", Documents: []string{"a", "aaa"}},
		{Query: "q2", Documents: []string{"aaa", "a", "aa"}},
	}, TopK(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Err != nil || res[1].Err != nil ||
		res[0].Result.Results[0].Index != 1 || res[1].Result.Results[0].Index != 0 || len(res[1].Result.Results) != 1 {
		t.Fatalf("results %+v", res)
	}
	res, err = c.RerankStream(context.Background(), "r", []RerankQuery{{Query: "q", Documents: []string{"a"}}}, TopK(-1))
	if err != nil || status.Code(res[0].Err) != codes.InvalidArgument {
		t.Fatalf("item error: %+v %v", res, err)
	}
}

func TestModelsFake(t *testing.T) {
	_, dial := startFake(t)
	c := dial()
	ms, err := c.ListModels(context.Background())
	if err != nil || len(ms) != 2 || ms[0].GetName() != "e" {
		t.Fatalf("ListModels: %v %v", ms, err)
	}
	if _, err := c.GetModel(context.Background(), "zz"); status.Code(err) != codes.NotFound {
		t.Errorf("GetModel: %v", err)
	}
	// The generated clients work on Conn with the same options.
	if _, err := pb.NewModelsClient(c.Conn()).GetModel(context.Background(), &pb.GetModelRequest{Name: "e"}); err != nil {
		t.Error(err)
	}
}

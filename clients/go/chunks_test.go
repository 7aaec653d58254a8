package embedrank

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"

	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

func TestChunkOptions(t *testing.T) {
	req, err := buildEncodeRequest("m", []string{"a"}, []EncodeOption{LongInputs(LongInputChunk), ChunkOverlap(0), ReturnChunks()})
	if err != nil {
		t.Fatal(err)
	}
	if req.GetLongInput() != LongInputChunk || req.ChunkOverlap == nil || req.GetChunkOverlap() != 0 || !req.GetReturnChunks() {
		t.Fatalf("request %v", req)
	}
	req, _ = buildEncodeRequest("m", nil, nil)
	if req.GetLongInput() != pb.LongInput_LONG_INPUT_UNSPECIFIED || req.ChunkOverlap != nil || req.GetReturnChunks() {
		t.Fatalf("defaults %v", req)
	}
	r := buildRerankRequest("m", "q", []string{"d"}, []RerankOption{ChunkOverlap(16), LongInputs(LongInputChunk)})
	if r.GetLongInput() != LongInputChunk || r.GetChunkOverlap() != 16 {
		t.Fatalf("rerank request %v", r)
	}
}

func TestSpanOf(t *testing.T) {
	text := "né 😀 ok" // n, é (2 bytes), space, emoji (4 bytes, 2 UTF-16 units), space, o, k
	for _, c := range []struct {
		span Span
		want string
	}{
		{Span{0, 2}, "né"},
		{Span{3, 4}, "😀"},
		{Span{5, 7}, "ok"},
		{Span{0, 7}, text},
		{Span{5, 99}, "ok"},
		{Span{7, 7}, ""},
		{Span{9, 12}, ""},
		{Span{4, 2}, ""},
	} {
		if got := c.span.Of(text); got != c.want {
			t.Errorf("%v.Of(%q) = %q, want %q", c.span, text, got, c.want)
		}
	}
}

func floats(rows ...[]float32) []byte {
	var b []byte
	for _, r := range rows {
		for _, v := range r {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return b
}

func TestDecodeChunks(t *testing.T) {
	req := &pb.EncodeRequest{Texts: []string{"short", "a long text"}, LongInput: LongInputChunk, ReturnChunks: true}
	resp := &pb.EncodeResponse{
		Embeddings:  &pb.Embeddings{Rows: 2, Dimensions: 2, Data: floats([]float32{1, 0}, []float32{0, 1})},
		TokenCounts: []uint32{3, 9},
		ChunkCounts: []uint32{1, 2},
		ChunkEmbeddings: &pb.Embeddings{Rows: 3, Dimensions: 2,
			Data: floats([]float32{1, 0}, []float32{0.6, 0.8}, []float32{-0.6, 0.8})},
		Chunks: []*pb.TextChunk{
			{TextIndex: 0, Span: &pb.Span{Start: 0, End: 5}, TokenCount: 3},
			{TextIndex: 1, Span: &pb.Span{Start: 0, End: 6}, TokenCount: 4},
			{TextIndex: 1, Span: &pb.Span{Start: 2, End: 11}, TokenCount: 5},
		},
	}
	r, err := decodeResponse(resp, req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.ChunkCounts, []uint32{1, 2}) || len(r.Chunks) != 3 || len(r.ChunkEmbeddings) != 3 {
		t.Fatalf("decoded %+v", r)
	}
	if c := r.Chunks[2]; c.TextIndex != 1 || c.TokenCount != 5 || c.Text(req.Texts) != "long text" {
		t.Errorf("chunk 2: %+v %q", c, c.Text(req.Texts))
	}
	if !slices.Equal(r.ChunkEmbeddings[1], []float32{0.6, 0.8}) {
		t.Errorf("chunk row 1: %v", r.ChunkEmbeddings[1])
	}

	resp.Chunks[2].TextIndex = 2
	if _, err := decodeResponse(resp, req); err == nil {
		t.Error("a chunk naming a text that does not exist: no error")
	}
	resp.Chunks[2].TextIndex = 1
	resp.ChunkEmbeddings.Rows = 2
	if _, err := decodeResponse(resp, req); err == nil {
		t.Error("2 chunk rows for 3 chunks: no error")
	}
}

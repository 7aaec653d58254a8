package embedrank

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

// LongInput says what the server does with an input longer than the
// model's window (max_tokens).
type LongInput = pb.LongInput

// Long-input modes; the server's default is LongInputTruncate.
const (
	// Cut it as Truncate says: one model input per text or pair.
	LongInputTruncate = pb.LongInput_LONG_INPUT_TRUNCATE
	// Split it into overlapping token windows of the model's max_tokens and
	// run them all. Encode: a text's vector is the token-weighted mean of its
	// windows' vectors. Rerank: a document gets its best window's score
	// (MaxP) and RerankResult.Span names that window.
	LongInputChunk = pb.LongInput_LONG_INPUT_CHUNK
)

type longInputOption struct {
	mode    LongInput
	overlap *uint32
}

func (o longInputOption) applyEncode(c *encodeConfig) {
	if o.overlap != nil {
		c.req.ChunkOverlap = proto.Uint32(*o.overlap)
	} else {
		c.req.LongInput = o.mode
	}
}

func (o longInputOption) applyRerank(r *pb.RerankRequest) {
	if o.overlap != nil {
		r.ChunkOverlap = proto.Uint32(*o.overlap)
	} else {
		r.LongInput = o.mode
	}
}

// LongInputs sets what happens to inputs longer than the model's window,
// for Encode and Rerank.
func LongInputs(mode LongInput) EncodeRerankOption { return longInputOption{mode: mode} }

// ChunkOverlap sets the tokens consecutive windows share, with
// LongInputs(LongInputChunk) only (the server refuses it otherwise). It must
// be below the window; unset, the server uses min(32, window/4).
func ChunkOverlap(tokens uint32) EncodeRerankOption {
	return longInputOption{overlap: &tokens}
}

// ReturnChunks also returns every window's vector and span
// (EncodeResult.Chunks, ChunkEmbeddings or ChunkQuantized); with
// LongInputs(LongInputChunk) only.
func ReturnChunks() EncodeOption {
	return encodeFunc(func(c *encodeConfig) { c.req.ReturnChunks = true })
}

// Span is a piece of an input text in Unicode code points (not bytes):
// the server's offsets. Of converts it to a Go substring.
type Span struct {
	Start, End int
}

// Of returns the span's characters of text: text[Start:End] counted in
// code points. Out-of-range ends are clamped.
func (s Span) Of(text string) string {
	start, end, n := -1, len(text), 0
	for i := range text { // i: the byte offset of code point n
		if n == s.Start {
			start = i
		}
		if n == s.End {
			end = i
			break
		}
		n++
	}
	if start < 0 || end < start {
		return ""
	}
	return text[start:end]
}

// TextChunk is one window of a text (ReturnChunks).
type TextChunk struct {
	// TextIndex is the position of the text in the request.
	TextIndex int
	// Span is the window's characters in the text, without the prompt.
	Span Span
	// TokenCount is the tokens fed to the model for this window (prompt and
	// special tokens included).
	TokenCount int
}

// Text returns the window's text out of the request's texts.
func (c TextChunk) Text(texts []string) string { return c.Span.Of(texts[c.TextIndex]) }

func decodeChunks(resp *pb.EncodeResponse, req *pb.EncodeRequest, r *EncodeResult) error {
	r.ChunkCounts = resp.GetChunkCounts()
	if !req.GetReturnChunks() {
		return nil
	}
	ntexts := len(req.GetTexts())
	r.Chunks = make([]TextChunk, len(resp.GetChunks()))
	for i, c := range resp.GetChunks() {
		if int(c.GetTextIndex()) >= ntexts {
			return fmt.Errorf("embedrank: chunk %d names text %d of %d", i, c.GetTextIndex(), ntexts)
		}
		r.Chunks[i] = TextChunk{
			TextIndex:  int(c.GetTextIndex()),
			Span:       Span{Start: int(c.GetSpan().GetStart()), End: int(c.GetSpan().GetEnd())},
			TokenCount: int(c.GetTokenCount()),
		}
	}
	e := resp.GetChunkEmbeddings()
	if int(e.GetRows()) != len(r.Chunks) {
		return fmt.Errorf("embedrank: %d chunk embeddings for %d chunks", e.GetRows(), len(r.Chunks))
	}
	var err error
	if isQuantized(e.GetPrecision()) {
		r.ChunkQuantized, err = DecodeQuantized(e)
	} else {
		r.ChunkEmbeddings, err = DecodeFloat32(e)
	}
	return err
}

package embedrank

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"google.golang.org/protobuf/proto"

	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

// Precision is the element type of returned embeddings.
type Precision = pb.Precision

// Precisions an embedding model can return (ModelInfo.OutputPrecisions
// says which a model supports).
const (
	PrecisionFloat32 = pb.Precision_PRECISION_FLOAT32
	// One signed byte a dimension.
	PrecisionInt8 = pb.Precision_PRECISION_INT8
	// One unsigned byte a dimension.
	PrecisionUint8 = pb.Precision_PRECISION_UINT8
	// Sign bits packed 8 a byte (numpy.packbits), minus 128, as int8.
	PrecisionBinary = pb.Precision_PRECISION_BINARY
	// Sign bits packed 8 a byte (numpy.packbits), as uint8.
	PrecisionUbinary = pb.Precision_PRECISION_UBINARY
)

// Truncation says how an input longer than the model's max_tokens is handled.
type Truncation = pb.Truncation

// Truncation modes; the server's default is TruncationEnd.
const (
	// Keep the first max_tokens tokens.
	TruncationEnd = pb.Truncation_TRUNCATION_END
	// Keep the last max_tokens tokens.
	TruncationStart = pb.Truncation_TRUNCATION_START
	// Refuse over-long input with codes.InvalidArgument.
	TruncationNone = pb.Truncation_TRUNCATION_NONE
)

// EncodeOption adjusts an EncodeRequest.
type EncodeOption interface {
	applyEncode(*encodeConfig)
}

// RerankOption adjusts a RerankRequest.
type RerankOption interface {
	applyRerank(*pb.RerankRequest)
}

// EncodeRerankOption is an option for both Encode and Rerank calls.
type EncodeRerankOption interface {
	EncodeOption
	RerankOption
}

type encodeConfig struct {
	req *pb.EncodeRequest
	err error
}

type encodeFunc func(*encodeConfig)

func (f encodeFunc) applyEncode(c *encodeConfig) { f(c) }

// AsQuery encodes the texts as queries: the model's "query" prompt.
func AsQuery() EncodeOption {
	return encodeFunc(func(c *encodeConfig) { c.req.InputType = pb.InputType_INPUT_TYPE_QUERY })
}

// AsDocument encodes the texts as documents: the model's "document",
// "passage" or "corpus" prompt, the first it has.
func AsDocument() EncodeOption {
	return encodeFunc(func(c *encodeConfig) { c.req.InputType = pb.InputType_INPUT_TYPE_DOCUMENT })
}

// PromptName picks one of the model's prompts by name; it wins over
// AsQuery and AsDocument.
func PromptName(name string) EncodeOption {
	return encodeFunc(func(c *encodeConfig) { c.req.PromptName = name })
}

// Normalize turns L2 normalization on or off; without it the model's own
// behaviour applies.
func Normalize(on bool) EncodeOption {
	return encodeFunc(func(c *encodeConfig) { c.req.Normalize = proto.Bool(on) })
}

// Dimensions keeps the first n dimensions (Matryoshka models); 0 keeps all.
func Dimensions(n int) EncodeOption {
	return encodeFunc(func(c *encodeConfig) {
		if n < 0 || n > math.MaxUint32 {
			c.err = fmt.Errorf("embedrank: Dimensions(%d) out of range", n)
			return
		}
		c.req.Dimensions = uint32(n)
	})
}

// OutputPrecision asks for embeddings of precision p (EncodeFull and
// EncodeStream; Encode always asks for float32 and EncodeQuantized takes
// the precision as an argument).
func OutputPrecision(p Precision) EncodeOption {
	return encodeFunc(func(c *encodeConfig) { c.req.Precision = p })
}

type truncateOption Truncation

func (t truncateOption) applyEncode(c *encodeConfig)     { c.req.Truncation = Truncation(t) }
func (t truncateOption) applyRerank(r *pb.RerankRequest) { r.Truncation = Truncation(t) }

// Truncate sets how over-long inputs are handled, for Encode and Rerank.
func Truncate(mode Truncation) EncodeRerankOption { return truncateOption(mode) }

// withOpt appends o to a copy of opts, leaving the caller's array alone.
func withOpt(opts []EncodeOption, o EncodeOption) []EncodeOption {
	return append(opts[:len(opts):len(opts)], o)
}

func buildEncodeRequest(model string, texts []string, opts []EncodeOption) (*pb.EncodeRequest, error) {
	c := encodeConfig{req: &pb.EncodeRequest{Model: model, Texts: texts}}
	for _, o := range opts {
		o.applyEncode(&c)
	}
	return c.req, c.err
}

// EncodeResult is the whole answer to an encode request.
type EncodeResult struct {
	// Embeddings holds one row per text when the precision is float32;
	// nil otherwise.
	Embeddings [][]float32
	// Quantized holds the embeddings for the other precisions; nil for
	// float32.
	Quantized *QuantizedEmbeddings
	// TokenCounts is, per text, the tokens fed to the model.
	TokenCounts []uint32
	// Truncated is, per text, whether it was cut to the model's max_tokens.
	Truncated []bool
	// Metadata is the model, version, sizes, timings and request id.
	Metadata *pb.Metadata
	// ChunkCounts is, with LongInputs(LongInputChunk), the windows each
	// text was split into (1 when it fits); TokenCounts then sum them.
	ChunkCounts []uint32
	// Chunks is, with ReturnChunks, every window, text by text.
	Chunks []TextChunk
	// ChunkEmbeddings holds, with ReturnChunks, one row per Chunks entry
	// when the precision is float32; ChunkQuantized the other precisions.
	ChunkEmbeddings [][]float32
	ChunkQuantized  *QuantizedEmbeddings
}

// Encode returns one float32 embedding per text, in order.
func (c *Client) Encode(ctx context.Context, model string, texts []string, opts ...EncodeOption) ([][]float32, error) {
	r, err := c.EncodeFull(ctx, model, texts, withOpt(opts, OutputPrecision(PrecisionFloat32))...)
	if err != nil {
		return nil, err
	}
	return r.Embeddings, nil
}

// EncodeQuantized returns the embeddings of texts at precision p, one of
// PrecisionInt8, PrecisionUint8, PrecisionBinary or PrecisionUbinary.
func (c *Client) EncodeQuantized(ctx context.Context, model string, texts []string, p Precision, opts ...EncodeOption) (*QuantizedEmbeddings, error) {
	if !isQuantized(p) {
		return nil, fmt.Errorf("embedrank: EncodeQuantized: %v is not a quantized precision", p)
	}
	r, err := c.EncodeFull(ctx, model, texts, withOpt(opts, OutputPrecision(p))...)
	if err != nil {
		return nil, err
	}
	return r.Quantized, nil
}

// EncodeFull encodes texts and returns the whole response: embeddings at
// the precision asked for with OutputPrecision (float32 by default), token
// counts, truncation flags and metadata.
func (c *Client) EncodeFull(ctx context.Context, model string, texts []string, opts ...EncodeOption) (*EncodeResult, error) {
	req, err := buildEncodeRequest(model, texts, opts)
	if err != nil {
		return nil, err
	}
	resp, err := c.embed.Encode(ctx, req)
	if err != nil {
		return nil, wrapErr(err)
	}
	return decodeResponse(resp, req)
}

func decodeResponse(resp *pb.EncodeResponse, req *pb.EncodeRequest) (*EncodeResult, error) {
	e := resp.GetEmbeddings()
	if e == nil {
		return nil, errors.New("embedrank: response has no embeddings")
	}
	if int(e.GetRows()) != len(req.GetTexts()) {
		return nil, fmt.Errorf("embedrank: response has %d rows for %d texts", e.GetRows(), len(req.GetTexts()))
	}
	if want := normPrecision(req.GetPrecision()); normPrecision(e.GetPrecision()) != want {
		return nil, fmt.Errorf("embedrank: asked for %v, response has %v", want, e.GetPrecision())
	}
	r := &EncodeResult{
		TokenCounts: resp.GetTokenCounts(),
		Truncated:   resp.GetTruncated(),
		Metadata:    resp.GetMetadata(),
	}
	var err error
	if isQuantized(e.GetPrecision()) {
		r.Quantized, err = DecodeQuantized(e)
	} else {
		r.Embeddings, err = DecodeFloat32(e)
	}
	if err == nil {
		err = decodeChunks(resp, req, r)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

func normPrecision(p Precision) Precision {
	if p == pb.Precision_PRECISION_UNSPECIFIED {
		return PrecisionFloat32
	}
	return p
}

func isQuantized(p Precision) bool {
	switch p {
	case PrecisionInt8, PrecisionUint8, PrecisionBinary, PrecisionUbinary:
		return true
	}
	return false
}

// DecodeFloat32 unpacks a float32 (or unspecified-precision) Embeddings
// message into rows x dimensions values. The rows share one backing array.
func DecodeFloat32(e *pb.Embeddings) ([][]float32, error) {
	if p := e.GetPrecision(); normPrecision(p) != PrecisionFloat32 {
		return nil, fmt.Errorf("embedrank: DecodeFloat32: precision is %v", p)
	}
	rows, dims := int(e.GetRows()), int(e.GetDimensions())
	data := e.GetData()
	if uint64(len(data)) != uint64(rows)*uint64(dims)*4 {
		return nil, fmt.Errorf("embedrank: %d bytes for %d x %d float32", len(data), rows, dims)
	}
	flat := make([]float32, rows*dims)
	for i := range flat {
		flat[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	out := make([][]float32, rows)
	for i := range out {
		out[i] = flat[i*dims : (i+1)*dims : (i+1)*dims]
	}
	return out, nil
}

// QuantizedEmbeddings is a rows x dimensions matrix of int8, uint8 or
// packed-bit embeddings, kept as the bytes the server sent.
type QuantizedEmbeddings struct {
	Rows int
	// Dimensions of each embedding, before bit packing.
	Dimensions int
	Precision  Precision
	// Data holds Rows x RowBytes() bytes, row-major.
	Data []byte
}

// DecodeQuantized checks a quantized Embeddings message and wraps it; the
// result shares e's data.
func DecodeQuantized(e *pb.Embeddings) (*QuantizedEmbeddings, error) {
	q := &QuantizedEmbeddings{
		Rows:       int(e.GetRows()),
		Dimensions: int(e.GetDimensions()),
		Precision:  e.GetPrecision(),
		Data:       e.GetData(),
	}
	if !isQuantized(q.Precision) {
		return nil, fmt.Errorf("embedrank: DecodeQuantized: precision is %v", q.Precision)
	}
	if uint64(len(q.Data)) != uint64(q.Rows)*uint64(q.RowBytes()) {
		return nil, fmt.Errorf("embedrank: %d bytes for %d rows of %d bytes (%v, %d dimensions)",
			len(q.Data), q.Rows, q.RowBytes(), q.Precision, q.Dimensions)
	}
	return q, nil
}

// RowBytes is the size of one row: Dimensions for int8/uint8,
// ceil(Dimensions/8) for binary/ubinary.
func (q *QuantizedEmbeddings) RowBytes() int {
	if q.Precision == PrecisionBinary || q.Precision == PrecisionUbinary {
		return (q.Dimensions + 7) / 8
	}
	return q.Dimensions
}

// Row returns the bytes of row i (a view into Data), or nil when i is out
// of range.
func (q *QuantizedEmbeddings) Row(i int) []byte {
	if i < 0 || i >= q.Rows {
		return nil
	}
	n := q.RowBytes()
	return q.Data[i*n : (i+1)*n : (i+1)*n]
}

// Int8 returns row i as int8 values (a view into Data) for PrecisionInt8
// and PrecisionBinary, or nil for other precisions or i out of range.
func (q *QuantizedEmbeddings) Int8(i int) []int8 {
	if q.Precision != PrecisionInt8 && q.Precision != PrecisionBinary {
		return nil
	}
	b := q.Row(i)
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), len(b))
}

// Uint8 returns row i as uint8 values (a view into Data) for
// PrecisionUint8 and PrecisionUbinary, or nil for other precisions or i out
// of range.
func (q *QuantizedEmbeddings) Uint8(i int) []uint8 {
	if q.Precision != PrecisionUint8 && q.Precision != PrecisionUbinary {
		return nil
	}
	return q.Row(i)
}

// Bits returns the sign bits of row i of a binary or ubinary matrix, one
// bool a dimension (true: the value was positive), or nil for other
// precisions or i out of range.
func (q *QuantizedEmbeddings) Bits(i int) []bool {
	if q.Precision != PrecisionBinary && q.Precision != PrecisionUbinary {
		return nil
	}
	b := q.Row(i)
	if b == nil {
		return nil
	}
	out := make([]bool, q.Dimensions)
	for d := range out {
		v := b[d/8]
		if q.Precision == PrecisionBinary {
			v += 128 // stored as packed byte - 128, read as int8
		}
		out[d] = v&(0x80>>(d%8)) != 0 // numpy.packbits is big-endian in bits
	}
	return out
}

package embedrank

import (
	"context"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

// InputType picks a sparse or multi-vector model's query or document
// handling (prompt; for multi-vector models also the query length and
// mask-token expansion, or the document length and skiplist).
type InputType = pb.InputType

// Input types; unset is the model's default (as the library's encode()).
const (
	InputQuery    = pb.InputType_INPUT_TYPE_QUERY
	InputDocument = pb.InputType_INPUT_TYPE_DOCUMENT
)

// SparseOption adjusts an EncodeSparseRequest.
type SparseOption func(*pb.EncodeSparseRequest)

// SparseTopK keeps only each text's k highest weights. A negative k is
// refused by the server with codes.InvalidArgument.
func SparseTopK(k int) SparseOption {
	return func(r *pb.EncodeSparseRequest) {
		r.TopK = proto.Int32(int32(max(min(k, math.MaxInt32), math.MinInt32)))
	}
}

// SparseReturnTokens also returns each index's token string.
func SparseReturnTokens() SparseOption {
	return func(r *pb.EncodeSparseRequest) { r.ReturnTokens = true }
}

// SparseInput encodes the texts as queries or documents (their prompts).
func SparseInput(t InputType) SparseOption {
	return func(r *pb.EncodeSparseRequest) { r.InputType = t }
}

// SparseVector is one text's non-zero weights, highest first.
type SparseVector struct {
	// Indices are vocabulary ids; Values their weights.
	Indices []uint32
	Values  []float32
	// Tokens are the indices' token strings, with SparseReturnTokens.
	Tokens []string
	// Dimensions is the vocabulary size (the dense length).
	Dimensions int
}

// EncodeSparse returns one sparse (SPLADE) vector per text, in order.
func (c *Client) EncodeSparse(ctx context.Context, model string, texts []string, opts ...SparseOption) ([]SparseVector, error) {
	req := &pb.EncodeSparseRequest{Model: model, Texts: texts}
	for _, o := range opts {
		o(req)
	}
	resp, err := c.sparse.EncodeSparse(ctx, req)
	if err != nil {
		return nil, wrapErr(err)
	}
	return decodeSparse(resp, len(texts))
}

func decodeSparse(resp *pb.EncodeSparseResponse, texts int) ([]SparseVector, error) {
	if len(resp.GetVectors()) != texts {
		return nil, fmt.Errorf("embedrank: %d sparse vectors for %d texts", len(resp.GetVectors()), texts)
	}
	out := make([]SparseVector, texts)
	for i, v := range resp.GetVectors() {
		if len(v.GetIndices()) != len(v.GetValues()) {
			return nil, fmt.Errorf("embedrank: sparse vector %d: %d indices, %d values", i, len(v.GetIndices()), len(v.GetValues()))
		}
		out[i] = SparseVector{Indices: v.GetIndices(), Values: v.GetValues(), Tokens: v.GetTokens(), Dimensions: int(resp.GetDimensions())}
	}
	return out, nil
}

// MultiVectorOption adjusts an EncodeMultiVectorRequest.
type MultiVectorOption func(*pb.EncodeMultiVectorRequest)

// MultiVectorInput encodes the texts as queries or documents.
func MultiVectorInput(t InputType) MultiVectorOption {
	return func(r *pb.EncodeMultiVectorRequest) { r.InputType = t }
}

// MultiVectorPrecision asks for the vectors at precision p, as
// OutputPrecision does for Encode (EncodeMultiVectorFull and
// EncodeMultiVectorStream; EncodeMultiVector always asks for float32 and
// EncodeMultiVectorQuantized takes the precision as an argument). Int8 and
// uint8 use per-dimension ranges calibrated at export.
func MultiVectorPrecision(p Precision) MultiVectorOption {
	return func(r *pb.EncodeMultiVectorRequest) { r.Precision = p }
}

// MultiVectors is the whole answer to a multi-vector request.
type MultiVectors struct {
	// Vectors holds per text its float32 matrix (n_i rows of the model's
	// dimensions) when the precision is float32; nil otherwise.
	Vectors [][][]float32
	// Quantized holds per text its matrix for the other precisions (the
	// rows share the response's bytes); nil for float32.
	Quantized []*QuantizedEmbeddings
	// TokenCounts is, per text, the tokens fed to the model.
	TokenCounts []uint32
	// Truncated is, per text, whether it was cut to its input type's length.
	Truncated []bool
	Metadata  *pb.Metadata
}

// EncodeMultiVector returns per text its token vectors (ColBERT): a
// matrix of n_i rows of the model's dimensions. Rerank on a multi-vector
// model scores documents by MaxSim.
func (c *Client) EncodeMultiVector(ctx context.Context, model string, texts []string, opts ...MultiVectorOption) ([][][]float32, error) {
	opts = append(opts[:len(opts):len(opts)], MultiVectorPrecision(PrecisionFloat32))
	r, err := c.EncodeMultiVectorFull(ctx, model, texts, opts...)
	if err != nil {
		return nil, err
	}
	return r.Vectors, nil
}

// EncodeMultiVectorQuantized returns per text its token vectors at
// precision p (PrecisionInt8, PrecisionUint8, PrecisionBinary or
// PrecisionUbinary): a quarter of float32's bytes or less.
func (c *Client) EncodeMultiVectorQuantized(ctx context.Context, model string, texts []string, p Precision, opts ...MultiVectorOption) ([]*QuantizedEmbeddings, error) {
	if !isQuantized(p) {
		return nil, fmt.Errorf("embedrank: EncodeMultiVectorQuantized: %v is not a quantized precision", p)
	}
	r, err := c.EncodeMultiVectorFull(ctx, model, texts, append(opts[:len(opts):len(opts)], MultiVectorPrecision(p))...)
	if err != nil {
		return nil, err
	}
	return r.Quantized, nil
}

// EncodeMultiVectorFull returns the whole answer: the vectors at the
// precision asked for with MultiVectorPrecision (float32 by default), token
// counts, truncation flags and metadata.
func (c *Client) EncodeMultiVectorFull(ctx context.Context, model string, texts []string, opts ...MultiVectorOption) (*MultiVectors, error) {
	req := buildMultiVectorRequest(model, texts, opts)
	resp, err := c.multiVector.EncodeMultiVector(ctx, req)
	if err != nil {
		return nil, wrapErr(err)
	}
	return decodeMultiVector(resp, req)
}

func buildMultiVectorRequest(model string, texts []string, opts []MultiVectorOption) *pb.EncodeMultiVectorRequest {
	req := &pb.EncodeMultiVectorRequest{Model: model, Texts: texts}
	for _, o := range opts {
		o(req)
	}
	return req
}

func decodeMultiVector(resp *pb.EncodeMultiVectorResponse, req *pb.EncodeMultiVectorRequest) (*MultiVectors, error) {
	e := resp.GetEmbeddings()
	if want := normPrecision(req.GetPrecision()); normPrecision(e.GetPrecision()) != want {
		return nil, fmt.Errorf("embedrank: asked for %v, response has %v", want, e.GetPrecision())
	}
	counts := resp.GetVectorCounts()
	if len(counts) != len(req.GetTexts()) {
		return nil, fmt.Errorf("embedrank: %d vector counts for %d texts", len(counts), len(req.GetTexts()))
	}
	out := &MultiVectors{TokenCounts: resp.GetTokenCounts(), Truncated: resp.GetTruncated(), Metadata: resp.GetMetadata()}
	var rows [][]float32
	var packed *QuantizedEmbeddings
	var err error
	if isQuantized(e.GetPrecision()) {
		packed, err = DecodeQuantized(e)
		out.Quantized = make([]*QuantizedEmbeddings, len(counts))
	} else {
		rows, err = DecodeFloat32(e)
		out.Vectors = make([][][]float32, len(counts))
	}
	if err != nil {
		return nil, err
	}
	start := 0
	for i, n := range counts {
		end := start + int(n)
		if end > int(e.GetRows()) {
			return nil, fmt.Errorf("embedrank: vector counts exceed the %d rows sent", e.GetRows())
		}
		if packed != nil {
			width := packed.RowBytes()
			out.Quantized[i] = &QuantizedEmbeddings{Rows: int(n), Dimensions: packed.Dimensions, Precision: packed.Precision,
				Data: packed.Data[start*width : end*width : end*width]}
		} else {
			out.Vectors[i] = rows[start:end:end]
		}
		start = end
	}
	return out, nil
}

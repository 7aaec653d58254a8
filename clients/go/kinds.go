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
	if len(resp.GetVectors()) != len(texts) {
		return nil, fmt.Errorf("embedrank: %d sparse vectors for %d texts", len(resp.GetVectors()), len(texts))
	}
	out := make([]SparseVector, len(texts))
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

// EncodeMultiVector returns per text its token vectors (ColBERT): a
// matrix of n_i rows of the model's dimensions. Rerank on a multi-vector
// model scores documents by MaxSim.
func (c *Client) EncodeMultiVector(ctx context.Context, model string, texts []string, opts ...MultiVectorOption) ([][][]float32, error) {
	req := &pb.EncodeMultiVectorRequest{Model: model, Texts: texts}
	for _, o := range opts {
		o(req)
	}
	resp, err := c.multiVector.EncodeMultiVector(ctx, req)
	if err != nil {
		return nil, wrapErr(err)
	}
	rows, err := DecodeFloat32(resp.GetEmbeddings())
	if err != nil {
		return nil, err
	}
	counts := resp.GetVectorCounts()
	if len(counts) != len(texts) {
		return nil, fmt.Errorf("embedrank: %d vector counts for %d texts", len(counts), len(texts))
	}
	out := make([][][]float32, len(texts))
	start := 0
	for i, n := range counts {
		if start+int(n) > len(rows) {
			return nil, fmt.Errorf("embedrank: vector counts exceed the %d rows sent", len(rows))
		}
		out[i] = rows[start : start+int(n)]
		start += int(n)
	}
	return out, nil
}

package embedrank

import (
	"context"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

type rerankFunc func(*pb.RerankRequest)

func (f rerankFunc) applyRerank(r *pb.RerankRequest) { f(r) }

// TopK returns only the best k results; without it, all. A negative k is
// refused by the server with codes.InvalidArgument.
func TopK(k int) RerankOption {
	return rerankFunc(func(r *pb.RerankRequest) {
		r.TopK = proto.Int32(int32(max(min(k, math.MaxInt32), math.MinInt32)))
	})
}

// ReturnDocuments echoes each document's text in its result.
func ReturnDocuments() RerankOption {
	return rerankFunc(func(r *pb.RerankRequest) { r.ReturnDocuments = true })
}

// RawScores returns the model's logits instead of activated scores
// (sigmoid for a one-label reranker).
func RawScores() RerankOption {
	return rerankFunc(func(r *pb.RerankRequest) { r.Scores = pb.ScoreMode_SCORE_MODE_RAW })
}

// RerankResult is the score of one document.
type RerankResult struct {
	// Index is the document's position in the request.
	Index int
	// Score is the score of label 0 (the only label of most rerankers).
	Score float32
	// Document is the document's text, with ReturnDocuments; else empty.
	Document string
	// Truncated tells whether the pair was cut to the model's max_tokens.
	Truncated bool
	// TokenCount is the number of tokens of the pair fed to the model.
	TokenCount int
	// LabelScores holds all labels' scores, for models with several labels.
	LabelScores []float32
	// Span is, with LongInputs(LongInputChunk), the best-scoring window of
	// the document (its score is Score); nil otherwise.
	Span *Span
	// ChunkCount is, with LongInputs(LongInputChunk), the windows the
	// document was split into; TokenCount then sums them.
	ChunkCount int
}

// RerankResponse is the whole answer to a rerank request.
type RerankResponse struct {
	// Results are sorted by score, highest first.
	Results  []RerankResult
	Metadata *pb.Metadata
}

func buildRerankRequest(model, query string, docs []string, opts []RerankOption) *pb.RerankRequest {
	req := &pb.RerankRequest{Model: model, Query: query, Documents: docs}
	for _, o := range opts {
		o.applyRerank(req)
	}
	return req
}

// Rerank scores each document against query and returns the results sorted
// by score, highest first, as the server sent them.
func (c *Client) Rerank(ctx context.Context, model, query string, docs []string, opts ...RerankOption) ([]RerankResult, error) {
	r, err := c.RerankFull(ctx, model, query, docs, opts...)
	if err != nil {
		return nil, err
	}
	return r.Results, nil
}

// RerankFull is Rerank that also returns the response's metadata.
func (c *Client) RerankFull(ctx context.Context, model, query string, docs []string, opts ...RerankOption) (*RerankResponse, error) {
	req := buildRerankRequest(model, query, docs, opts)
	resp, err := c.rerank.Rerank(ctx, req)
	if err != nil {
		return nil, wrapErr(err)
	}
	return convertRerank(resp, len(docs))
}

func convertRerank(resp *pb.RerankResponse, ndocs int) (*RerankResponse, error) {
	out := &RerankResponse{Results: make([]RerankResult, len(resp.GetResults())), Metadata: resp.GetMetadata()}
	for i, r := range resp.GetResults() {
		if uint64(r.GetIndex()) >= uint64(ndocs) {
			return nil, fmt.Errorf("embedrank: result index %d for %d documents", r.GetIndex(), ndocs)
		}
		out.Results[i] = RerankResult{
			Index:       int(r.GetIndex()),
			Score:       r.GetScore(),
			Document:    r.GetDocument(),
			Truncated:   r.GetTruncated(),
			TokenCount:  int(r.GetTokenCount()),
			LabelScores: r.GetLabelScores(),
			ChunkCount:  int(r.GetChunkCount()),
		}
		if r.GetChunkCount() > 0 {
			out.Results[i].Span = &Span{Start: int(r.GetSpan().GetStart()), End: int(r.GetSpan().GetEnd())}
		}
	}
	return out, nil
}

package embedrank

import (
	"context"
	"math"

	"google.golang.org/protobuf/proto"

	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

// ClassifyOption adjusts a ClassifyRequest.
type ClassifyOption func(*pb.ClassifyRequest)

// ClassifyTopK returns only each input's k best labels; without it, all.
// k below 1 is refused by the server with codes.InvalidArgument.
func ClassifyTopK(k int) ClassifyOption {
	return func(r *pb.ClassifyRequest) { r.TopK = proto.Int32(int32(max(min(k, math.MaxInt32), math.MinInt32))) }
}

// ClassifyRawScores returns the logits instead of the model's softmax
// (single-label) or sigmoid (multi-label) scores.
func ClassifyRawScores() ClassifyOption {
	return func(r *pb.ClassifyRequest) { r.Scores = pb.ScoreMode_SCORE_MODE_RAW }
}

// ClassifyTruncation sets how over-long inputs are handled.
func ClassifyTruncation(mode Truncation) ClassifyOption {
	return func(r *pb.ClassifyRequest) { r.Truncation = mode }
}

// LabelScore is one label's score for one input.
type LabelScore struct {
	// Index is the label's output index (the checkpoint's id2label key).
	Index int
	Label string
	Score float32
}

// Classification is one input's labels, highest score first.
type Classification struct {
	Labels     []LabelScore
	Truncated  bool
	TokenCount int
}

// Classify labels each text with a classification model.
func (c *Client) Classify(ctx context.Context, model string, texts []string, opts ...ClassifyOption) ([]Classification, error) {
	return c.classify(ctx, &pb.ClassifyRequest{Model: model, Texts: texts}, opts)
}

// ClassifyPairs labels each pair (NLI: premise, hypothesis).
func (c *Client) ClassifyPairs(ctx context.Context, model string, pairs []Pair, opts ...ClassifyOption) ([]Classification, error) {
	return c.classify(ctx, &pb.ClassifyRequest{Model: model, Pairs: pairsProto(pairs)}, opts)
}

func (c *Client) classify(ctx context.Context, req *pb.ClassifyRequest, opts []ClassifyOption) ([]Classification, error) {
	for _, o := range opts {
		o(req)
	}
	resp, err := pb.NewClassifyClient(c.conn).Classify(ctx, req)
	if err != nil {
		return nil, wrapErr(err)
	}
	return decodeClassify(resp), nil
}

func decodeClassify(resp *pb.ClassifyResponse) []Classification {
	out := make([]Classification, len(resp.GetResults()))
	for i, r := range resp.GetResults() {
		out[i] = Classification{Truncated: r.GetTruncated(), TokenCount: int(r.GetTokenCount()), Labels: make([]LabelScore, len(r.GetLabels()))}
		for j, s := range r.GetLabels() {
			out[i].Labels[j] = LabelScore{Index: int(s.GetIndex()), Label: s.GetLabel(), Score: s.GetScore()}
		}
	}
	return out
}

package embedrank

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

// StreamResult is the answer to one request of a stream: Result when it
// succeeded, else Err (an *Error for the server's error item, e.g.
// codes.InvalidArgument naming texts[3]; the other requests go on).
type StreamResult[T any] struct {
	Result T
	Err    error
}

// ClassifyStream classifies each batch of texts as one request on a single
// ClassifyStream call, like EncodeStream (at most the stream window
// unanswered), and returns one result per batch, in order. The error
// returned is for the stream as a whole.
func (c *Client) ClassifyStream(ctx context.Context, model string, batches [][]string, opts ...ClassifyOption) ([]StreamResult[[]Classification], error) {
	return c.classifyStream(ctx, len(batches), func(i int) *pb.ClassifyRequest {
		return &pb.ClassifyRequest{Model: model, Texts: batches[i]}
	}, opts)
}

// ClassifyPairsStream is ClassifyStream for batches of pairs.
func (c *Client) ClassifyPairsStream(ctx context.Context, model string, batches [][]Pair, opts ...ClassifyOption) ([]StreamResult[[]Classification], error) {
	return c.classifyStream(ctx, len(batches), func(i int) *pb.ClassifyRequest {
		return &pb.ClassifyRequest{Model: model, Pairs: pairsProto(batches[i])}
	}, opts)
}

func (c *Client) classifyStream(ctx context.Context, n int, build func(i int) *pb.ClassifyRequest, opts []ClassifyOption) ([]StreamResult[[]Classification], error) {
	return collectStream(ctx, c.streamWindow, n, pb.NewClassifyClient(c.conn).ClassifyStream,
		func(i int, id string) *pb.ClassifyStreamRequest {
			req := build(i)
			for _, o := range opts {
				o(req)
			}
			return &pb.ClassifyStreamRequest{Id: id, Request: req}
		},
		func(_ int, r *pb.ClassifyResponse) ([]Classification, error) { return decodeClassify(r), nil })
}

// TokenizeStream tokenizes each batch of texts as one request on a single
// TokenizeStream call and returns one result per batch, in order.
func (c *Client) TokenizeStream(ctx context.Context, model string, batches [][]string, opts ...TokenizeOption) ([]StreamResult[*TokenizeResult], error) {
	return collectStream(ctx, c.streamWindow, len(batches), pb.NewTokenizeClient(c.conn).TokenizeStream,
		func(i int, id string) *pb.TokenizeStreamRequest {
			req := &pb.TokenizeRequest{Model: model, Texts: batches[i]}
			for _, o := range opts {
				o(req)
			}
			return &pb.TokenizeStreamRequest{Id: id, Request: req}
		},
		func(_ int, r *pb.TokenizeResponse) (*TokenizeResult, error) { return decodeTokenize(r), nil })
}

// EncodeSparseStream encodes each batch of texts as one request on a single
// EncodeSparseStream call and returns one result per batch, in order.
func (c *Client) EncodeSparseStream(ctx context.Context, model string, batches [][]string, opts ...SparseOption) ([]StreamResult[[]SparseVector], error) {
	return collectStream(ctx, c.streamWindow, len(batches), c.sparse.EncodeSparseStream,
		func(i int, id string) *pb.EncodeSparseStreamRequest {
			req := &pb.EncodeSparseRequest{Model: model, Texts: batches[i]}
			for _, o := range opts {
				o(req)
			}
			return &pb.EncodeSparseStreamRequest{Id: id, Request: req}
		},
		func(i int, r *pb.EncodeSparseResponse) ([]SparseVector, error) {
			return decodeSparse(r, len(batches[i]))
		})
}

// EncodeMultiVectorStream encodes each batch of texts as one request on a
// single EncodeMultiVectorStream call and returns one result per batch, in
// order: float32 Vectors, or Quantized with MultiVectorPrecision.
func (c *Client) EncodeMultiVectorStream(ctx context.Context, model string, batches [][]string, opts ...MultiVectorOption) ([]StreamResult[*MultiVectors], error) {
	return collectStream(ctx, c.streamWindow, len(batches), c.multiVector.EncodeMultiVectorStream,
		func(i int, id string) *pb.EncodeMultiVectorStreamRequest {
			return &pb.EncodeMultiVectorStreamRequest{Id: id, Request: buildMultiVectorRequest(model, batches[i], opts)}
		},
		func(i int, r *pb.EncodeMultiVectorResponse) (*MultiVectors, error) {
			return decodeMultiVector(r, buildMultiVectorRequest(model, batches[i], opts))
		})
}

// itemResponse is what every ...StreamResponse message has: the echoed id
// and its oneof of the unary response (R) or a StreamError.
type itemResponse[R any] interface {
	GetId() string
	GetError() *pb.StreamError
	GetResponse() R
}

// collectStream runs n requests through runStream (ids, window, order
// checks) and decodes each response, or keeps its error item, in order.
func collectStream[Req, Resp any, R comparable, Out any](
	ctx context.Context, window, n int,
	open func(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[Req, Resp], error),
	request func(i int, id string) *Req,
	decode func(i int, r R) (Out, error),
) ([]StreamResult[Out], error) {
	out := make([]StreamResult[Out], n)
	item := func(resp *Resp) itemResponse[R] { return any(resp).(itemResponse[R]) }
	err := runStream(ctx, window, n, open, request,
		func(resp *Resp) string { return item(resp).GetId() },
		func(i int, resp *Resp) error {
			var none R
			switch it := item(resp); {
			case it.GetError() != nil:
				out[i].Err = streamErr(it.GetError())
			case it.GetResponse() != none:
				out[i].Result, out[i].Err = decode(i, it.GetResponse())
			default:
				out[i].Err = fmt.Errorf("embedrank: stream response %q has no result", it.GetId())
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

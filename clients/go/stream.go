package embedrank

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"google.golang.org/grpc"

	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

// EncodeStreamResult is the answer to one batch of EncodeStream.
type EncodeStreamResult struct {
	// Result is set when the batch succeeded.
	Result *EncodeResult
	// Err is set when it failed: an *Error for the server's error item
	// (codes.InvalidArgument for empty texts, ...).
	Err error
}

// EncodeStream encodes each batch of texts as one request on a single
// EncodeStream call, with at most the stream window (WithStreamWindow)
// requests in flight, and returns one result per batch, in the order of
// batches. A batch the server refuses gets its own Err; the others go on.
// The error returned is for the stream as a whole (connection lost, ids out
// of order, ...). Options apply to every batch; OutputPrecision works as in
// EncodeFull.
func (c *Client) EncodeStream(ctx context.Context, model string, batches [][]string, opts ...EncodeOption) ([]EncodeStreamResult, error) {
	out := make([]EncodeStreamResult, len(batches))
	err := c.EncodeStreamEach(ctx, model, batches, func(i int, r EncodeStreamResult) error {
		out[i] = r
		return nil
	}, opts...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EncodeStreamEach is EncodeStream that hands each batch's result to fn as
// soon as it arrives, in order, instead of collecting them. If fn returns an
// error the stream is cancelled and EncodeStreamEach returns that error.
func (c *Client) EncodeStreamEach(ctx context.Context, model string, batches [][]string, fn func(i int, r EncodeStreamResult) error, opts ...EncodeOption) error {
	if _, err := buildEncodeRequest(model, nil, opts); err != nil {
		return err
	}
	reqs := func(i int, id string) *pb.EncodeStreamRequest {
		req, _ := buildEncodeRequest(model, batches[i], opts)
		return &pb.EncodeStreamRequest{Id: id, Request: req}
	}
	return runStream(ctx, c.streamWindow, len(batches), c.embed.EncodeStream, reqs,
		(*pb.EncodeStreamResponse).GetId,
		func(i int, resp *pb.EncodeStreamResponse) error {
			var r EncodeStreamResult
			switch res := resp.GetResult().(type) {
			case *pb.EncodeStreamResponse_Response:
				req, _ := buildEncodeRequest(model, batches[i], opts)
				r.Result, r.Err = decodeResponse(res.Response, req)
			case *pb.EncodeStreamResponse_Error:
				r.Err = streamErr(res.Error)
			default:
				r.Err = fmt.Errorf("embedrank: stream response %q has no result", resp.GetId())
			}
			return fn(i, r)
		})
}

// RerankQuery is one rerank request of RerankStream.
type RerankQuery struct {
	Query     string
	Documents []string
}

// RerankStreamResult is the answer to one query of RerankStream.
type RerankStreamResult struct {
	// Result is set when the query succeeded; its results are sorted by
	// score, highest first.
	Result *RerankResponse
	// Err is set when it failed: an *Error for the server's error item.
	Err error
}

// RerankStream reranks each query's documents as one request on a single
// RerankStream call, like EncodeStream, and returns one result per query,
// in order.
func (c *Client) RerankStream(ctx context.Context, model string, queries []RerankQuery, opts ...RerankOption) ([]RerankStreamResult, error) {
	out := make([]RerankStreamResult, len(queries))
	reqs := func(i int, id string) *pb.RerankStreamRequest {
		q := queries[i]
		return &pb.RerankStreamRequest{Id: id, Request: buildRerankRequest(model, q.Query, q.Documents, opts)}
	}
	err := runStream(ctx, c.streamWindow, len(queries), c.rerank.RerankStream, reqs,
		(*pb.RerankStreamResponse).GetId,
		func(i int, resp *pb.RerankStreamResponse) error {
			switch res := resp.GetResult().(type) {
			case *pb.RerankStreamResponse_Response:
				out[i].Result, out[i].Err = convertRerank(res.Response, len(queries[i].Documents))
			case *pb.RerankStreamResponse_Error:
				out[i].Err = streamErr(res.Error)
			default:
				out[i].Err = fmt.Errorf("embedrank: stream response %q has no result", resp.GetId())
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// runStream sends n requests on one bidi stream, with ids "0" to "n-1" and
// at most window of them unanswered, and hands the responses to handle in
// order, checking that each echoes its request's id.
func runStream[Req, Resp any](
	ctx context.Context, window, n int,
	open func(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[Req, Resp], error),
	request func(i int, id string) *Req,
	responseID func(*Resp) string,
	handle func(i int, resp *Resp) error,
) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	stream, err := open(ctx)
	if err != nil {
		cancel()
		return wrapErr(err)
	}
	slots := make(chan struct{}, max(window, 1))
	sendErr := make(chan error, 1)
	sendDone := make(chan struct{})
	defer func() {
		cancel()
		<-sendDone
	}()
	go func() {
		defer close(sendDone)
		for i := range n {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			if err := stream.Send(request(i, strconv.Itoa(i))); err != nil {
				if err != io.EOF { // io.EOF: the stream ended; Recv says why
					sendErr <- err
					cancel()
				}
				return
			}
		}
		if err := stream.CloseSend(); err != nil {
			sendErr <- err
			cancel()
		}
	}()
	recvErr := func(err error) error {
		select {
		case e := <-sendErr:
			return wrapErr(e)
		default:
			return wrapErr(err)
		}
	}
	for i := range n {
		resp, err := stream.Recv()
		if err == io.EOF {
			return fmt.Errorf("embedrank: stream ended after %d of %d responses", i, n)
		}
		if err != nil {
			return recvErr(err)
		}
		if got, want := responseID(resp), strconv.Itoa(i); got != want {
			return fmt.Errorf("embedrank: stream response %d has id %q, want %q", i, got, want)
		}
		<-slots
		if err := handle(i, resp); err != nil {
			return err
		}
	}
	// Every request is answered: read the end of the stream and its status.
	if _, err := stream.Recv(); err != io.EOF {
		if err == nil {
			return errors.New("embedrank: stream sent more responses than requests")
		}
		return recvErr(err)
	}
	return nil
}

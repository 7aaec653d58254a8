package embedrank

// An in-process fake of the three services over bufconn, for the unit tests.

import (
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

// fake implements the three services.
type fake struct {
	pb.UnimplementedEmbedServer
	pb.UnimplementedRerankServer
	pb.UnimplementedModelsServer

	mu          sync.Mutex
	auth        []string // authorization metadata seen
	traceparent []string // W3C traceparent metadata seen (otel_test.go)
	flakyLeft   int      // "flaky" fails with UNAVAILABLE this many times
	calls       int
	maxInFlight int // most stream requests received and not yet answered
}

func fakeVector(text string, i int) []float32 { return []float32{float32(len(text)), float32(i), -1.5} }

func (f *fake) Encode(ctx context.Context, req *pb.EncodeRequest) (*pb.EncodeResponse, error) {
	f.mu.Lock()
	f.calls++
	md, _ := metadata.FromIncomingContext(ctx)
	f.auth = append(f.auth, md.Get("authorization")...)
	f.traceparent = append(f.traceparent, md.Get("traceparent")...)
	flaky := req.GetModel() == "flaky" && f.flakyLeft > 0
	if flaky {
		f.flakyLeft--
	}
	f.mu.Unlock()
	switch {
	case flaky:
		return nil, status.Error(codes.Unavailable, "warming up")
	case req.GetModel() == "slow":
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	case req.GetModel() == "detailed":
		st, _ := status.New(codes.InvalidArgument, "too long").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "texts[1]", Description: "too long"}},
		})
		return nil, st.Err()
	}
	return encodeResponse(req)
}

func encodeResponse(req *pb.EncodeRequest) (*pb.EncodeResponse, error) {
	if req.GetModel() == "no-such-model" {
		return nil, status.Errorf(codes.NotFound, "model %q not found", req.GetModel())
	}
	if len(req.GetTexts()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "texts must not be empty")
	}
	var rows [][]float32
	counts := make([]uint32, len(req.GetTexts()))
	for i, t := range req.GetTexts() {
		rows = append(rows, fakeVector(t, i))
		counts[i] = uint32(len(t))
	}
	e := &pb.Embeddings{Precision: req.GetPrecision(), Rows: uint32(len(rows)), Dimensions: 3}
	switch req.GetPrecision() {
	case PrecisionInt8:
		for _, r := range rows {
			for _, v := range r {
				e.Data = append(e.Data, byte(int8(v)))
			}
		}
	case PrecisionUbinary:
		for _, r := range rows {
			var b byte
			for d, v := range r {
				if v > 0 {
					b |= 0x80 >> d
				}
			}
			e.Data = append(e.Data, b)
		}
	default:
		e.Data = packFloat32(rows)
	}
	return &pb.EncodeResponse{Embeddings: e, TokenCounts: counts,
		Truncated: make([]bool, len(rows)), Metadata: &pb.Metadata{Model: req.GetModel(), RequestId: "r1"}}, nil
}

func (f *fake) EncodeStream(stream grpc.BidiStreamingServer[pb.EncodeStreamRequest, pb.EncodeStreamResponse]) error {
	reqs := make(chan *pb.EncodeStreamRequest, 1000)
	var received, sent int
	go func() {
		defer close(reqs)
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			f.mu.Lock()
			received++
			f.maxInFlight = max(f.maxInFlight, received-sent)
			f.mu.Unlock()
			reqs <- r
		}
	}()
	for r := range reqs {
		time.Sleep(2 * time.Millisecond) // let requests pile up
		resp := &pb.EncodeStreamResponse{Id: r.GetId()}
		if r.GetRequest().GetModel() == "bad-ids" {
			resp.Id = "x" + r.GetId()
		}
		if len(r.GetRequest().GetTexts()) == 0 {
			resp.Result = &pb.EncodeStreamResponse_Error{Error: &pb.StreamError{Code: int32(codes.InvalidArgument), Message: "texts must not be empty", Field: "texts"}}
		} else {
			er, err := encodeResponse(r.GetRequest())
			if err != nil {
				return err
			}
			resp.Result = &pb.EncodeStreamResponse_Response{Response: er}
		}
		f.mu.Lock()
		sent++
		f.mu.Unlock()
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

func rerankResponse(req *pb.RerankRequest) (*pb.RerankResponse, error) {
	if req.GetTopK() < 0 {
		return nil, status.Error(codes.InvalidArgument, "top_k must not be negative")
	}
	resp := &pb.RerankResponse{Metadata: &pb.Metadata{Model: req.GetModel()}}
	for i, d := range req.GetDocuments() {
		r := &pb.RerankResult{Index: uint32(i), Score: float32(len(d)) / 100, TokenCount: uint32(len(d))}
		if req.GetScores() == pb.ScoreMode_SCORE_MODE_RAW {
			r.Score *= 10
		}
		if req.GetReturnDocuments() {
			r.Document = d
		}
		resp.Results = append(resp.Results, r)
	}
	slices.SortStableFunc(resp.Results, func(a, b *pb.RerankResult) int { return -cmpFloat(a.Score, b.Score) })
	if req.TopK != nil && int(req.GetTopK()) < len(resp.Results) {
		resp.Results = resp.Results[:req.GetTopK()]
	}
	return resp, nil
}

func cmpFloat(a, b float32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (f *fake) Rerank(_ context.Context, req *pb.RerankRequest) (*pb.RerankResponse, error) {
	return rerankResponse(req)
}

func (f *fake) RerankStream(stream grpc.BidiStreamingServer[pb.RerankStreamRequest, pb.RerankStreamResponse]) error {
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		resp := &pb.RerankStreamResponse{Id: r.GetId()}
		if rr, err := rerankResponse(r.GetRequest()); err != nil {
			resp.Result = &pb.RerankStreamResponse_Error{Error: &pb.StreamError{Code: int32(status.Code(err)), Message: status.Convert(err).Message(), Field: "top_k"}}
		} else {
			resp.Result = &pb.RerankStreamResponse_Response{Response: rr}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (f *fake) ListModels(context.Context, *pb.ListModelsRequest) (*pb.ListModelsResponse, error) {
	return &pb.ListModelsResponse{Models: []*pb.ModelInfo{
		{Name: "e", Kind: pb.ModelKind_MODEL_KIND_EMBEDDING, Dimensions: 3},
		{Name: "r", Kind: pb.ModelKind_MODEL_KIND_RERANK},
	}}, nil
}

func (f *fake) GetModel(_ context.Context, req *pb.GetModelRequest) (*pb.ModelInfo, error) {
	if req.GetName() != "e" {
		return nil, status.Errorf(codes.NotFound, "model %q not found", req.GetName())
	}
	return &pb.ModelInfo{Name: "e", Dimensions: 3}, nil
}

// startFake serves a fake on an in-memory listener and returns it with a
// function that dials it.
func startFake(t *testing.T) (*fake, func(...Option) *Client) {
	t.Helper()
	f := &fake{}
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	pb.RegisterEmbedServer(s, f)
	pb.RegisterRerankServer(s, f)
	pb.RegisterModelsServer(s, f)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	dial := func(opts ...Option) *Client {
		t.Helper()
		opts = append(opts, WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return lis.DialContext(ctx)
		})))
		c, err := Dial("passthrough:///bufnet", opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return f, dial
}

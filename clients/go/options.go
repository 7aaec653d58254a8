package embedrank

import (
	"context"
	"crypto/tls"
	_ "embed"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/grpc"
	_ "google.golang.org/grpc/health" // client-side health checking (healthCheckConfig)
)

// Option configures Dial.
type Option func(*config)

// DefaultStreamWindow is how many requests EncodeStream and RerankStream
// keep in flight on one stream unless WithStreamWindow says otherwise.
const DefaultStreamWindow = 16

// DefaultMaxRecvMsgSize is the largest response the client accepts unless
// changed with WithDialOptions(grpc.WithDefaultCallOptions(
// grpc.MaxCallRecvMsgSize(n))). gRPC's own default (4 MiB) is only about
// 1,000 embeddings of 1,024 float32 dimensions.
const DefaultMaxRecvMsgSize = 64 << 20

type config struct {
	tls            *tls.Config // nil: plaintext
	token          string
	defaultTimeout time.Duration
	retryAttempts  int
	streamWindow   int
	dialOpts       []grpc.DialOption
}

func defaultConfig() config {
	return config{streamWindow: DefaultStreamWindow}
}

// WithInsecure makes the connection plaintext (no TLS). This is the default;
// it undoes an earlier WithTLS.
func WithInsecure() Option {
	return func(c *config) { c.tls = nil }
}

// WithTLS makes the connection use TLS with cfg; nil means the system roots
// and default settings.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) {
		if cfg == nil {
			cfg = &tls.Config{}
		}
		c.tls = cfg
	}
}

// WithBearerToken sends "authorization: Bearer <token>" with every call.
// The token is sent over plaintext connections too: use WithTLS unless the
// path to the server is trusted.
func WithBearerToken(token string) Option {
	return func(c *config) { c.token = token }
}

// WithDefaultTimeout bounds every call whose context has no deadline: a
// unary call, or the whole of a stream (EncodeStream, RerankStream).
// Zero or negative means no default.
func WithDefaultTimeout(d time.Duration) Option {
	return func(c *config) { c.defaultTimeout = d }
}

// WithRetry retries calls that fail with codes.Unavailable, up to
// maxAttempts attempts in all (gRPC caps this at 5), with exponential
// backoff, through the connection's default service config. Values below 2
// turn retries off. A service config sent by the server's name resolver
// takes precedence.
func WithRetry(maxAttempts int) Option {
	return func(c *config) { c.retryAttempts = maxAttempts }
}

// WithStreamWindow sets how many requests EncodeStream and RerankStream
// keep in flight on one stream (default DefaultStreamWindow); values below
// 1 mean 1.
func WithStreamWindow(n int) Option {
	return func(c *config) { c.streamWindow = max(n, 1) }
}

// WithDialOptions appends raw gRPC dial options, applied after the ones
// this package sets, so they can override them.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOpts = append(c.dialOpts, opts...) }
}

func (cfg *config) dialOptions() ([]grpc.DialOption, error) {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(cfg.transportCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(DefaultMaxRecvMsgSize)),
	}
	if cfg.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken(cfg.token)))
	}
	if d := cfg.defaultTimeout; d > 0 {
		opts = append(opts,
			grpc.WithChainUnaryInterceptor(unaryTimeout(d)),
			grpc.WithChainStreamInterceptor(streamTimeout(d)))
	}
	// Always a default service config: round-robin over every address the
	// target resolves to (replicas), and the retry policy when asked for.
	sc, err := retryServiceConfig(cfg.retryAttempts)
	if err != nil {
		return nil, err
	}
	opts = append(opts, grpc.WithDefaultServiceConfig(sc))
	return append(opts, cfg.dialOpts...), nil
}

// sharedServiceConfig is clients/service-config.json, the gRPC service config
// the Python, Go and Java clients share (copied here by protos/generate.sh:
// go:embed reads only files inside the module): round-robin over every
// address the target resolves to, client-side health checking (the
// grpc/health import: a replica whose grpc.health.v1 status turns
// NOT_SERVING, draining after SIGTERM, gets no new calls before its
// connections close), and the retry policy for UNAVAILABLE on every method of
// the embedrank services.
//
//go:embed service_config.json
var sharedServiceConfig []byte

// retryServiceConfig returns the shared service config (JSON) with the retry
// policy's maxAttempts set, or without a retry policy for maxAttempts below 2
// (a retry is balanced like a first attempt: onto the next replica).
func retryServiceConfig(maxAttempts int) (string, error) {
	var sc map[string]any
	if err := json.Unmarshal(sharedServiceConfig, &sc); err != nil {
		return "", fmt.Errorf("embedrank: service config: %w", err)
	}
	if maxAttempts > 1 {
		mc, ok := sc["methodConfig"].([]any)
		if !ok || len(mc) != 1 {
			return "", fmt.Errorf("embedrank: service config: want one methodConfig")
		}
		policy, ok := mc[0].(map[string]any)["retryPolicy"].(map[string]any)
		if !ok {
			return "", fmt.Errorf("embedrank: service config: no retryPolicy")
		}
		policy["maxAttempts"] = maxAttempts
	} else {
		delete(sc, "methodConfig")
	}
	b, err := json.Marshal(sc)
	if err != nil {
		return "", fmt.Errorf("embedrank: service config: %w", err)
	}
	return string(b), nil
}

// bearerToken is per-RPC credentials that send a bearer token.
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity is false so that a token also works on plaintext
// connections (local development, a TLS-terminating proxy).
func (bearerToken) RequireTransportSecurity() bool { return false }

func unaryTimeout(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

func streamTimeout(d time.Duration) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if _, ok := ctx.Deadline(); ok {
			return streamer(ctx, desc, cc, method, opts...)
		}
		ctx, cancel := context.WithTimeout(ctx, d)
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			cancel()
			return nil, err
		}
		return &cancelStream{ClientStream: s, cancel: cancel}, nil
	}
}

// cancelStream releases the stream's timeout when the stream ends (RecvMsg
// fails, io.EOF included); if the caller abandons the stream, the timeout
// releases itself when it fires.
type cancelStream struct {
	grpc.ClientStream
	cancel context.CancelFunc
}

func (s *cancelStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.cancel()
	}
	return err
}

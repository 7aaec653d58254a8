// Package embedrank is a Go client for the embedrank gRPC inference server,
// which serves sentence-transformers embedding (bi-encoder) and reranking
// (cross-encoder) models.
//
// It is a thin layer over the generated stubs in package
// github.com/embedrank/embedrank/clients/go/gen/embedrankv1: Dial opens a
// connection, Client.Encode returns embeddings as [][]float32,
// Client.EncodeQuantized returns int8/uint8/binary embeddings,
// Client.Rerank scores documents against a query, and Client.EncodeStream /
// Client.RerankStream send many requests on one bidirectional stream and
// return the results in request order. The generated clients stay reachable
// through Client.Conn for anything this package does not wrap.
//
// # Errors
//
// Every error the server returns, and every per-item error of a stream, is
// an *Error carrying the gRPC status code and the server's message:
//
//	var e *embedrank.Error
//	if errors.As(err, &e) && e.Code == codes.NotFound { ... }
//
// *Error also implements GRPCStatus, so status.Code(err) and
// status.FromError(err) work on it too. Errors found on the client side
// (an invalid option, a malformed response) are plain errors, for which
// status.Code returns codes.Unknown.
package embedrank

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

// Client is a connection to an embedrank server. It is safe for concurrent
// use; create one per server and Close it when done.
type Client struct {
	conn         *grpc.ClientConn
	embed        pb.EmbedClient
	rerank       pb.RerankClient
	models       pb.ModelsClient
	sparse       pb.SparseEmbedClient
	multiVector  pb.MultiVectorEmbedClient
	streamWindow int
}

// Dial creates a Client for target (for example "localhost:50051" or
// "dns:///embedrank.internal:50051") with grpc.NewClient. Like
// grpc.NewClient it does not connect: an unreachable server shows up as a
// codes.Unavailable error on the first call. Without WithTLS the connection
// is plaintext.
func Dial(target string, opts ...Option) (*Client, error) {
	if target == "" {
		return nil, errors.New("embedrank: empty target")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	dopts, err := cfg.dialOptions()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(target, dopts...)
	if err != nil {
		return nil, fmt.Errorf("embedrank: %w", err)
	}
	return &Client{
		conn:         conn,
		embed:        pb.NewEmbedClient(conn),
		rerank:       pb.NewRerankClient(conn),
		models:       pb.NewModelsClient(conn),
		sparse:       pb.NewSparseEmbedClient(conn),
		multiVector:  pb.NewMultiVectorEmbedClient(conn),
		streamWindow: cfg.streamWindow,
	}, nil
}

// Close closes the underlying connection; calls in progress fail.
func (c *Client) Close() error { return c.conn.Close() }

// Conn returns the underlying connection, for use with the generated
// clients, e.g. embedrankv1.NewModelsClient(c.Conn()). The options given
// to Dial (credentials, default timeout, retry) apply to it.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// ListModels returns the models the server has loaded.
func (c *Client) ListModels(ctx context.Context) ([]*pb.ModelInfo, error) {
	resp, err := c.models.ListModels(ctx, &pb.ListModelsRequest{})
	if err != nil {
		return nil, wrapErr(err)
	}
	return resp.GetModels(), nil
}

// GetModel returns what the server knows of one model; an unknown name is a
// codes.NotFound *Error.
func (c *Client) GetModel(ctx context.Context, name string) (*pb.ModelInfo, error) {
	info, err := c.models.GetModel(ctx, &pb.GetModelRequest{Name: name})
	if err != nil {
		return nil, wrapErr(err)
	}
	return info, nil
}

// transportCredentials picks TLS or plaintext.
func (cfg *config) transportCredentials() credentials.TransportCredentials {
	if cfg.tls == nil {
		return insecure.NewCredentials()
	}
	return credentials.NewTLS(cfg.tls)
}

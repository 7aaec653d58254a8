package embedrank

import (
	"errors"
	"fmt"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

var replicaSchemes atomic.Int64

// DialReplicas creates a Client for several servers given as "host:port"
// addresses (replicas of one deployment). Calls are balanced round-robin
// over them; with WithRetry, a call that fails with codes.Unavailable (a
// replica shutting down or gone) is retried on the next one.
//
// The list is fixed for the Client's life. Replicas behind one DNS name (a
// Kubernetes headless Service) need no list: Dial("dns:///name:port")
// balances over every address the name resolves to, and resolves it again
// when connections close (see the server's --max-connection-age-s).
func DialReplicas(addrs []string, opts ...Option) (*Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("embedrank: no addresses")
	}
	state := resolver.State{}
	for _, a := range addrs {
		if a == "" {
			return nil, errors.New("embedrank: empty address")
		}
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a})
	}
	// A scheme of its own per Client: a manual resolver serves one target.
	r := manual.NewBuilderWithScheme(fmt.Sprintf("embedrank-replicas-%d", replicaSchemes.Add(1)))
	r.InitialState(state)
	return Dial(r.Scheme()+":///replicas", append(opts, WithDialOptions(grpc.WithResolvers(r)))...)
}

package embedrank

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

// startReplica serves a fake on a loopback TCP port.
func startReplica(t *testing.T) (*fake, string, *grpc.Server) {
	f, a, s, _ := startHealthReplica(t)
	return f, a, s
}

// startHealthReplica also serves grpc.health.v1, SERVING until told otherwise.
func startHealthReplica(t *testing.T) (*fake, string, *grpc.Server, *health.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{}
	s := grpc.NewServer()
	pb.RegisterEmbedServer(s, f)
	pb.RegisterModelsServer(s, f)
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return f, lis.Addr().String(), s, h
}

// A replica whose health turns NOT_SERVING (as embedrank's does on SIGTERM)
// gets no new calls, although its connection is still open.
func TestDialReplicasSkipsNotServing(t *testing.T) {
	var fakes []*fake
	var addrs []string
	var healths []*health.Server
	for range 3 {
		f, a, _, h := startHealthReplica(t)
		fakes, addrs, healths = append(fakes, f), append(addrs, a), append(healths, h)
	}
	c, err := DialReplicas(addrs, WithRetry(4), WithDefaultTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	// Round robin uses a replica once its connection and health watch are up: on a busy box that
	// can take longer than a few calls, so call until replica 0 takes one (or 10 s pass).
	for deadline := time.Now().Add(10 * time.Second); fakes[0].callCount() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("replica 0 took no call while serving")
		}
		if _, err := c.Encode(ctx, "e", []string{"warm"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	healths[0].SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	time.Sleep(200 * time.Millisecond) // the Watch stream carries the change
	before := fakes[0].callCount()
	for range 60 {
		if _, err := c.Encode(ctx, "e", []string{"draining"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fakes[0].callCount() - before; got != 0 {
		t.Errorf("the NOT_SERVING replica took %d calls", got)
	}
}

func (f *fake) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func TestDialReplicasBalancesAndRetries(t *testing.T) {
	var fakes []*fake
	var addrs []string
	var servers []*grpc.Server
	for range 3 {
		f, a, s := startReplica(t)
		fakes, addrs, servers = append(fakes, f), append(addrs, a), append(servers, s)
	}
	c, err := DialReplicas(addrs, WithRetry(4), WithDefaultTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	// Let every subchannel connect (and its health watch report SERVING) before counting, as a
	// long-lived client would: until each replica has taken a call (slow on a loaded machine).
	for deadline := time.Now().Add(10 * time.Second); fakes[0].callCount() == 0 || fakes[1].callCount() == 0 || fakes[2].callCount() == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("not every replica took a call within 10s: %d %d %d", fakes[0].callCount(), fakes[1].callCount(), fakes[2].callCount())
		}
		if _, err := c.Encode(ctx, "e", []string{"warm"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	before := []int{fakes[0].callCount(), fakes[1].callCount(), fakes[2].callCount()}
	const n = 90
	for range n {
		if _, err := c.Encode(ctx, "e", []string{"spread"}); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range fakes {
		if got := f.callCount() - before[i]; got < n/5 {
			t.Errorf("replica %d took %d of %d calls, want >= 20%%", i, got, n)
		}
	}
	// One replica gone: every call still succeeds on the others.
	servers[0].Stop()
	for i := range 60 {
		if _, err := c.Encode(ctx, "e", []string{"after"}); err != nil {
			t.Fatalf("call %d after a replica stopped: %v", i, err)
		}
	}
}

func TestDialReplicasErrors(t *testing.T) {
	if _, err := DialReplicas(nil); err == nil {
		t.Error("no addresses: no error")
	}
	if _, err := DialReplicas([]string{"127.0.0.1:1", ""}); err == nil {
		t.Error("empty address: no error")
	}
}

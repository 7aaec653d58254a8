package embedrank

// The caller's trace reaches the server: OpenTelemetry's standard gRPC instrumentation (otelgrpc's
// client stats handler), given to Dial as a dial option, as the README shows.

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
)

func TestOtelgrpcSendsTheCallersTraceContext(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	f, dial := startFake(t)
	c := dial(WithInsecure(), WithDialOptions(grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(propagation.TraceContext{})))))

	ctx, app := tp.Tracer("app").Start(context.Background(), "search")
	if _, err := c.Encode(ctx, "e", []string{"hello"}); err != nil {
		t.Fatal(err)
	}
	app.End()

	var client sdktrace.ReadOnlySpan
	for _, s := range spans.GetSpans().Snapshots() {
		if s.Name() == "embedrank.v1.Embed/Encode" {
			client = s
		}
	}
	if client == nil {
		t.Fatalf("no client span for Encode among %d spans", len(spans.GetSpans()))
	}
	if client.Parent().SpanID() != app.SpanContext().SpanID() {
		t.Fatalf("the client span's parent is %s, not the application's span", client.Parent().SpanID())
	}
	want := fmt.Sprintf("00-%s-%s-01", client.SpanContext().TraceID(), client.SpanContext().SpanID())
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.traceparent) != 1 || f.traceparent[0] != want {
		t.Fatalf("the server got traceparent %q, want [%s]", f.traceparent, want)
	}
}

package embedrank

import (
	"context"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestTLSE2E runs against a mutual-TLS server that tests/test_tls.py starts
// with certificates it made; it is skipped without EMBEDRANK_TLS_TARGET.
func TestTLSE2E(t *testing.T) {
	target := os.Getenv("EMBEDRANK_TLS_TARGET")
	if target == "" {
		t.Skip("EMBEDRANK_TLS_TARGET not set (tests/test_tls.py sets it)")
	}
	ca, model := os.Getenv("EMBEDRANK_TLS_CA"), os.Getenv("EMBEDRANK_TLS_MODEL")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cfg, err := TLSConfig(ca, os.Getenv("EMBEDRANK_TLS_CERT"), os.Getenv("EMBEDRANK_TLS_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(target, WithTLS(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	vecs, err := c.Encode(ctx, model, []string{"over mutual TLS"})
	if err != nil {
		t.Fatalf("with the right client certificate: %v", err)
	}
	if len(vecs) != 1 || len(vecs[0]) == 0 {
		t.Fatalf("got %d vectors", len(vecs))
	}

	refused := func(name, certFile, keyFile string) {
		t.Helper()
		cfg, err := TLSConfig(ca, certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Dial(target, WithTLS(cfg))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Encode(ctx, model, []string{"refused"})
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("%s: want Unavailable, got %v", name, err)
		}
	}
	refused("no client certificate", "", "")
	refused("certificate of another CA", os.Getenv("EMBEDRANK_TLS_OTHER_CERT"), os.Getenv("EMBEDRANK_TLS_OTHER_KEY"))

	plain, err := Dial(target)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Encode(ctx, model, []string{"plaintext"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext: want Unavailable, got %v", err)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	if _, err := TLSConfig("/nonexistent/ca.pem", "", ""); err == nil {
		t.Fatal("missing CA file accepted")
	}
	if _, err := TLSConfig("", "client.pem", ""); err == nil {
		t.Fatal("certificate without key accepted")
	}
	f, err := os.CreateTemp(t.TempDir(), "ca")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("not a certificate")
	f.Close()
	if _, err := TLSConfig(f.Name(), "", ""); err == nil {
		t.Fatal("CA file without certificates accepted")
	}
}

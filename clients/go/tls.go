package embedrank

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSConfig returns a TLS configuration for WithTLS that trusts the CA
// certificates in the PEM file caFile (empty: the system roots) and, when
// certFile and keyFile are given, presents that client certificate to a
// server that asks for one (mutual TLS, the server's --tls-client-ca):
//
//	cfg, err := embedrank.TLSConfig("ca.pem", "client.pem", "client.key")
//	if err != nil { ... }
//	c, err := embedrank.Dial("embedrank.internal:50051", embedrank.WithTLS(cfg))
//
// The files are read once, here.
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("embedrank: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("embedrank: CA file %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("embedrank: a client certificate needs both certFile and keyFile")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("embedrank: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

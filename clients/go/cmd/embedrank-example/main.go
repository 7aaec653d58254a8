// Command embedrank-example encodes a few sentences with an embedrank server,
// prints their cosine similarities, and reranks them against a query when a
// rerank model is given.
//
//	go run ./cmd/embedrank-example -target localhost:50051 -model minilm -rerank-model demo-reranker
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"time"

	embedrank "github.com/embedrank/embedrank/clients/go"
)

func main() {
	target := flag.String("target", "localhost:50051", "server address, host:port")
	model := flag.String("model", "minilm", "embedding model name")
	rerankModel := flag.String("rerank-model", "", "rerank model name (optional)")
	timeout := flag.Duration("timeout", 30*time.Second, "timeout of each call")
	flag.Parse()

	c, err := embedrank.Dial(*target, embedrank.WithDefaultTimeout(*timeout), embedrank.WithRetry(3))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	sentences := []string{
		"The cat sits on the mat.",
		"A cat is resting on a rug.",
		"Stock markets fell sharply today.",
		"The weather is sunny and warm.",
	}
	vecs, err := c.Encode(ctx, *model, sentences)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d embeddings of %d dimensions\n\ncosine similarities:\n", len(vecs), len(vecs[0]))
	for i := range sentences {
		for j := range sentences {
			fmt.Printf(" %6.3f", cosine(vecs[i], vecs[j]))
		}
		fmt.Printf("  %s\n", sentences[i])
	}

	if *rerankModel == "" {
		return
	}
	query := "Where is the cat?"
	results, err := c.Rerank(ctx, *rerankModel, query, sentences)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("\nreranked for %q:\n", query)
	for _, r := range results {
		fmt.Printf(" %8.4f  %s\n", r.Score, sentences[r.Index])
	}
}

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

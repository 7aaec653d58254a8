// Command golone times lone unary Encode calls from the Go client for bench/latency.py.
//
// It reads one text a line (JSON-quoted) on stdin, makes one Encode call for it and writes one
// line back: the call's wall time as the Go caller saw it and the server's own timing, all in ns
// ("call tokenize queue inference total"). The benchmark process drives it so that the Go client,
// the Python client and ONNX Runtime alone take turns request by request.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	embedrank "github.com/embedrank/embedrank/clients/go"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: golone TARGET MODEL")
		os.Exit(2)
	}
	client, err := embedrank.Dial(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer client.Close()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		var text string
		if err := json.Unmarshal(in.Bytes(), &text); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		start := time.Now()
		res, err := client.EncodeFull(context.Background(), os.Args[2], []string{text})
		elapsed := time.Since(start)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		t := res.Metadata.GetTiming()
		fmt.Fprintf(out, "%d %d %d %d %d\n", elapsed.Nanoseconds(), t.GetTokenizeNs(), t.GetQueueNs(), t.GetInferenceNs(), t.GetTotalNs())
		out.Flush()
	}
}

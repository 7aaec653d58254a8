package embedrank_test

// The Go blocks of the repository's README.md and of this module's README.md
// are whole programs that compile against this module the way a user's
// program does (README.md: a replace directive to the checkout). Each is
// written to a temporary module and type-checked with `go vet`; a program
// with a type error must fail the same check, so the harness itself is
// tested too. No server is needed.

import (
	"fmt"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var goFence = regexp.MustCompile("(?ms)^```go\n(.*?)^```")

type snippet struct {
	name string // e.g. README_L93: the file and line of the fence
	code string
}

func goBlocks(t *testing.T, path, label string) []snippet {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	var out []snippet
	for _, m := range goFence.FindAllStringSubmatchIndex(text, -1) {
		line := strings.Count(text[:m[0]], "\n") + 1
		out = append(out, snippet{fmt.Sprintf("%s_L%d", label, line), text[m[2]:m[3]]})
	}
	return out
}

// vetModule writes the programs into a fresh module that requires this one
// through a replace directive and returns go vet's output and error.
func vetModule(t *testing.T, programs []snippet) (string, error) {
	t.Helper()
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod := "module example.com/readme\n\ngo 1.26\n\nrequire github.com/embedrank/embedrank/clients/go v0.0.0\n\n" +
		"replace github.com/embedrank/embedrank/clients/go => " + self + "\n"
	sum, err := os.ReadFile("go.sum") // this module's dependencies are the program's
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"go.mod": gomod, "go.sum": string(sum)}
	for _, p := range programs {
		files[filepath.Join(p.name, "main.go")] = p.code
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goTool, "vet", "./...")
	cmd.Dir = dir
	// Offline: every module is in the cache already (this module's tests built them).
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestReadmeGoBlocksCompile(t *testing.T) {
	blocks := append(goBlocks(t, filepath.Join("..", "..", "README.md"), "README"), goBlocks(t, "README.md", "clients_go_README")...)
	if len(blocks) < 2 {
		t.Fatalf("%d Go blocks in the READMEs, want the repository's and this module's", len(blocks))
	}
	for _, b := range blocks {
		if !strings.HasPrefix(b.code, "package main\n") {
			t.Errorf("%s: a Go block must be a whole program (package main, imports, main)", b.name)
		}
		if formatted, err := format.Source([]byte(b.code)); err != nil || string(formatted) != b.code {
			t.Errorf("%s: not gofmt-formatted (%v):\n%s", b.name, err, formatted)
		}
	}
	if out, err := vetModule(t, blocks); err != nil {
		t.Fatalf("README Go blocks do not compile against this module (%v):\n%s", err, out)
	}
	broken := snippet{"broken", "package main\n\nimport embedrank \"github.com/embedrank/embedrank/clients/go\"\n\n" +
		"func main() { _ = embedrank.NoSuchFunction() }\n"}
	if out, err := vetModule(t, []snippet{broken}); err == nil || !strings.Contains(out, "NoSuchFunction") {
		t.Fatalf("the check passed a program that cannot compile (%v):\n%s", err, out)
	}
}

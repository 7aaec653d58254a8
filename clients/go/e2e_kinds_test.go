package embedrank_test

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"

	"google.golang.org/grpc/codes"

	embedrank "github.com/embedrank/embedrank/clients/go"
	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

// kinds is the "kinds" part of EMBEDRANK_EXPECTED: Classify and Tokenize as the Python client saw them.
type kinds struct {
	ClassifyModel string      `json:"classify_model"`
	Pairs         [][2]string `json:"pairs"`
	Classify      [][]struct {
		Index int     `json:"index"`
		Label string  `json:"label"`
		Score float64 `json:"score"`
	} `json:"classify"`
	TokenizeModel string   `json:"tokenize_model"`
	TokenizeTexts []string `json:"tokenize_texts"`
	Tokenize      []struct {
		IDs      []uint32 `json:"ids"`
		Spans    [][2]int `json:"spans"`
		Pieces   []string `json:"pieces"`
		Prompt   string   `json:"prompt"`
		Decoded  string   `json:"decoded"`
		Specials []bool   `json:"specials"`
	} `json:"tokenize"`
}

func loadKinds(t *testing.T) *kinds {
	t.Helper()
	raw, err := os.ReadFile(os.Getenv("EMBEDRANK_EXPECTED"))
	if err != nil {
		t.Fatal(err)
	}
	var wrapper struct {
		Kinds *kinds `json:"kinds"`
	}
	if err := json.Unmarshal(raw, &wrapper); err != nil || wrapper.Kinds == nil {
		t.Fatalf("expected.json has no kinds section (%v)", err)
	}
	return wrapper.Kinds
}

func TestE2EClassify(t *testing.T) {
	c, _, ctx := e2e(t)
	k := loadKinds(t)
	pairs := make([]embedrank.Pair, len(k.Pairs))
	for i, p := range k.Pairs {
		pairs[i] = embedrank.Pair{First: p[0], Second: p[1]}
	}
	got, err := c.ClassifyPairs(ctx, k.ClassifyModel, pairs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(k.Classify) {
		t.Fatalf("%d results, want %d", len(got), len(k.Classify))
	}
	for i, want := range k.Classify {
		for j, w := range want {
			g := got[i].Labels[j]
			if g.Index != w.Index || g.Label != w.Label || math.Abs(float64(g.Score)-w.Score) > tolerance {
				t.Errorf("input %d label %d: %+v, want %+v", i, j, g, w)
			}
		}
	}
	top, err := c.ClassifyPairs(ctx, k.ClassifyModel, pairs[:1], embedrank.ClassifyTopK(1))
	if err != nil || len(top[0].Labels) != 1 || top[0].Labels[0].Index != k.Classify[0][0].Index {
		t.Errorf("top 1: %+v, %v", top, err)
	}
	_, err = c.ClassifyPairs(ctx, k.ClassifyModel, pairs[:1], embedrank.ClassifyTopK(0))
	var e *embedrank.Error
	if !errors.As(err, &e) || e.Code != codes.InvalidArgument {
		t.Errorf("top_k 0: %v, want InvalidArgument", err)
	}
	_, err = c.Classify(ctx, k.TokenizeModel, []string{"a"})
	if !errors.As(err, &e) || e.Code != codes.FailedPrecondition {
		t.Errorf("Classify on an embedding model: %v, want FailedPrecondition", err)
	}
}

func TestE2ETokenize(t *testing.T) {
	c, _, ctx := e2e(t)
	k := loadKinds(t)
	got, err := c.Tokenize(ctx, k.TokenizeModel, k.TokenizeTexts, embedrank.TokenizeAs(pb.InputType_INPUT_TYPE_QUERY))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range k.Tokenize {
		in := got.Inputs[i]
		if in.Prompt != want.Prompt || in.TokenCount != len(want.IDs) {
			t.Errorf("text %d: prompt %q count %d, want %q %d", i, in.Prompt, in.TokenCount, want.Prompt, len(want.IDs))
		}
		for j, tok := range in.Tokens {
			if tok.ID != want.IDs[j] || tok.Span.Start != want.Spans[j][0] || tok.Span.End != want.Spans[j][1] || tok.Special != want.Specials[j] {
				t.Errorf("text %d token %d: %+v, want id %d span %v", i, j, tok, want.IDs[j], want.Spans[j])
			}
			if !tok.Special && !tok.Prompt && tok.Span.Of(k.TokenizeTexts[i]) != want.Pieces[j] {
				t.Errorf("text %d token %d covers %q, want %q", i, j, tok.Span.Of(k.TokenizeTexts[i]), want.Pieces[j])
			}
		}
		text, err := c.Decode(ctx, k.TokenizeModel, in.IDs(), true)
		if err != nil || text != want.Decoded {
			t.Errorf("decode %d: %q (%v), want %q", i, text, err, want.Decoded)
		}
	}
}

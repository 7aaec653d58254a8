package embedrank

import (
	"context"

	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

// Pair is two texts read together by a cross-encoder or a pair classifier:
// (query, document) for a reranker, (premise, hypothesis) for NLI.
type Pair struct {
	First, Second string
}

func pairsProto(pairs []Pair) []*pb.TextPair {
	out := make([]*pb.TextPair, len(pairs))
	for i, p := range pairs {
		out[i] = &pb.TextPair{First: p.First, Second: p.Second}
	}
	return out
}

// TokenizeOption adjusts a TokenizeRequest.
type TokenizeOption func(*pb.TokenizeRequest)

// TokenizeAs applies the prompt Encode applies for input type t
// (pb.InputType_INPUT_TYPE_QUERY or _DOCUMENT).
func TokenizeAs(t pb.InputType) TokenizeOption {
	return func(r *pb.TokenizeRequest) { r.InputType = t }
}

// TokenizePrompt applies the model's prompt of that name; it wins over TokenizeAs.
func TokenizePrompt(name string) TokenizeOption {
	return func(r *pb.TokenizeRequest) { r.PromptName = name }
}

// TokenizeTruncation cuts as Encode would (TruncationEnd, the default, or
// TruncationStart); TruncationNone returns every token, never cut.
func TokenizeTruncation(mode Truncation) TokenizeOption {
	return func(r *pb.TokenizeRequest) { r.Truncation = mode }
}

// Token is one token a model reads.
type Token struct {
	ID uint32
	// Text is the token as the vocabulary writes it ("##ing", "[CLS]").
	Text string
	// Span is what the token covers in the caller's text (in the pair's
	// Sequence; prompt tokens: in the prompt; special tokens: 0, 0), in
	// Unicode code points: Span.Of(text).
	Span Span
	// Special marks tokens the model's template adds ([CLS], [SEP]) and a
	// multi-vector query's expansion tokens ([MASK], read and scored).
	Special bool
	// Prompt marks tokens of the prompt placed before the text.
	Prompt bool
	// Sequence is 0 for a text or a pair's first, 1 for a pair's second.
	Sequence int
}

// TokenizedInput is the tokens of one text or pair, as the model runs them.
type TokenizedInput struct {
	Tokens     []Token
	TokenCount int
	// Truncated tells whether the model cuts the input to MaxTokens (with
	// TruncationNone: whether it would).
	Truncated bool
	// Prompt is the prompt placed before the text ("" when none).
	Prompt string
}

// IDs returns the token ids in order.
func (t TokenizedInput) IDs() []uint32 {
	ids := make([]uint32, len(t.Tokens))
	for i, tok := range t.Tokens {
		ids[i] = tok.ID
	}
	return ids
}

// TokenizeResult is the answer to a Tokenize call.
type TokenizeResult struct {
	// Inputs holds one entry per text or pair, in request order.
	Inputs []TokenizedInput
	// MaxTokens is the model's limit, special tokens included.
	MaxTokens int
	Metadata  *pb.Metadata
}

// Tokenize returns the tokens model reads for each text, with the prompt
// Encode would apply (TokenizeAs, TokenizePrompt). It works for a model of
// any kind; no model runs.
func (c *Client) Tokenize(ctx context.Context, model string, texts []string, opts ...TokenizeOption) (*TokenizeResult, error) {
	return c.tokenize(ctx, &pb.TokenizeRequest{Model: model, Texts: texts}, opts)
}

// TokenizePairs returns the tokens of each pair as Rerank and Classify run them.
func (c *Client) TokenizePairs(ctx context.Context, model string, pairs []Pair, opts ...TokenizeOption) (*TokenizeResult, error) {
	return c.tokenize(ctx, &pb.TokenizeRequest{Model: model, Pairs: pairsProto(pairs)}, opts)
}

func (c *Client) tokenize(ctx context.Context, req *pb.TokenizeRequest, opts []TokenizeOption) (*TokenizeResult, error) {
	for _, o := range opts {
		o(req)
	}
	resp, err := pb.NewTokenizeClient(c.conn).Tokenize(ctx, req)
	if err != nil {
		return nil, wrapErr(err)
	}
	return decodeTokenize(resp), nil
}

func decodeTokenize(resp *pb.TokenizeResponse) *TokenizeResult {
	out := &TokenizeResult{MaxTokens: int(resp.GetMaxTokens()), Metadata: resp.GetMetadata()}
	for _, in := range resp.GetInputs() {
		item := TokenizedInput{
			TokenCount: int(in.GetTokenCount()), Truncated: in.GetTruncated(), Prompt: in.GetPrompt(),
			Tokens: make([]Token, len(in.GetTokens())),
		}
		for j, t := range in.GetTokens() {
			item.Tokens[j] = Token{
				ID: t.GetId(), Text: t.GetText(), Special: t.GetSpecial(), Prompt: t.GetPrompt(),
				Sequence: int(t.GetSequence()),
				Span:     Span{Start: int(t.GetSpan().GetStart()), End: int(t.GetSpan().GetEnd())},
			}
		}
		out.Inputs = append(out.Inputs, item)
	}
	return out
}

// Decode turns token ids back into text, as the model's tokenizer does;
// skipSpecial leaves out [CLS], [SEP] and the other special tokens.
func (c *Client) Decode(ctx context.Context, model string, ids []uint32, skipSpecial bool) (string, error) {
	resp, err := pb.NewTokenizeClient(c.conn).Decode(ctx, &pb.DecodeRequest{Model: model, Ids: ids, SkipSpecialTokens: skipSpecial})
	if err != nil {
		return "", wrapErr(err)
	}
	return resp.GetText(), nil
}

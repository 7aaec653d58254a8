package dev.embedrank.client;

/**
 * One token a model reads.
 *
 * @param id the token id
 * @param text the token as the vocabulary writes it ("##ing", "[CLS]")
 * @param span what it covers in the caller's text (the pair's {@code sequence}; prompt tokens: in
 *     the prompt; special tokens: [0, 0)), in Unicode code points: {@code span.of(text)}
 * @param special added by the model's template ([CLS], [SEP]), or a multi-vector query's expansion token ([MASK])
 * @param prompt part of the prompt placed before the text
 * @param sequence 0 for a text or a pair's first, 1 for a pair's second
 */
public record Token(int id, String text, Span span, boolean special, boolean prompt, int sequence) {}

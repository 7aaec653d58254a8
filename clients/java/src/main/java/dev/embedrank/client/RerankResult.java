package dev.embedrank.client;

/**
 * One scored document.
 *
 * @param index position of the document in the request
 * @param score score of the pair (label 0), activated unless raw scores were asked for
 * @param document the document's text when {@code returnDocuments} was asked for, else null
 * @param truncated whether the pair was cut to the model's max_tokens
 * @param span with LONG_INPUT_CHUNK, the best-scoring window of the document (its score is
 *     {@code score}); else null
 * @param chunkCount with LONG_INPUT_CHUNK, the windows the document was split into; else 0
 */
public record RerankResult(
    int index, float score, String document, boolean truncated, Span span, int chunkCount) {

  /** A result without chunking. */
  public RerankResult(int index, float score, String document, boolean truncated) {
    this(index, score, document, truncated, null, 0);
  }
}

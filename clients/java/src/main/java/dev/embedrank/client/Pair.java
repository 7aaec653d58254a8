package dev.embedrank.client;

/**
 * Two texts read together: (query, document) for a reranker, (premise, hypothesis) for NLI.
 *
 * @param first the first text
 * @param second the second text
 */
public record Pair(String first, String second) {
  dev.embedrank.v1.TextPair toProto() {
    return dev.embedrank.v1.TextPair.newBuilder().setFirst(first).setSecond(second).build();
  }
}

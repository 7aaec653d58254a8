package dev.embedrank.client;

/**
 * One scored document.
 *
 * @param index position of the document in the request
 * @param score score of the pair (label 0), activated unless raw scores were asked for
 * @param document the document's text when {@code returnDocuments} was asked for, else null
 * @param truncated whether the pair was cut to the model's max_tokens
 */
public record RerankResult(int index, float score, String document, boolean truncated) {}

package dev.embedrank.client;

/**
 * One token window of a text ({@link EncodeOptions.Builder#returnChunks(boolean)}).
 *
 * @param textIndex position of the text in the request
 * @param span the window's characters in the text (without the prompt)
 * @param tokenCount tokens fed to the model for this window (prompt and special tokens included)
 * @param text the window's text, {@code span.of(texts.get(textIndex))}
 */
public record TextChunk(int textIndex, Span span, int tokenCount, String text) {}

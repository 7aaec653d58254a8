package dev.embedrank.client;

import dev.embedrank.v1.EncodeResponse;
import dev.embedrank.v1.Precision;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The answer to an Encode with long_input CHUNK and return_chunks: one vector per text (the
 * token-weighted mean of its windows) and every window with its own vector and span.
 *
 * @param embeddings one row per text
 * @param chunks every window, text by text, in order
 * @param chunkEmbeddings one row per window, the rows of {@code chunks}
 * @param chunkCounts windows per text
 * @param tokenCounts tokens per text, all its windows together
 */
public record ChunkedEmbeddings(
    float[][] embeddings,
    List<TextChunk> chunks,
    float[][] chunkEmbeddings,
    int[] chunkCounts,
    int[] tokenCounts) {

  /** Decodes a float32 EncodeResponse for {@code texts} that was asked for with return_chunks. */
  public static ChunkedEmbeddings from(EncodeResponse response, List<String> texts) {
    if (response.getEmbeddings().getPrecision() != Precision.PRECISION_FLOAT32
        && response.getEmbeddings().getPrecision() != Precision.PRECISION_UNSPECIFIED) {
      throw EmbeddingDecoder.malformed("chunked embeddings must be float32");
    }
    float[][] rows = EmbeddingDecoder.toFloats(response.getEmbeddings());
    float[][] chunkRows = EmbeddingDecoder.toFloats(response.getChunkEmbeddings());
    if (rows.length != texts.size()) {
      throw EmbeddingDecoder.malformed(rows.length + " embeddings for " + texts.size() + " texts");
    }
    if (chunkRows.length != response.getChunksCount()) {
      throw EmbeddingDecoder.malformed(
          chunkRows.length + " chunk embeddings for " + response.getChunksCount() + " chunks");
    }
    List<TextChunk> chunks = new ArrayList<>(response.getChunksCount());
    for (dev.embedrank.v1.TextChunk c : response.getChunksList()) {
      if (c.getTextIndex() >= texts.size()) {
        throw EmbeddingDecoder.malformed(
            "a chunk names text " + c.getTextIndex() + " of " + texts.size());
      }
      Span span = Span.from(c.getSpan());
      chunks.add(
          new TextChunk(c.getTextIndex(), span, c.getTokenCount(), span.of(texts.get(c.getTextIndex()))));
    }
    int[] chunkCounts = response.getChunkCountsList().stream().mapToInt(Integer::intValue).toArray();
    int[] tokenCounts = response.getTokenCountsList().stream().mapToInt(Integer::intValue).toArray();
    return new ChunkedEmbeddings(
        rows, Collections.unmodifiableList(chunks), chunkRows, chunkCounts, tokenCounts);
  }

  /** The windows of text {@code textIndex}, in order. */
  public List<TextChunk> chunksOf(int textIndex) {
    return chunks.stream().filter(c -> c.textIndex() == textIndex).toList();
  }
}

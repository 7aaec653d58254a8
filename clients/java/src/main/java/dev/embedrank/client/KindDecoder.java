package dev.embedrank.client;

import dev.embedrank.v1.ClassifyResponse;
import dev.embedrank.v1.EncodeMultiVectorResponse;
import dev.embedrank.v1.EncodeSparseResponse;
import dev.embedrank.v1.SparseVector;
import dev.embedrank.v1.TokenizeResponse;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Typed results of the Tokenize, Classify, SparseEmbed and MultiVectorEmbed answers, as {@link
 * EmbeddingDecoder} is for Encode's packed matrices: {@link EmbedRankClient} sends, this reads.
 */
final class KindDecoder {
  private KindDecoder() {}

  static List<TokenizedInput> tokenized(TokenizeResponse response) {
    List<TokenizedInput> out = new ArrayList<>(response.getInputsCount());
    for (dev.embedrank.v1.TokenizedInput in : response.getInputsList()) {
      List<Token> tokens = new ArrayList<>(in.getTokensCount());
      for (dev.embedrank.v1.Token t : in.getTokensList()) {
        tokens.add(
            new Token(
                t.getId(), t.getText(), Span.from(t.getSpan()), t.getSpecial(), t.getPrompt(),
                t.getSequence()));
      }
      out.add(
          new TokenizedInput(
              Collections.unmodifiableList(tokens),
              in.getTokenCount(),
              in.getTruncated(),
              in.getPrompt(),
              response.getMaxTokens()));
    }
    return Collections.unmodifiableList(out);
  }

  static List<Classification> classifications(ClassifyResponse response) {
    List<Classification> out = new ArrayList<>(response.getResultsCount());
    for (dev.embedrank.v1.Classification c : response.getResultsList()) {
      List<LabelScore> labels = new ArrayList<>(c.getLabelsCount());
      for (dev.embedrank.v1.LabelScore l : c.getLabelsList()) {
        labels.add(new LabelScore(l.getIndex(), l.getLabel(), l.getScore()));
      }
      out.add(
          new Classification(
              Collections.unmodifiableList(labels), c.getTruncated(), c.getTokenCount()));
    }
    return Collections.unmodifiableList(out);
  }

  static List<SparseEmbedding> sparse(EncodeSparseResponse response) {
    List<SparseEmbedding> out = new ArrayList<>(response.getVectorsCount());
    for (SparseVector v : response.getVectorsList()) {
      if (v.getIndicesCount() != v.getValuesCount()) {
        throw EmbeddingDecoder.malformed(v.getIndicesCount() + " indices, " + v.getValuesCount() + " values");
      }
      int[] indices = v.getIndicesList().stream().mapToInt(Integer::intValue).toArray();
      float[] values = new float[v.getValuesCount()];
      for (int i = 0; i < values.length; i++) {
        values[i] = v.getValues(i);
      }
      out.add(new SparseEmbedding(indices, values, List.copyOf(v.getTokensList()), response.getDimensions()));
    }
    return Collections.unmodifiableList(out);
  }

  /** One matrix per text: the packed rows cut by {@code vector_counts}. */
  static List<float[][]> multiVectors(EncodeMultiVectorResponse response) {
    float[][] rows = EmbeddingDecoder.toFloats(response.getEmbeddings());
    List<float[][]> out = new ArrayList<>(response.getVectorCountsCount());
    int start = 0;
    for (int n : response.getVectorCountsList()) {
      if (start + n > rows.length) {
        throw EmbeddingDecoder.malformed("vector counts exceed the " + rows.length + " rows sent");
      }
      out.add(java.util.Arrays.copyOfRange(rows, start, start + n));
      start += n;
    }
    return Collections.unmodifiableList(out);
  }

  /** One matrix per text of a quantized answer; the precision must be the one asked for. */
  static List<QuantizedEmbeddings> multiVectorsQuantized(
      EncodeMultiVectorResponse response, dev.embedrank.v1.Precision precision) {
    QuantizedEmbeddings rows = EmbeddingDecoder.toQuantized(response.getEmbeddings());
    if (rows.precision() != precision) {
      throw EmbeddingDecoder.malformed("asked for " + precision + ", got " + rows.precision());
    }
    List<QuantizedEmbeddings> out = new ArrayList<>(response.getVectorCountsCount());
    int start = 0;
    for (int n : response.getVectorCountsList()) {
      if (start + n > rows.rows()) {
        throw EmbeddingDecoder.malformed("vector counts exceed the " + rows.rows() + " rows sent");
      }
      out.add(rows.slice(start, start + n));
      start += n;
    }
    return Collections.unmodifiableList(out);
  }
}

package dev.embedrank.client;

import java.util.List;

/**
 * One text's sparse (SPLADE) vector: its non-zero weights, highest first.
 *
 * @param indices vocabulary ids
 * @param values their weights
 * @param tokens the indices' token strings when asked for, else an empty list
 * @param dimensions the vocabulary size (the dense length)
 */
public record SparseEmbedding(int[] indices, float[] values, List<String> tokens, int dimensions) {

  /** The vector as a dense array of {@code dimensions} values. */
  public float[] toDense() {
    float[] out = new float[dimensions];
    for (int i = 0; i < indices.length; i++) {
      out[indices[i]] = values[i];
    }
    return out;
  }
}

package dev.embedrank.client;

import dev.embedrank.v1.Precision;

/**
 * Embeddings in a compact precision, one byte array a row.
 *
 * <ul>
 *   <li>{@code PRECISION_FLOAT32}: 4 bytes a dimension, little-endian float32.
 *   <li>{@code PRECISION_INT8} / {@code PRECISION_UINT8}: one (signed / unsigned) byte a dimension.
 *   <li>{@code PRECISION_BINARY} / {@code PRECISION_UBINARY}: sign bits packed 8 a byte, most
 *       significant bit first (numpy.packbits), {@code ceil(dimensions / 8)} bytes a row; for
 *       binary the packed byte minus 128, as int8.
 * </ul>
 */
public final class QuantizedEmbeddings {
  private final Precision precision;
  private final int dimensions;
  private final byte[][] rows;

  QuantizedEmbeddings(Precision precision, int dimensions, byte[][] rows) {
    this.precision = precision;
    this.dimensions = dimensions;
    this.rows = rows;
  }

  public Precision precision() {
    return precision;
  }

  /** Number of embeddings (one per input text). */
  public int rows() {
    return rows.length;
  }

  /** Dimensions of each embedding, before bit packing. */
  public int dimensions() {
    return dimensions;
  }

  /** Bytes of each row. */
  public int bytesPerRow() {
    return EmbeddingDecoder.bytesPerRow(precision, dimensions);
  }

  /** The bytes of row {@code i} (a copy). */
  public byte[] row(int i) {
    return rows[i].clone();
  }

  /** Rows {@code from} to {@code to} (exclusive), sharing this matrix's row arrays. */
  QuantizedEmbeddings slice(int from, int to) {
    return new QuantizedEmbeddings(precision, dimensions, java.util.Arrays.copyOfRange(rows, from, to));
  }

  /** The bit of dimension {@code dim} of a binary/ubinary row: whether that value was positive. */
  public boolean bit(int row, int dim) {
    if (precision != Precision.PRECISION_BINARY && precision != Precision.PRECISION_UBINARY) {
      throw new IllegalStateException("bit() needs binary or ubinary precision, not " + precision);
    }
    if (dim < 0 || dim >= dimensions) {
      throw new IndexOutOfBoundsException("dimension " + dim + " of " + dimensions);
    }
    int b = rows[row][dim >>> 3] & 0xff;
    if (precision == Precision.PRECISION_BINARY) {
      b = (b + 128) & 0xff; // undo the "minus 128"
    }
    return ((b >>> (7 - (dim & 7))) & 1) == 1;
  }

  @Override
  public String toString() {
    return "QuantizedEmbeddings[" + rows.length + " x " + dimensions + ", " + precision + "]";
  }
}

package dev.embedrank.client;

import com.google.protobuf.ByteString;
import dev.embedrank.v1.Embeddings;
import dev.embedrank.v1.Precision;
import io.grpc.Status;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/** Decodes the packed {@code embedrank.v1.Embeddings} matrix. */
public final class EmbeddingDecoder {
  private EmbeddingDecoder() {}

  /**
   * Decodes rows x dimensions little-endian IEEE-754 float32 values.
   *
   * @throws EmbedRankException ({@code INTERNAL}) if the precision is not float32 or the data
   *     does not have rows x dimensions x 4 bytes
   */
  public static float[][] toFloats(Embeddings embeddings) {
    Precision p = embeddings.getPrecision();
    if (p != Precision.PRECISION_FLOAT32 && p != Precision.PRECISION_UNSPECIFIED) {
      throw malformed("expected float32 embeddings, got " + p);
    }
    return toFloats(embeddings.getData(), embeddings.getRows(), embeddings.getDimensions());
  }

  /** Decodes {@code rows x dimensions} little-endian float32 values from {@code data}. */
  public static float[][] toFloats(ByteString data, int rows, int dimensions) {
    if (rows < 0 || dimensions < 0) {
      throw malformed("negative shape " + rows + " x " + dimensions);
    }
    long expected = 4L * rows * dimensions;
    if (data.size() != expected) {
      throw malformed(
          "embeddings of " + rows + " x " + dimensions + " float32 need " + expected
              + " bytes, got " + data.size());
    }
    FloatBuffer floats = data.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    float[][] out = new float[rows][];
    for (int r = 0; r < rows; r++) {
      out[r] = new float[dimensions];
      floats.get(out[r]);
    }
    return out;
  }

  /** Bytes of one row for the given precision and dimensions (binary: ceil(dims / 8)). */
  public static int bytesPerRow(Precision precision, int dimensions) {
    switch (precision) {
      case PRECISION_UNSPECIFIED:
      case PRECISION_FLOAT32:
        return Math.multiplyExact(4, dimensions);
      case PRECISION_INT8:
      case PRECISION_UINT8:
        return dimensions;
      case PRECISION_BINARY:
      case PRECISION_UBINARY:
        return (dimensions + 7) / 8;
      default:
        throw malformed("unknown precision " + precision);
    }
  }

  /** Splits the packed data into one byte array a row, whatever the precision. */
  public static QuantizedEmbeddings toQuantized(Embeddings embeddings) {
    Precision p = embeddings.getPrecision();
    if (p == Precision.PRECISION_UNSPECIFIED) {
      p = Precision.PRECISION_FLOAT32;
    }
    int rows = embeddings.getRows();
    int dims = embeddings.getDimensions();
    if (rows < 0 || dims < 0) {
      throw malformed("shape too large: " + Integer.toUnsignedString(rows) + " x "
          + Integer.toUnsignedString(dims));
    }
    int perRow = bytesPerRow(p, dims);
    ByteString data = embeddings.getData();
    long expected = (long) perRow * rows;
    if (data.size() != expected) {
      throw malformed(
          rows + " x " + dims + " " + p + " embeddings need " + expected + " bytes, got "
              + data.size());
    }
    byte[][] out = new byte[rows][];
    for (int r = 0; r < rows; r++) {
      out[r] = data.substring(r * perRow, (r + 1) * perRow).toByteArray();
    }
    return new QuantizedEmbeddings(p, dims, out);
  }

  /** Throws INTERNAL when an answer has {@code rows} results for {@code expected} inputs. */
  static void checkRows(int rows, int expected) {
    if (rows != expected) {
      throw malformed(rows + " embeddings for " + expected + " texts");
    }
  }

  static EmbedRankException malformed(String what) {
    return new EmbedRankException(Status.Code.INTERNAL, "malformed response: " + what);
  }
}

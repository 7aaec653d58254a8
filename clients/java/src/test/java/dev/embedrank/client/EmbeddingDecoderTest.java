package dev.embedrank.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.embedrank.v1.Embeddings;
import dev.embedrank.v1.Precision;
import io.grpc.Status;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class EmbeddingDecoderTest {

  static ByteString littleEndian(float... values) {
    ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      b.putFloat(v);
    }
    return ByteString.copyFrom(b.array());
  }

  @Test
  void decodesLittleEndianFloat32RowMajor() {
    Embeddings e =
        Embeddings.newBuilder()
            .setPrecision(Precision.PRECISION_FLOAT32)
            .setRows(2)
            .setDimensions(3)
            .setData(littleEndian(1.0f, -2.5f, 3.25f, 0f, Float.MIN_VALUE, -0.0078125f))
            .build();
    float[][] m = EmbeddingDecoder.toFloats(e);
    assertEquals(2, m.length);
    assertArrayEquals(new float[] {1.0f, -2.5f, 3.25f}, m[0]);
    assertArrayEquals(new float[] {0f, Float.MIN_VALUE, -0.0078125f}, m[1]);
  }

  @Test
  void knownBytesAreLittleEndian() {
    // 1.0f is 0x3F800000: little-endian bytes 00 00 80 3F.
    ByteString data = ByteString.copyFrom(new byte[] {0, 0, (byte) 0x80, 0x3F});
    float[][] m = EmbeddingDecoder.toFloats(data, 1, 1);
    assertEquals(1.0f, m[0][0]);
  }

  @Test
  void unspecifiedPrecisionMeansFloat32() {
    Embeddings e =
        Embeddings.newBuilder().setRows(1).setDimensions(2).setData(littleEndian(0.5f, 2f)).build();
    assertArrayEquals(new float[] {0.5f, 2f}, EmbeddingDecoder.toFloats(e)[0]);
  }

  @Test
  void zeroRows() {
    Embeddings e = Embeddings.newBuilder().setRows(0).setDimensions(384).build();
    assertEquals(0, EmbeddingDecoder.toFloats(e).length);
  }

  @Test
  void wrongSizeIsInternalError() {
    Embeddings e =
        Embeddings.newBuilder().setRows(2).setDimensions(2).setData(littleEndian(1f, 2f, 3f)).build();
    EmbedRankException ex = assertThrows(EmbedRankException.class, () -> EmbeddingDecoder.toFloats(e));
    assertEquals(Status.Code.INTERNAL, ex.code());
    assertTrue(ex.serverMessage().contains("16 bytes, got 12"), ex.getMessage());
  }

  @Test
  void quantizedPrecisionIsNotFloats() {
    Embeddings e =
        Embeddings.newBuilder()
            .setPrecision(Precision.PRECISION_INT8)
            .setRows(1)
            .setDimensions(4)
            .setData(ByteString.copyFrom(new byte[4]))
            .build();
    assertThrows(EmbedRankException.class, () -> EmbeddingDecoder.toFloats(e));
  }

  @Test
  void bytesPerRow() {
    assertEquals(4 * 384, EmbeddingDecoder.bytesPerRow(Precision.PRECISION_FLOAT32, 384));
    assertEquals(4 * 384, EmbeddingDecoder.bytesPerRow(Precision.PRECISION_UNSPECIFIED, 384));
    assertEquals(384, EmbeddingDecoder.bytesPerRow(Precision.PRECISION_INT8, 384));
    assertEquals(384, EmbeddingDecoder.bytesPerRow(Precision.PRECISION_UINT8, 384));
    assertEquals(48, EmbeddingDecoder.bytesPerRow(Precision.PRECISION_BINARY, 384));
    assertEquals(2, EmbeddingDecoder.bytesPerRow(Precision.PRECISION_UBINARY, 10));
    assertEquals(1, EmbeddingDecoder.bytesPerRow(Precision.PRECISION_BINARY, 1));
    assertEquals(0, EmbeddingDecoder.bytesPerRow(Precision.PRECISION_BINARY, 0));
  }

  @Test
  void binaryRowsArePackedBitsMinus128() {
    // dims 10 -> 2 bytes a row. Signs 1011001110 -> packbits 10110011 10000000 = 0xB3 0x80,
    // minus 128 as int8: 0x33 0x00.
    byte[] data = {0x33, 0x00, (byte) 0x80, (byte) 0x80};
    Embeddings e =
        Embeddings.newBuilder()
            .setPrecision(Precision.PRECISION_BINARY)
            .setRows(2)
            .setDimensions(10)
            .setData(ByteString.copyFrom(data))
            .build();
    QuantizedEmbeddings q = EmbeddingDecoder.toQuantized(e);
    assertEquals(2, q.rows());
    assertEquals(10, q.dimensions());
    assertEquals(2, q.bytesPerRow());
    assertEquals(Precision.PRECISION_BINARY, q.precision());
    assertArrayEquals(new byte[] {0x33, 0x00}, q.row(0));
    boolean[] expected = {true, false, true, true, false, false, true, true, true, false};
    for (int d = 0; d < 10; d++) {
      assertEquals(expected[d], q.bit(0, d), "dim " + d);
      assertFalse(q.bit(1, d), "row 1 is all zero bits (0x00 - 128 = 0x80)");
    }
  }

  @Test
  void ubinaryRowsArePackedBits() {
    Embeddings e =
        Embeddings.newBuilder()
            .setPrecision(Precision.PRECISION_UBINARY)
            .setRows(1)
            .setDimensions(9)
            .setData(ByteString.copyFrom(new byte[] {(byte) 0x81, (byte) 0x80}))
            .build();
    QuantizedEmbeddings q = EmbeddingDecoder.toQuantized(e);
    assertTrue(q.bit(0, 0));
    assertFalse(q.bit(0, 1));
    assertTrue(q.bit(0, 7));
    assertTrue(q.bit(0, 8));
  }

  @Test
  void quantizedWrongSizeIsInternalError() {
    Embeddings e =
        Embeddings.newBuilder()
            .setPrecision(Precision.PRECISION_UBINARY)
            .setRows(2)
            .setDimensions(9)
            .setData(ByteString.copyFrom(new byte[3]))
            .build();
    assertEquals(
        Status.Code.INTERNAL,
        assertThrows(EmbedRankException.class, () -> EmbeddingDecoder.toQuantized(e)).code());
  }

  @Test
  void int8RowsAreSplit() {
    Embeddings e =
        Embeddings.newBuilder()
            .setPrecision(Precision.PRECISION_INT8)
            .setRows(2)
            .setDimensions(3)
            .setData(ByteString.copyFrom(new byte[] {1, -2, 3, -128, 0, 127}))
            .build();
    QuantizedEmbeddings q = EmbeddingDecoder.toQuantized(e);
    assertArrayEquals(new byte[] {1, -2, 3}, q.row(0));
    assertArrayEquals(new byte[] {-128, 0, 127}, q.row(1));
    assertThrows(IllegalStateException.class, () -> q.bit(0, 0));
  }
}

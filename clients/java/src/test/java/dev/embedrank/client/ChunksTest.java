package dev.embedrank.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.embedrank.v1.EncodeRequest;
import dev.embedrank.v1.EncodeResponse;
import dev.embedrank.v1.Embeddings;
import dev.embedrank.v1.LongInput;
import dev.embedrank.v1.Precision;
import dev.embedrank.v1.RerankRequest;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.Test;

/** long_input CHUNK on the client side: options, code-point spans, decoding. */
class ChunksTest {

  @Test
  void chunkOptionsGoIntoTheRequests() {
    EncodeOptions o =
        EncodeOptions.builder()
            .longInput(LongInput.LONG_INPUT_CHUNK)
            .chunkOverlap(0)
            .returnChunks(true)
            .build();
    EncodeRequest r = o.toRequest("m", List.of("a"));
    assertEquals(LongInput.LONG_INPUT_CHUNK, r.getLongInput());
    assertTrue(r.hasChunkOverlap(), "an explicit 0 overlap must be sent as set");
    assertEquals(0, r.getChunkOverlap());
    assertTrue(r.getReturnChunks());
    assertEquals(o, o.toBuilder().build());
    assertNotEquals(o, o.toBuilder().chunkOverlap(null).build());

    EncodeRequest plain = EncodeOptions.defaults().toRequest("m", List.of("a"));
    assertEquals(LongInput.LONG_INPUT_UNSPECIFIED, plain.getLongInput());
    assertFalse(plain.hasChunkOverlap());
    assertFalse(plain.getReturnChunks());

    RerankRequest rr =
        RerankOptions.builder()
            .longInput(LongInput.LONG_INPUT_CHUNK)
            .chunkOverlap(16)
            .build()
            .toRequest("m", "q", List.of("d"));
    assertEquals(LongInput.LONG_INPUT_CHUNK, rr.getLongInput());
    assertEquals(16, rr.getChunkOverlap());
    assertFalse(RerankOptions.defaults().toRequest("m", "q", List.of("d")).hasChunkOverlap());

    assertThrows(IllegalArgumentException.class, () -> EncodeOptions.builder().chunkOverlap(-1));
    assertThrows(IllegalArgumentException.class, () -> RerankOptions.builder().chunkOverlap(-1));
  }

  @Test
  void spansCountCodePointsNotChars() {
    String text = "né 😀 ok"; // the emoji is one code point, two Java chars
    assertEquals("né", new Span(0, 2).of(text));
    assertEquals("😀", new Span(3, 4).of(text));
    assertEquals("ok", new Span(5, 7).of(text));
    assertEquals(text, new Span(0, 7).of(text));
    assertEquals("ok", new Span(5, 99).of(text));
    assertEquals("", new Span(9, 12).of(text));
    assertThrows(IllegalArgumentException.class, () -> new Span(4, 2));
  }

  private static Embeddings floats(float[][] rows) {
    ByteBuffer b = ByteBuffer.allocate(rows.length * rows[0].length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float[] row : rows) {
      for (float v : row) {
        b.putFloat(v);
      }
    }
    return Embeddings.newBuilder()
        .setPrecision(Precision.PRECISION_FLOAT32)
        .setRows(rows.length)
        .setDimensions(rows[0].length)
        .setData(ByteString.copyFrom(b.array()))
        .build();
  }

  private static dev.embedrank.v1.TextChunk chunk(int text, int start, int end, int tokens) {
    return dev.embedrank.v1.TextChunk.newBuilder()
        .setTextIndex(text)
        .setSpan(dev.embedrank.v1.Span.newBuilder().setStart(start).setEnd(end))
        .setTokenCount(tokens)
        .build();
  }

  @Test
  void decodesChunksWithTheirTextsAndRows() {
    List<String> texts = List.of("short", "😀 a long text");
    EncodeResponse response =
        EncodeResponse.newBuilder()
            .setEmbeddings(floats(new float[][] {{1, 0}, {0, 1}}))
            .addAllTokenCounts(List.of(3, 9))
            .addAllChunkCounts(List.of(1, 2))
            .setChunkEmbeddings(floats(new float[][] {{1, 0}, {0.6f, 0.8f}, {-0.6f, 0.8f}}))
            .addChunks(chunk(0, 0, 5, 3))
            .addChunks(chunk(1, 0, 6, 4))
            .addChunks(chunk(1, 4, 13, 5))
            .build();
    ChunkedEmbeddings c = ChunkedEmbeddings.from(response, texts);
    assertEquals(2, c.embeddings().length);
    assertEquals(3, c.chunks().size());
    assertArrayEquals(new int[] {1, 2}, c.chunkCounts());
    assertArrayEquals(new int[] {3, 9}, c.tokenCounts());
    assertEquals("😀 a lo", c.chunks().get(1).text());
    assertEquals("long text", c.chunks().get(2).text());
    assertEquals(2, c.chunksOf(1).size());
    assertArrayEquals(new float[] {0.6f, 0.8f}, c.chunkEmbeddings()[1]);

    EncodeResponse badIndex = response.toBuilder().setChunks(2, chunk(2, 0, 1, 1)).build();
    assertThrows(EmbedRankException.class, () -> ChunkedEmbeddings.from(badIndex, texts));
    EncodeResponse missingRow =
        response.toBuilder().setChunkEmbeddings(floats(new float[][] {{1, 0}, {0, 1}})).build();
    assertThrows(EmbedRankException.class, () -> ChunkedEmbeddings.from(missingRow, texts));
  }
}

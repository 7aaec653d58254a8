package dev.embedrank.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.embedrank.v1.InputType;
import dev.embedrank.v1.Precision;
import io.grpc.Status;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The kinds' ...Stream helpers ({@link KindStreams}) and multi-vector int8 against the live
 * servers of tests/test_clients_e2e.py, compared with the Python client's unary answers in
 * EMBEDRANK_EXPECTED. Skipped unless EMBEDRANK_TARGET and EMBEDRANK_EXPECTED are set.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class StreamsEndToEndTest {
  private static JsonObject kinds;
  private static EmbedRankClient client; // the first server: Classify, Tokenize
  private static EmbedRankClient other; // the second: sparse and multi-vector

  @BeforeAll
  static void connect() throws IOException {
    String target = System.getenv("EMBEDRANK_TARGET");
    String path = System.getenv("EMBEDRANK_EXPECTED");
    assumeTrue(target != null && !target.isBlank() && path != null && !path.isBlank(),
        "end-to-end: set EMBEDRANK_TARGET=host:port and EMBEDRANK_EXPECTED=path/to/expected.json");
    try (Reader r = Files.newBufferedReader(Path.of(path), StandardCharsets.UTF_8)) {
      kinds = JsonParser.parseReader(r).getAsJsonObject().getAsJsonObject("kinds");
    }
    client = EmbedRankClient.builder(target).usePlaintext().build();
    other = EmbedRankClient.builder(kinds.get("target").getAsString()).usePlaintext().build();
  }

  @AfterAll
  static void close() {
    if (client != null) {
      client.close();
      other.close();
    }
  }

  private static List<String> strings(JsonElement e) {
    List<String> out = new ArrayList<>();
    e.getAsJsonArray().forEach(x -> out.add(x.getAsString()));
    return out;
  }

  /** The items of batches 0 and 2, flattened; batch 1 (empty) failed alone, naming texts. */
  private static <T> List<T> okAroundEmpty(List<StreamItem<List<T>>> items) {
    assertEquals(3, items.size());
    EmbedRankException e = items.get(1).error().orElseThrow();
    assertEquals(Status.Code.INVALID_ARGUMENT, e.code());
    assertEquals("texts", e.field());
    assertThrows(EmbedRankException.class, () -> items.get(1).value());
    List<T> out = new ArrayList<>(items.get(0).value());
    out.addAll(items.get(2).value());
    return out;
  }

  private static <T> List<List<T>> aroundEmpty(List<T> xs) {
    return List.of(xs.subList(0, 1), List.of(), xs.subList(1, xs.size()));
  }

  @Test
  void classifyAndTokenizeStreamsAsThePythonClient() {
    List<Pair> pairs = new ArrayList<>();
    for (JsonElement p : kinds.getAsJsonArray("pairs")) {
      pairs.add(new Pair(p.getAsJsonArray().get(0).getAsString(), p.getAsJsonArray().get(1).getAsString()));
    }
    List<Classification> got = okAroundEmpty(
        client.streams().classifyPairs(kinds.get("classify_model").getAsString(), aroundEmpty(pairs), null));
    JsonArray want = kinds.getAsJsonArray("classify");
    assertEquals(want.size(), got.size());
    for (int i = 0; i < want.size(); i++) {
      JsonObject best = want.get(i).getAsJsonArray().get(0).getAsJsonObject();
      assertEquals(best.get("index").getAsInt(), got.get(i).labels().get(0).index(), "input " + i);
      assertEquals(best.get("score").getAsDouble(), got.get(i).labels().get(0).score(), 1e-5);
    }
    List<String> texts = strings(kinds.get("tokenize_texts"));
    List<TokenizedInput> tokens = okAroundEmpty(client.streams().tokenize(
        kinds.get("tokenize_model").getAsString(), aroundEmpty(texts), InputType.INPUT_TYPE_QUERY));
    JsonArray wantTokens = kinds.getAsJsonArray("tokenize");
    assertEquals(texts.size(), tokens.size());
    for (int i = 0; i < texts.size(); i++) {
      JsonArray ids = wantTokens.get(i).getAsJsonObject().getAsJsonArray("ids");
      int[] wantIds = new int[ids.size()];
      for (int j = 0; j < wantIds.length; j++) {
        wantIds[j] = ids.get(j).getAsInt();
      }
      assertEquals(java.util.Arrays.toString(wantIds), java.util.Arrays.toString(tokens.get(i).ids()));
    }
  }

  @Test
  void sparseAndMultiVectorStreamsAsThePythonClient() {
    List<String> texts = strings(kinds.get("texts"));
    List<SparseEmbedding> sparse = okAroundEmpty(other.streams().encodeSparse(
        kinds.get("sparse_model").getAsString(), aroundEmpty(texts), 10, true,
        InputType.INPUT_TYPE_UNSPECIFIED));
    JsonArray wantSparse = kinds.getAsJsonArray("sparse");
    for (int i = 0; i < texts.size(); i++) {
      JsonArray indices = wantSparse.get(i).getAsJsonObject().getAsJsonArray("indices");
      assertEquals(indices.size(), sparse.get(i).indices().length);
      assertEquals(indices.get(0).getAsInt(), sparse.get(i).indices()[0]);
      assertEquals(strings(wantSparse.get(i).getAsJsonObject().get("tokens")), sparse.get(i).tokens());
    }
    String model = kinds.get("multi_vector_model").getAsString();
    List<float[][]> floats = okAroundEmpty(
        other.streams().encodeMultiVector(model, aroundEmpty(texts), InputType.INPUT_TYPE_QUERY));
    JsonArray wantFloats = kinds.getAsJsonArray("multi_vector");
    for (int i = 0; i < texts.size(); i++) {
      JsonArray rows = wantFloats.get(i).getAsJsonArray();
      assertEquals(rows.size(), floats.get(i).length);
      for (int r = 0; r < rows.size(); r++) {
        for (int d = 0; d < floats.get(i)[r].length; d++) {
          assertEquals(rows.get(r).getAsJsonArray().get(d).getAsDouble(), floats.get(i)[r][d], 1e-5);
        }
      }
    }
    List<QuantizedEmbeddings> ints = okAroundEmpty(other.streams().encodeMultiVectorQuantized(
        model, aroundEmpty(texts), InputType.INPUT_TYPE_QUERY, Precision.PRECISION_INT8));
    assertInt8(ints);
    assertInt8(other.encodeMultiVectorQuantized(model, texts, InputType.INPUT_TYPE_QUERY, Precision.PRECISION_INT8));
    EmbedRankException bad = assertThrows(EmbedRankException.class,
        () -> other.encodeMultiVectorRaw(KindRequests.multiVector(model, texts,
            InputType.INPUT_TYPE_QUERY, Precision.PRECISION_INT8).toBuilder().setPrecisionValue(42).build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, bad.code());
    assertEquals("precision", bad.field());
  }

  /** Byte for byte the Python client's int8 matrices, a quarter of float32's size. */
  private static void assertInt8(List<QuantizedEmbeddings> got) {
    JsonArray want = kinds.getAsJsonArray("multi_vector_int8");
    assertEquals(want.size(), got.size());
    for (int i = 0; i < want.size(); i++) {
      JsonArray rows = want.get(i).getAsJsonArray();
      QuantizedEmbeddings q = got.get(i);
      assertEquals(Precision.PRECISION_INT8, q.precision());
      assertEquals(rows.size(), q.rows());
      assertEquals(q.dimensions(), q.bytesPerRow());
      for (int r = 0; r < rows.size(); r++) {
        byte[] row = q.row(r);
        for (int d = 0; d < row.length; d++) {
          assertEquals(rows.get(r).getAsJsonArray().get(d).getAsInt(), row[d], "int8[" + i + "][" + r + "][" + d + "]");
        }
      }
    }
    assertTrue(got.get(0).rows() > 0);
  }
}

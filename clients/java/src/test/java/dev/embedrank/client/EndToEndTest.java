package dev.embedrank.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.embedrank.v1.EncodeRequest;
import dev.embedrank.v1.EncodeResponse;
import dev.embedrank.v1.ListModelsRequest;
import dev.embedrank.v1.ModelInfo;
import dev.embedrank.v1.ModelKind;
import dev.embedrank.v1.ModelsGrpc;
import dev.embedrank.v1.Precision;
import io.grpc.Status;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Against a running embedrank server, compared with what the Python client got on the same
 * inputs. Skipped unless EMBEDRANK_TARGET (host:port) and EMBEDRANK_EXPECTED (the JSON file the
 * Python client wrote) are set. Optional: EMBEDRANK_TOKEN (bearer token), EMBEDRANK_TLS=1.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class EndToEndTest {
  private static final double TOLERANCE = 1e-5;
  private static final String NO_SUCH_MODEL = "no-such-model";

  private static EmbedRankClient client;
  private static JsonObject expected;
  private static String embedModel;
  private static String rerankModel;

  private static String skipReason;

  @BeforeAll
  static void connect() throws IOException {
    String target = System.getenv("EMBEDRANK_TARGET");
    String expectedPath = System.getenv("EMBEDRANK_EXPECTED");
    if (target == null || target.isBlank()) {
      skipReason =
          "EMBEDRANK_TARGET is not set: end-to-end tests need a running embedrank server"
              + " (EMBEDRANK_TARGET=host:port, EMBEDRANK_EXPECTED=path/to/expected.json)";
      return;
    }
    if (expectedPath == null || expectedPath.isBlank()) {
      skipReason =
          "EMBEDRANK_EXPECTED is not set: end-to-end tests compare with the JSON file the"
              + " Python client wrote on the same inputs";
      return;
    }
    try (Reader r = Files.newBufferedReader(Path.of(expectedPath), StandardCharsets.UTF_8)) {
      expected = JsonParser.parseReader(r).getAsJsonObject();
    }
    embedModel = expected.get("embed_model").getAsString();
    rerankModel = expected.get("rerank_model").getAsString();

    EmbedRankClient.Builder b =
        EmbedRankClient.builder(target).defaultDeadline(Duration.ofSeconds(60));
    if (!"1".equals(System.getenv("EMBEDRANK_TLS"))) {
      b.usePlaintext();
    }
    String token = System.getenv("EMBEDRANK_TOKEN");
    if (token != null && !token.isEmpty()) {
      b.bearerToken(token);
    }
    client = b.build();
  }

  @BeforeEach
  void requireServer() {
    assumeTrue(skipReason == null, () -> skipReason);
  }

  @AfterAll
  static void close() {
    if (client != null) {
      client.close();
    }
  }

  // ---- JSON helpers

  private static List<String> strings(JsonElement e) {
    List<String> out = new ArrayList<>();
    for (JsonElement x : e.getAsJsonArray()) {
      out.add(x.getAsString());
    }
    return out;
  }

  private static double[][] matrix(JsonElement e) {
    JsonArray rows = e.getAsJsonArray();
    double[][] out = new double[rows.size()][];
    for (int i = 0; i < rows.size(); i++) {
      JsonArray row = rows.get(i).getAsJsonArray();
      out[i] = new double[row.size()];
      for (int j = 0; j < row.size(); j++) {
        out[i][j] = row.get(j).getAsDouble();
      }
    }
    return out;
  }

  private static int badCode(String key, Status.Code fallback) {
    JsonObject bad = expected.has("bad") ? expected.getAsJsonObject("bad") : new JsonObject();
    return bad.has(key) ? bad.get(key).getAsInt() : fallback.value();
  }

  private static void assertClose(double want, double got, String where) {
    double tol = TOLERANCE * Math.max(1.0, Math.abs(want));
    if (!(Math.abs(want - got) <= tol)) {
      fail(where + ": expected " + want + " got " + got + " (tolerance " + tol + ")");
    }
  }

  private static void assertMatrix(double[][] want, float[][] got, String what) {
    assertEquals(want.length, got.length, what + ": rows");
    for (int i = 0; i < want.length; i++) {
      assertEquals(want[i].length, got[i].length, what + ": dimensions of row " + i);
      for (int j = 0; j < want[i].length; j++) {
        assertClose(want[i][j], got[i][j], what + "[" + i + "][" + j + "]");
      }
    }
  }

  /**
   * Same documents in the same order with the same scores. Documents whose expected scores tie
   * (within the tolerance) may come in either order among themselves.
   */
  private static void assertRerank(List<RerankResult> got) {
    JsonArray want = expected.getAsJsonArray("rerank");
    assertEquals(want.size(), got.size(), "number of rerank results");
    int[] wantIndex = new int[want.size()];
    double[] wantScore = new double[want.size()];
    for (int i = 0; i < want.size(); i++) {
      JsonObject o = want.get(i).getAsJsonObject();
      wantIndex[i] = o.get("index").getAsInt();
      wantScore[i] = o.get("score").getAsDouble();
    }
    for (int i = 0; i < got.size(); i++) {
      assertClose(wantScore[i], got.get(i).score(), "rerank score at rank " + i);
    }
    int start = 0;
    while (start < want.size()) {
      int end = start + 1; // [start, end): a run of tied scores
      while (end < want.size()
          && Math.abs(wantScore[end] - wantScore[end - 1])
              <= TOLERANCE * Math.max(1.0, Math.abs(wantScore[end]))) {
        end++;
      }
      List<Integer> wantRun = new ArrayList<>();
      List<Integer> gotRun = new ArrayList<>();
      for (int i = start; i < end; i++) {
        wantRun.add(wantIndex[i]);
        gotRun.add(got.get(i).index());
      }
      if (end - start > 1) {
        wantRun.sort(null);
        gotRun.sort(null);
      }
      assertEquals(wantRun, gotRun, "document indices at ranks " + start + ".." + (end - 1));
      start = end;
    }
  }

  // ---- long_input CHUNK: same vectors, windows and spans as the Python client. The texts hold an
  // emoji: spans are code points (one for Python, two chars for Java).

  @Test
  void chunkedEncodeEqualsPythonClient() {
    JsonObject ch = expected.getAsJsonObject("chunked");
    List<String> texts = strings(ch.get("texts"));
    ChunkedEmbeddings got =
        client.encodeChunks(
            embedModel,
            texts,
            EncodeOptions.builder().chunkOverlap(ch.get("overlap").getAsInt()).build());
    assertMatrix(matrix(ch.get("embeddings")), got.embeddings(), "chunked embeddings");
    assertMatrix(matrix(ch.get("chunk_embeddings")), got.chunkEmbeddings(), "chunk embeddings");
    JsonArray want = ch.getAsJsonArray("chunks");
    assertEquals(want.size(), got.chunks().size(), "number of chunks");
    assertTrue(got.chunks().size() >= 3, "the long text must split");
    for (int i = 0; i < want.size(); i++) {
      JsonObject w = want.get(i).getAsJsonObject();
      TextChunk c = got.chunks().get(i);
      assertEquals(w.get("text_index").getAsInt(), c.textIndex(), "chunk " + i + " text index");
      assertEquals(
          new Span(w.get("start").getAsInt(), w.get("end").getAsInt()), c.span(), "chunk " + i);
      assertEquals(w.get("token_count").getAsInt(), c.tokenCount(), "chunk " + i + " tokens");
      assertEquals(w.get("text").getAsString(), c.text(), "chunk " + i + " text");
    }
  }

  @Test
  void chunkedRerankEqualsPythonClient() {
    JsonObject ch = expected.getAsJsonObject("chunked");
    List<RerankResult> got =
        client.rerank(
            rerankModel,
            expected.get("query").getAsString(),
            strings(ch.get("documents")),
            RerankOptions.builder()
                .longInput(dev.embedrank.v1.LongInput.LONG_INPUT_CHUNK)
                .chunkOverlap(16)
                .build());
    JsonArray want = ch.getAsJsonArray("rerank");
    assertEquals(want.size(), got.size());
    for (int i = 0; i < want.size(); i++) {
      JsonObject w = want.get(i).getAsJsonObject();
      RerankResult r = got.get(i);
      assertEquals(w.get("index").getAsInt(), r.index(), "rank " + i);
      assertClose(w.get("score").getAsDouble(), r.score(), "chunked rerank score at rank " + i);
      assertEquals(w.get("chunk_count").getAsInt(), r.chunkCount(), "rank " + i + " chunks");
      JsonArray span = w.getAsJsonArray("span");
      assertEquals(new Span(span.get(0).getAsInt(), span.get(1).getAsInt()), r.span());
    }
  }

  // ---- Embed

  @Test
  void encodeEqualsPythonClient() {
    float[][] got = client.encode(embedModel, strings(expected.get("texts")));
    assertMatrix(matrix(expected.get("embeddings")), got, "embeddings");
  }

  @Test
  void encodeAsyncEqualsPythonClient() throws Exception {
    float[][] got =
        client.encodeAsync(embedModel, strings(expected.get("texts"))).get(60, TimeUnit.SECONDS);
    assertMatrix(matrix(expected.get("embeddings")), got, "embeddings (async)");
  }

  @Test
  void streamEqualsPythonClientInOrder() {
    List<List<String>> batches = new ArrayList<>();
    for (JsonElement b : expected.getAsJsonArray("stream_batches")) {
      batches.add(strings(b));
    }
    JsonArray want = expected.getAsJsonArray("stream_embeddings");
    assertEquals(batches.size(), want.size(), "the JSON's stream_batches vs stream_embeddings");

    List<StreamItem<float[][]>> items = client.encodeStream(embedModel, batches);
    assertEquals(batches.size(), items.size());
    for (int i = 0; i < items.size(); i++) {
      assertEquals(Integer.toString(i), items.get(i).id());
      assertMatrix(matrix(want.get(i)), items.get(i).value(), "stream batch " + i);
    }
  }

  @Test
  void longStreamKeepsOrder() {
    List<String> texts = strings(expected.get("texts"));
    double[][] want = matrix(expected.get("embeddings"));
    List<List<String>> batches = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      batches.add(List.of(texts.get(i % texts.size())));
    }
    List<StreamItem<float[][]>> items = client.encodeStream(embedModel, batches);
    assertEquals(batches.size(), items.size());
    for (int i = 0; i < items.size(); i++) {
      assertMatrix(
          new double[][] {want[i % texts.size()]}, items.get(i).value(), "stream item " + i);
    }
  }

  @Test
  void streamItemErrorsComeAsTheirOwnItems() {
    List<String> texts = strings(expected.get("texts"));
    EncodeOptions o = EncodeOptions.defaults();
    List<EncodeRequest> requests =
        List.of(
            o.toRequest(embedModel, texts),
            o.toRequest(embedModel, List.of()),
            o.toRequest(NO_SUCH_MODEL, texts),
            o.toRequest(embedModel, texts));
    List<StreamItem<EncodeResponse>> items = client.encodeStreamRaw(requests, 2, null);
    assertEquals(4, items.size());
    assertTrue(items.get(0).isOk(), () -> "item 0: " + items.get(0));
    assertTrue(items.get(3).isOk(), () -> "item 3: " + items.get(3));

    EmbedRankException empty = assertThrows(EmbedRankException.class, () -> items.get(1).value());
    assertEquals(badCode("empty_texts_code", Status.Code.INVALID_ARGUMENT), empty.code().value());
    EmbedRankException unknown = assertThrows(EmbedRankException.class, () -> items.get(2).value());
    assertEquals(badCode("unknown_model_code", Status.Code.NOT_FOUND), unknown.code().value());

    assertMatrix(
        matrix(expected.get("embeddings")),
        EmbeddingDecoder.toFloats(items.get(3).value().getEmbeddings()),
        "stream item after errors");
  }

  @Test
  void emptyTextsIsInvalidArgumentAboutTexts() {
    EmbedRankException e =
        assertThrows(EmbedRankException.class, () -> client.encode(embedModel, List.of()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.code());
    assertEquals(badCode("empty_texts_code", Status.Code.INVALID_ARGUMENT), e.code().value());
    assertTrue(e.serverMessage().contains("texts"), "message should name texts: " + e.getMessage());
  }

  @Test
  void unknownModelIsNotFound() {
    EmbedRankException enc =
        assertThrows(EmbedRankException.class, () -> client.encode(NO_SUCH_MODEL, List.of("a")));
    assertEquals(Status.Code.NOT_FOUND, enc.code());
    assertEquals(badCode("unknown_model_code", Status.Code.NOT_FOUND), enc.code().value());

    EmbedRankException rr =
        assertThrows(
            EmbedRankException.class, () -> client.rerank(NO_SUCH_MODEL, "q", List.of("d")));
    assertEquals(Status.Code.NOT_FOUND, rr.code());

    EmbedRankException async =
        assertThrows(
            EmbedRankException.class,
            () -> {
              try {
                client.encodeAsync(NO_SUCH_MODEL, List.of("a")).join();
              } catch (java.util.concurrent.CompletionException ce) {
                throw ce.getCause();
              }
            });
    assertEquals(Status.Code.NOT_FOUND, async.code());
  }

  @Test
  void encodeQuantizedShapesAndSigns() {
    ModelInfo info = client.getModel(embedModel);
    List<String> texts = strings(expected.get("texts"));
    double[][] floats = matrix(expected.get("embeddings"));
    int dims = floats[0].length;
    for (Precision p : info.getOutputPrecisionsList()) {
      if (p == Precision.PRECISION_FLOAT32 || p == Precision.PRECISION_UNSPECIFIED) {
        continue;
      }
      QuantizedEmbeddings q = client.encodeQuantized(embedModel, texts, p);
      assertEquals(p, q.precision());
      assertEquals(texts.size(), q.rows(), p + " rows");
      assertEquals(dims, q.dimensions(), p + " dimensions");
      int perRow =
          (p == Precision.PRECISION_BINARY || p == Precision.PRECISION_UBINARY)
              ? (dims + 7) / 8
              : dims;
      assertEquals(perRow, q.bytesPerRow());
      for (int r = 0; r < q.rows(); r++) {
        assertEquals(perRow, q.row(r).length);
      }
      if (p == Precision.PRECISION_BINARY || p == Precision.PRECISION_UBINARY) {
        for (int r = 0; r < q.rows(); r++) {
          for (int d = 0; d < dims; d++) {
            if (Math.abs(floats[r][d]) > 1e-3) {
              assertEquals(floats[r][d] > 0, q.bit(r, d), p + " bit [" + r + "][" + d + "]");
            }
          }
        }
      }
    }
  }

  // ---- Rerank

  @Test
  void rerankEqualsPythonClient() {
    assertRerank(
        client.rerank(
            rerankModel, expected.get("query").getAsString(), strings(expected.get("documents"))));
  }

  @Test
  void rerankAsyncEqualsPythonClient() throws Exception {
    assertRerank(
        client
            .rerankAsync(
                rerankModel,
                expected.get("query").getAsString(),
                strings(expected.get("documents")))
            .get(60, TimeUnit.SECONDS));
  }

  @Test
  void rerankOptions() {
    List<String> docs = strings(expected.get("documents"));
    List<RerankResult> top =
        client.rerank(
            rerankModel,
            expected.get("query").getAsString(),
            docs,
            RerankOptions.builder().topK(1).returnDocuments(true).build());
    assertEquals(Math.min(1, docs.size()), top.size());
    if (!top.isEmpty()) {
      JsonObject best = expected.getAsJsonArray("rerank").get(0).getAsJsonObject();
      assertClose(best.get("score").getAsDouble(), top.get(0).score(), "best score");
      assertEquals(docs.get(top.get(0).index()), top.get(0).document(), "returned document");
    }
  }

  // ---- Models

  @Test
  void sparseMultiVectorAndMaxSimEqualPythonClient() {
    JsonObject kinds = expected.getAsJsonObject("kinds");
    List<String> texts = strings(kinds.get("texts"));
    try (EmbedRankClient other =
        EmbedRankClient.builder(kinds.get("target").getAsString()).usePlaintext().build()) {
      List<SparseEmbedding> sparse =
          other.encodeSparse(
              kinds.get("sparse_model").getAsString(),
              texts,
              10,
              true,
              dev.embedrank.v1.InputType.INPUT_TYPE_UNSPECIFIED);
      JsonArray wantSparse = kinds.getAsJsonArray("sparse");
      for (int i = 0; i < texts.size(); i++) {
        JsonObject want = wantSparse.get(i).getAsJsonObject();
        SparseEmbedding got = sparse.get(i);
        JsonArray indices = want.getAsJsonArray("indices");
        assertEquals(indices.size(), got.indices().length, "sparse " + i);
        for (int j = 0; j < indices.size(); j++) {
          assertEquals(indices.get(j).getAsInt(), got.indices()[j], "sparse index " + i + "," + j);
          assertClose(want.getAsJsonArray("values").get(j).getAsDouble(), got.values()[j], "sparse value");
        }
        assertEquals(strings(want.get("tokens")), got.tokens());
        assertEquals(got.values()[0], got.toDense()[got.indices()[0]]);
      }
      String multiModel = kinds.get("multi_vector_model").getAsString();
      List<float[][]> multi =
          other.encodeMultiVector(multiModel, texts, dev.embedrank.v1.InputType.INPUT_TYPE_QUERY);
      JsonArray wantMulti = kinds.getAsJsonArray("multi_vector");
      for (int i = 0; i < texts.size(); i++) {
        assertMatrix(matrix(wantMulti.get(i)), multi.get(i), "multi-vector " + i);
      }
      List<RerankResult> hits =
          other.rerank(
              multiModel, expected.get("query").getAsString(), strings(kinds.get("documents")));
      JsonArray wantHits = kinds.getAsJsonArray("maxsim");
      assertEquals(wantHits.size(), hits.size());
      for (int i = 0; i < hits.size(); i++) {
        JsonObject want = wantHits.get(i).getAsJsonObject();
        assertEquals(want.get("index").getAsInt(), hits.get(i).index(), "maxsim order");
        assertEquals(want.get("score").getAsDouble(), hits.get(i).score(), 1e-4, "maxsim score");
      }
      EmbedRankException e =
          assertThrows(EmbedRankException.class, () -> other.encodeSparse(multiModel, texts));
      assertEquals(Status.Code.FAILED_PRECONDITION, e.code());
      assertTrue(e.getMessage().contains("MultiVectorEmbed.EncodeMultiVector"), e.getMessage());
    }
  }

  @Test
  void listModelsViaGeneratedStub() {
    List<ModelInfo> models =
        ModelsGrpc.newBlockingStub(client.channel())
            .listModels(ListModelsRequest.getDefaultInstance())
            .getModelsList();
    Map<String, ModelInfo> byName =
        models.stream().collect(Collectors.toMap(ModelInfo::getName, Function.identity(), (a, b) -> a));
    assertTrue(byName.containsKey(embedModel), "ListModels lacks " + embedModel + ": " + byName.keySet());
    assertTrue(byName.containsKey(rerankModel), "ListModels lacks " + rerankModel + ": " + byName.keySet());
    assertEquals(ModelKind.MODEL_KIND_EMBEDDING, byName.get(embedModel).getKind());
    assertEquals(ModelKind.MODEL_KIND_RERANK, byName.get(rerankModel).getKind());
    double[][] floats = matrix(expected.get("embeddings"));
    assertFalse(floats.length == 0, "the JSON has embeddings");
    assertEquals(floats[0].length, byName.get(embedModel).getDimensions(), "dimensions of " + embedModel);
  }

  // ---- Classify and Tokenize

  @Test
  void classifyPairsAsThePythonClient() {
    JsonObject k = expected.getAsJsonObject("kinds");
    String model = k.get("classify_model").getAsString();
    List<Pair> pairs = new ArrayList<>();
    for (JsonElement p : k.getAsJsonArray("pairs")) {
      pairs.add(new Pair(p.getAsJsonArray().get(0).getAsString(), p.getAsJsonArray().get(1).getAsString()));
    }
    List<Classification> got = client.classifyPairs(model, pairs, null);
    JsonArray want = k.getAsJsonArray("classify");
    assertEquals(want.size(), got.size(), "results");
    for (int i = 0; i < want.size(); i++) {
      JsonArray labels = want.get(i).getAsJsonArray();
      for (int j = 0; j < labels.size(); j++) {
        JsonObject w = labels.get(j).getAsJsonObject();
        LabelScore g = got.get(i).labels().get(j);
        assertEquals(w.get("index").getAsInt(), g.index(), "input " + i + " label " + j);
        assertEquals(w.get("label").getAsString(), g.label(), "input " + i + " label " + j);
        assertClose(w.get("score").getAsDouble(), g.score(), "input " + i + " label " + j);
      }
    }
    assertEquals(1, client.classifyPairs(model, pairs.subList(0, 1), 1).get(0).labels().size());
    EmbedRankException bad =
        assertThrows(EmbedRankException.class, () -> client.classifyPairs(model, pairs, 0));
    assertEquals(Status.Code.INVALID_ARGUMENT, bad.code());
    EmbedRankException wrongKind =
        assertThrows(EmbedRankException.class, () -> client.classify(embedModel, List.of("a"), null));
    assertEquals(Status.Code.FAILED_PRECONDITION, wrongKind.code());
  }

  @Test
  void tokenizeAndDecodeAsThePythonClient() {
    JsonObject k = expected.getAsJsonObject("kinds");
    String model = k.get("tokenize_model").getAsString();
    List<String> texts = strings(k.get("tokenize_texts"));
    List<TokenizedInput> got =
        client.tokenize(model, texts, dev.embedrank.v1.InputType.INPUT_TYPE_QUERY);
    JsonArray want = k.getAsJsonArray("tokenize");
    for (int i = 0; i < want.size(); i++) {
      JsonObject w = want.get(i).getAsJsonObject();
      TokenizedInput in = got.get(i);
      assertEquals(w.get("prompt").getAsString(), in.prompt(), "prompt " + i);
      JsonArray ids = w.getAsJsonArray("ids");
      assertEquals(ids.size(), in.tokenCount(), "token count " + i);
      for (int j = 0; j < ids.size(); j++) {
        Token t = in.tokens().get(j);
        JsonArray span = w.getAsJsonArray("spans").get(j).getAsJsonArray();
        assertEquals(ids.get(j).getAsInt(), t.id(), "text " + i + " token " + j);
        assertEquals(new Span(span.get(0).getAsInt(), span.get(1).getAsInt()), t.span(), "span " + j);
        if (!t.special() && !t.prompt()) {
          assertEquals(
              w.getAsJsonArray("pieces").get(j).getAsString(), t.span().of(texts.get(i)), "piece " + j);
        }
      }
      assertEquals(w.get("decoded").getAsString(), client.decode(model, in.ids(), true), "decode " + i);
    }
  }
}

package dev.embedrank.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.embedrank.v1.EncodeResponse;
import dev.embedrank.v1.ListModelsRequest;
import dev.embedrank.v1.ModelInfo;
import dev.embedrank.v1.ModelsGrpc;
import dev.embedrank.v1.Precision;
import io.grpc.Deadline;
import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The client against {@link FakeServer}, in process: no real server needed. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ClientInProcessTest {
  private FakeServer server;
  private EmbedRankClient client;

  @BeforeEach
  void start() throws Exception {
    server = new FakeServer();
    client = server.clientBuilder().bearerToken("s3cret").build();
  }

  @AfterEach
  void stop() throws Exception {
    client.close();
    server.close();
  }

  @Test
  void encodeDecodesRowsInOrder() {
    float[][] m = client.encode(FakeServer.EMBED, List.of("hello", "ab"));
    assertEquals(2, m.length);
    assertArrayEquals(FakeServer.embedding("hello"), m[0]);
    assertArrayEquals(FakeServer.embedding("ab"), m[1]);
  }

  @Test
  void sendsBearerTokenAndDefaultDeadline() {
    client.encode(FakeServer.EMBED, List.of("x"));
    assertEquals("Bearer s3cret", server.lastAuthorization.get());
    Deadline d = server.lastDeadline.get();
    assertNotNull(d, "the default deadline must reach the server");
    long left = d.timeRemaining(TimeUnit.SECONDS);
    assertTrue(left > 20 && left <= 30, "about 30 s left, got " + left);
  }

  @Test
  void noTokenNoHeaderAndConfiguredDeadline() throws Exception {
    try (EmbedRankClient plain =
        server.clientBuilder().defaultDeadline(Duration.ofSeconds(5)).build()) {
      plain.encode(FakeServer.EMBED, List.of("x"));
      assertNull(server.lastAuthorization.get());
      assertTrue(server.lastDeadline.get().timeRemaining(TimeUnit.SECONDS) <= 5);
    }
    try (EmbedRankClient none = server.clientBuilder().defaultDeadline(null).build()) {
      none.encode(FakeServer.EMBED, List.of("x"));
      assertNull(server.lastDeadline.get());
    }
  }

  @Test
  void errorsCarryCodeAndServerMessage() {
    EmbedRankException empty =
        assertThrows(EmbedRankException.class, () -> client.encode(FakeServer.EMBED, List.of()));
    assertEquals(Status.Code.INVALID_ARGUMENT, empty.code());
    assertEquals(FakeServer.EMPTY_TEXTS, empty.serverMessage());
    assertEquals("texts", empty.field(), "from the google.rpc.BadRequest detail");

    EmbedRankException unknown =
        assertThrows(EmbedRankException.class, () -> client.encode("no-such-model", List.of("a")));
    assertEquals(Status.Code.NOT_FOUND, unknown.code());
    assertEquals("", unknown.field());

    EmbedRankException rr =
        assertThrows(
            EmbedRankException.class, () -> client.rerank("no-such-model", "q", List.of("d")));
    assertEquals(Status.Code.NOT_FOUND, rr.code());
    assertEquals(
        Status.Code.NOT_FOUND,
        assertThrows(EmbedRankException.class, () -> client.getModel("nope")).code());
  }

  @Test
  void encodeAsync() throws Exception {
    CompletableFuture<float[][]> f = client.encodeAsync(FakeServer.EMBED, List.of("abc"));
    assertArrayEquals(FakeServer.embedding("abc"), f.get(10, TimeUnit.SECONDS)[0]);

    CompletableFuture<float[][]> bad = client.encodeAsync(FakeServer.EMBED, List.of());
    ExecutionException e = assertThrows(ExecutionException.class, () -> bad.get(10, TimeUnit.SECONDS));
    EmbedRankException cause = (EmbedRankException) e.getCause();
    assertEquals(Status.Code.INVALID_ARGUMENT, cause.code());
  }

  @Test
  void encodeQuantizedBinary() {
    // "hello" -> (5, 'h', -0.5): bits 110 -> 0xC0; binary stores 0xC0 - 128 = 0x40.
    QuantizedEmbeddings q =
        client.encodeQuantized(FakeServer.EMBED, List.of("hello", ""), Precision.PRECISION_BINARY);
    assertEquals(2, q.rows());
    assertEquals(FakeServer.DIMS, q.dimensions());
    assertEquals(1, q.bytesPerRow());
    assertArrayEquals(new byte[] {0x40}, q.row(0));
    assertTrue(q.bit(0, 0));
    assertTrue(q.bit(0, 1));
    assertFalse(q.bit(0, 2));
    assertFalse(q.bit(1, 0));

    QuantizedEmbeddings u =
        client.encodeQuantized(FakeServer.EMBED, List.of("hello"), Precision.PRECISION_UBINARY);
    assertArrayEquals(new byte[] {(byte) 0xC0}, u.row(0));
  }

  @Test
  void rerankSortedWithOptions() throws Exception {
    List<String> docs = List.of("a cat", "the dog sat on the mat", "dog and cat sat");
    List<RerankResult> all = client.rerank(FakeServer.RERANK, "dog sat", docs);
    assertEquals(List.of(1, 2, 0), all.stream().map(RerankResult::index).collect(Collectors.toList()));
    assertEquals(2f, all.get(0).score());
    assertNull(all.get(0).document(), "documents only when asked for");

    List<RerankResult> top =
        client.rerank(
            FakeServer.RERANK,
            "dog sat",
            docs,
            RerankOptions.builder().topK(1).returnDocuments(true).rawScores(true).build());
    assertEquals(1, top.size());
    assertEquals(new RerankResult(1, 1.5f, "the dog sat on the mat", false), top.get(0));

    List<RerankResult> async = client.rerankAsync(FakeServer.RERANK, "dog sat", docs).get();
    assertEquals(all, async);
  }

  @Test
  void listModelsViaGeneratedStubOnClientChannel() {
    List<ModelInfo> models =
        ModelsGrpc.newBlockingStub(client.channel())
            .listModels(ListModelsRequest.getDefaultInstance())
            .getModelsList();
    assertEquals(
        List.of(FakeServer.EMBED, FakeServer.RERANK),
        models.stream().map(ModelInfo::getName).collect(Collectors.toList()));
    assertEquals("Bearer s3cret", server.lastAuthorization.get(), "the channel carries the token");
    assertEquals(2, client.listModels().size());
  }

  @Test
  void retriesUnavailable() {
    server.listModelsFailures.set(2);
    assertEquals(2, client.listModels().size());
    assertEquals(3, server.listModelsCalls.get(), "two UNAVAILABLE, then success");
  }

  @Test
  void givesUpAfterMaxAttempts() throws Exception {
    server.listModelsFailures.set(10);
    try (EmbedRankClient two = server.clientBuilder().maxAttempts(2).build()) {
      EmbedRankException e = assertThrows(EmbedRankException.class, two::listModels);
      assertEquals(Status.Code.UNAVAILABLE, e.code());
      assertEquals("warming up", e.serverMessage());
    }
    assertEquals(2, server.listModelsCalls.get());
  }

  @Test
  void noRetryWhenDisabled() throws Exception {
    server.listModelsFailures.set(1);
    try (EmbedRankClient noRetry = server.clientBuilder().retry(false).build()) {
      assertEquals(
          Status.Code.UNAVAILABLE,
          assertThrows(EmbedRankException.class, noRetry::listModels).code());
    }
    assertEquals(1, server.listModelsCalls.get());
  }

  private static List<List<String>> batches(int n) {
    List<List<String>> batches = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      List<String> batch = new ArrayList<>();
      for (int j = 0; j <= i % 4; j++) {
        batch.add("batch " + i + " text " + j + "x".repeat(i));
      }
      batches.add(batch);
    }
    return batches;
  }

  @Test
  void streamReturnsResultsInRequestOrder() {
    List<List<String>> batches = batches(100);
    List<StreamItem<float[][]>> items = client.encodeStream(FakeServer.EMBED, batches);
    assertEquals(batches.size(), items.size());
    for (int i = 0; i < batches.size(); i++) {
      StreamItem<float[][]> item = items.get(i);
      assertEquals(i, item.index());
      assertEquals(Integer.toString(i), item.id());
      assertTrue(item.isOk());
      float[][] m = item.value();
      assertEquals(batches.get(i).size(), m.length);
      for (int j = 0; j < m.length; j++) {
        assertArrayEquals(FakeServer.embedding(batches.get(i).get(j)), m[j]);
      }
    }
    int max = server.maxOutstanding.get();
    assertTrue(max <= EmbedRankClient.DEFAULT_STREAM_MAX_IN_FLIGHT, "in flight " + max);
    assertTrue(max > 1, "requests should be pipelined, saw " + max);
  }

  @Test
  void streamRespectsASmallerBound() throws Exception {
    try (EmbedRankClient c = server.clientBuilder().streamMaxInFlight(3).build()) {
      List<StreamItem<float[][]>> items = c.encodeStream(FakeServer.EMBED, batches(40));
      assertEquals(40, items.size());
      assertTrue(items.stream().allMatch(StreamItem::isOk));
    }
    assertTrue(server.maxOutstanding.get() <= 3, "in flight " + server.maxOutstanding.get());

    List<StreamItem<EncodeResponse>> one =
        client.encodeStreamRaw(
            List.of(EncodeOptions.defaults().toRequest(FakeServer.EMBED, List.of("a")),
                EncodeOptions.defaults().toRequest(FakeServer.EMBED, List.of("b"))),
            1, Duration.ofSeconds(10));
    assertEquals(2, one.size());
    assertEquals(1, one.get(1).value().getEmbeddings().getRows());
  }

  @Test
  void streamItemErrorsDoNotStopTheStream() {
    List<List<String>> batches = new ArrayList<>(batches(10));
    batches.set(3, List.of());
    List<StreamItem<float[][]>> items = client.encodeStream(FakeServer.EMBED, batches);
    assertEquals(10, items.size());
    for (int i = 0; i < 10; i++) {
      assertEquals(i != 3, items.get(i).isOk(), "item " + i);
    }
    EmbedRankException e = assertThrows(EmbedRankException.class, () -> items.get(3).value());
    assertEquals(Status.Code.INVALID_ARGUMENT, e.code());
    assertEquals(FakeServer.EMPTY_TEXTS, e.serverMessage());
    assertEquals("texts", e.field());
    assertEquals(e, items.get(3).error().orElseThrow());

    List<StreamItem<float[][]>> unknown =
        client.encodeStream("no-such-model", List.of(List.of("a")));
    assertEquals(Status.Code.NOT_FOUND, unknown.get(0).error().orElseThrow().code());
  }

  @Test
  void streamChecksEchoedIds() {
    server.wrongStreamId = "7";
    EmbedRankException e =
        assertThrows(
            EmbedRankException.class, () -> client.encodeStream(FakeServer.EMBED, batches(20)));
    assertEquals(Status.Code.INTERNAL, e.code());
    assertTrue(e.serverMessage().contains("id '7' where id '0' was expected"), e.getMessage());
  }

  @Test
  void streamDeadlineFailsTheWholeStream() {
    server.streamDelayMillis = 200;
    EmbedRankException e =
        assertThrows(
            EmbedRankException.class,
            () ->
                client.encodeStreamRaw(
                    List.of(
                        EncodeOptions.defaults().toRequest(FakeServer.EMBED, List.of("a")),
                        EncodeOptions.defaults().toRequest(FakeServer.EMBED, List.of("b"))),
                    1,
                    Duration.ofMillis(250)));
    assertEquals(Status.Code.DEADLINE_EXCEEDED, e.code());
  }

  @Test
  void emptyStreamSendsNothing() {
    assertEquals(List.of(), client.encodeStream(FakeServer.EMBED, List.of()));
  }
}

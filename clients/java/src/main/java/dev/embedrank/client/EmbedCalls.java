package dev.embedrank.client;

import dev.embedrank.v1.EmbedGrpc;
import dev.embedrank.v1.EncodeRequest;
import dev.embedrank.v1.EncodeResponse;
import dev.embedrank.v1.LongInput;
import dev.embedrank.v1.Precision;
import io.grpc.Channel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The Embed service's calls behind {@link EmbedRankClient}'s {@code encode...} methods: Encode
 * (float32, quantized, chunked; blocking and async) and EncodeStream, each answer checked to have
 * one row per text.
 */
final class EmbedCalls {
  private final EmbedGrpc.EmbedBlockingStub blocking;
  private final EmbedGrpc.EmbedFutureStub future;
  private final EmbedGrpc.EmbedStub async;
  private final int streamMaxInFlight;

  EmbedCalls(Channel channel, int streamMaxInFlight) {
    this.blocking = EmbedGrpc.newBlockingStub(channel);
    this.future = EmbedGrpc.newFutureStub(channel);
    this.async = EmbedGrpc.newStub(channel);
    this.streamMaxInFlight = streamMaxInFlight;
  }

  float[][] encode(String model, List<String> texts, EncodeOptions options) {
    return floats(encodeRaw(options.toRequest(model, texts)), texts.size());
  }

  ChunkedEmbeddings encodeChunks(String model, List<String> texts, EncodeOptions options) {
    EncodeOptions chunked =
        options.toBuilder().longInput(LongInput.LONG_INPUT_CHUNK).returnChunks(true).build();
    return ChunkedEmbeddings.from(encodeRaw(chunked.toRequest(model, texts)), texts);
  }

  QuantizedEmbeddings encodeQuantized(
      String model, List<String> texts, Precision precision, EncodeOptions options) {
    EncodeResponse response = encodeRaw(options.toRequest(model, texts, precision));
    QuantizedEmbeddings q = EmbeddingDecoder.toQuantized(response.getEmbeddings());
    EmbeddingDecoder.checkRows(q.rows(), texts.size());
    return q;
  }

  EncodeResponse encodeRaw(EncodeRequest request) {
    return Unary.call(() -> blocking.encode(request));
  }

  CompletableFuture<float[][]> encodeAsync(String model, List<String> texts, EncodeOptions options) {
    EncodeRequest request = options.toRequest(model, texts);
    int expectedRows = texts.size();
    return Unary.toCompletable(future.encode(request), r -> floats(r, expectedRows));
  }

  List<StreamItem<float[][]>> encodeStream(
      String model, List<List<String>> batches, EncodeOptions options) {
    List<EncodeRequest> requests = new ArrayList<>(batches.size());
    for (List<String> batch : batches) {
      requests.add(options.toRequest(model, batch));
    }
    List<StreamItem<EncodeResponse>> raw = encodeStreamRaw(requests, streamMaxInFlight, null);
    List<StreamItem<float[][]>> out = new ArrayList<>(raw.size());
    for (int i = 0; i < raw.size(); i++) {
      int expectedRows = batches.get(i).size();
      out.add(raw.get(i).map(r -> floats(r, expectedRows)));
    }
    return out;
  }

  /** {@code maxInFlight} absent: the client's {@code streamMaxInFlight}. */
  List<StreamItem<EncodeResponse>> encodeStreamRaw(List<EncodeRequest> requests) {
    return encodeStreamRaw(requests, streamMaxInFlight, null);
  }

  List<StreamItem<EncodeResponse>> encodeStreamRaw(
      List<EncodeRequest> requests, int maxInFlight, Duration deadline) {
    EmbedGrpc.EmbedStub stub =
        deadline == null ? async : async.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS);
    return OrderedStream.run(KindStreams.ENCODE, stub::encodeStream, requests, maxInFlight);
  }

  private static float[][] floats(EncodeResponse response, int expectedRows) {
    float[][] rows = EmbeddingDecoder.toFloats(response.getEmbeddings());
    EmbeddingDecoder.checkRows(rows.length, expectedRows);
    return rows;
  }
}

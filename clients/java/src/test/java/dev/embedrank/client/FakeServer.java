package dev.embedrank.client;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.rpc.BadRequest;
import dev.embedrank.v1.EmbedGrpc;
import dev.embedrank.v1.Embeddings;
import dev.embedrank.v1.EncodeRequest;
import dev.embedrank.v1.EncodeResponse;
import dev.embedrank.v1.EncodeStreamRequest;
import dev.embedrank.v1.EncodeStreamResponse;
import dev.embedrank.v1.GetModelRequest;
import dev.embedrank.v1.ListModelsRequest;
import dev.embedrank.v1.ListModelsResponse;
import dev.embedrank.v1.ModelInfo;
import dev.embedrank.v1.ModelKind;
import dev.embedrank.v1.ModelsGrpc;
import dev.embedrank.v1.Precision;
import dev.embedrank.v1.RerankGrpc;
import dev.embedrank.v1.RerankRequest;
import dev.embedrank.v1.RerankResponse;
import dev.embedrank.v1.RerankResult;
import dev.embedrank.v1.StreamError;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.protobuf.StatusProto;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * An in-process stand-in for the embedrank server with predictable outputs, for tests that need
 * no real server. Model "fake-embed" (3 dimensions), "fake-rerank".
 */
final class FakeServer implements AutoCloseable {
  static final String EMBED = "fake-embed";
  static final String RERANK = "fake-rerank";
  static final int DIMS = 3;
  static final String EMPTY_TEXTS = "texts: is empty; send at least one";

  final String name = InProcessServerBuilder.generateName();
  final AtomicReference<String> lastAuthorization = new AtomicReference<>();
  final AtomicReference<Deadline> lastDeadline = new AtomicReference<>();
  /** Calls of ListModels to fail with UNAVAILABLE before one succeeds. */
  final AtomicInteger listModelsFailures = new AtomicInteger();
  final AtomicInteger listModelsCalls = new AtomicInteger();
  /** Stream requests received but not yet answered, at most, over the server's life. */
  final AtomicInteger maxOutstanding = new AtomicInteger();
  /** Delay of each stream response. */
  volatile long streamDelayMillis = 2;
  /** When set, the stream answers with this id instead of the request's (once). */
  volatile String wrongStreamId;

  private final ScheduledExecutorService streamExecutor = Executors.newScheduledThreadPool(2);
  private final ExecutorService serverExecutor = Executors.newFixedThreadPool(4);
  private final Server server;

  FakeServer() throws IOException {
    ServerInterceptor capture =
        new ServerInterceptor() {
          @Override
          public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(
              ServerCall<ReqT, RespT> call, Metadata headers, ServerCallHandler<ReqT, RespT> next) {
            lastAuthorization.set(headers.get(EmbedRankClient.AUTHORIZATION));
            lastDeadline.set(Context.current().getDeadline());
            return next.startCall(call, headers);
          }
        };
    server =
        InProcessServerBuilder.forName(name)
            .executor(serverExecutor)
            .addService(ServerInterceptors.intercept(new Embed(), capture))
            .addService(ServerInterceptors.intercept(new Rerank(), capture))
            .addService(ServerInterceptors.intercept(new Models(), capture))
            .build()
            .start();
  }

  EmbedRankClient.Builder clientBuilder() {
    return EmbedRankClient.builder().channelBuilder(InProcessChannelBuilder.forName(name));
  }

  @Override
  public void close() {
    server.shutdownNow();
    try {
      server.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    streamExecutor.shutdownNow();
    serverExecutor.shutdownNow();
  }

  /** The fake embedding of a text: (length, first char, -index-independent constant). */
  static float[] embedding(String text) {
    return new float[] {text.length(), text.isEmpty() ? 0 : text.charAt(0), -0.5f};
  }

  static EncodeResponse encode(EncodeRequest request) throws StatusException {
    if (!request.getModel().equals(EMBED)) {
      throw Status.NOT_FOUND.withDescription("no model '" + request.getModel() + "'").asException();
    }
    if (request.getTextsCount() == 0) {
      // Like the real server: the message, and the field in a google.rpc.BadRequest detail.
      throw StatusProto.toStatusException(
          com.google.rpc.Status.newBuilder()
              .setCode(Status.Code.INVALID_ARGUMENT.value())
              .setMessage(EMPTY_TEXTS)
              .addDetails(
                  Any.pack(
                      BadRequest.newBuilder()
                          .addFieldViolations(
                              BadRequest.FieldViolation.newBuilder()
                                  .setField("texts")
                                  .setDescription("is empty; send at least one"))
                          .build()))
              .build());
    }
    int n = request.getTextsCount();
    Precision p = request.getPrecision();
    ByteBuffer data;
    if (p == Precision.PRECISION_UBINARY || p == Precision.PRECISION_BINARY) {
      data = ByteBuffer.allocate(n);
      for (String t : request.getTextsList()) {
        float[] e = embedding(t);
        int bits = 0;
        for (int d = 0; d < DIMS; d++) {
          bits |= (e[d] > 0 ? 1 : 0) << (7 - d);
        }
        data.put((byte) (p == Precision.PRECISION_BINARY ? bits - 128 : bits));
      }
    } else {
      data = ByteBuffer.allocate(4 * DIMS * n).order(ByteOrder.LITTLE_ENDIAN);
      for (String t : request.getTextsList()) {
        for (float v : embedding(t)) {
          data.putFloat(v);
        }
      }
      p = Precision.PRECISION_FLOAT32;
    }
    data.flip();
    return EncodeResponse.newBuilder()
        .setEmbeddings(
            Embeddings.newBuilder()
                .setPrecision(p)
                .setRows(n)
                .setDimensions(DIMS)
                .setData(ByteString.copyFrom(data)))
        .build();
  }

  final class Embed extends EmbedGrpc.EmbedImplBase {
    @Override
    public void encode(EncodeRequest request, StreamObserver<EncodeResponse> out) {
      try {
        out.onNext(FakeServer.encode(request));
        out.onCompleted();
      } catch (StatusException e) {
        out.onError(e);
      }
    }

    @Override
    public StreamObserver<EncodeStreamRequest> encodeStream(
        StreamObserver<EncodeStreamResponse> out) {
      // Answers each request a delay after the previous answer, in order: one chain of tasks.
      AtomicInteger outstanding = new AtomicInteger();
      return new StreamObserver<>() {
        private CompletableFuture<Void> tail = CompletableFuture.completedFuture(null);

        private synchronized void schedule(Runnable r) {
          tail =
              tail.thenRunAsync(
                  r,
                  CompletableFuture.delayedExecutor(
                      streamDelayMillis, TimeUnit.MILLISECONDS, streamExecutor));
        }

        @Override
        public void onNext(EncodeStreamRequest item) {
          int now = outstanding.incrementAndGet();
          maxOutstanding.accumulateAndGet(now, Math::max);
          EncodeStreamResponse.Builder r = EncodeStreamResponse.newBuilder().setId(item.getId());
          String wrong = wrongStreamId;
          if (wrong != null) {
            wrongStreamId = null;
            r.setId(wrong);
          }
          try {
            r.setResponse(FakeServer.encode(item.getRequest()));
          } catch (StatusException e) {
            r.setError(
                StreamError.newBuilder()
                    .setCode(e.getStatus().getCode().value())
                    .setMessage(e.getStatus().getDescription())
                    .setField(item.getRequest().getTextsCount() == 0 ? "texts" : "model"));
          }
          schedule(
              () -> {
                outstanding.decrementAndGet();
                out.onNext(r.build());
              });
        }

        @Override
        public void onError(Throwable t) {}

        @Override
        public void onCompleted() {
          schedule(out::onCompleted);
        }
      };
    }
  }

  final class Rerank extends RerankGrpc.RerankImplBase {
    /** Score: number of query words the document contains; raw = that minus 0.5. */
    @Override
    public void rerank(RerankRequest request, StreamObserver<RerankResponse> out) {
      if (!request.getModel().equals(RERANK)) {
        out.onError(Status.NOT_FOUND.withDescription("no model").asException());
        return;
      }
      List<RerankResult> results = new ArrayList<>();
      String[] words = request.getQuery().toLowerCase().split("\\s+");
      for (int i = 0; i < request.getDocumentsCount(); i++) {
        String doc = request.getDocuments(i);
        float score = 0;
        for (String w : words) {
          if (doc.toLowerCase().contains(w)) {
            score++;
          }
        }
        if (request.getScores() == dev.embedrank.v1.ScoreMode.SCORE_MODE_RAW) {
          score -= 0.5f;
        }
        RerankResult.Builder r = RerankResult.newBuilder().setIndex(i).setScore(score);
        if (request.getReturnDocuments()) {
          r.setDocument(doc);
        }
        r.setTruncated(doc.length() > 40);
        results.add(r.build());
      }
      results.sort(
          Comparator.comparing(RerankResult::getScore).reversed()
              .thenComparing(RerankResult::getIndex));
      if (request.hasTopK() && request.getTopK() < results.size()) {
        results = results.subList(0, request.getTopK());
      }
      out.onNext(RerankResponse.newBuilder().addAllResults(results).build());
      out.onCompleted();
    }
  }

  final class Models extends ModelsGrpc.ModelsImplBase {
    @Override
    public void listModels(ListModelsRequest request, StreamObserver<ListModelsResponse> out) {
      listModelsCalls.incrementAndGet();
      if (listModelsFailures.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
        out.onError(Status.UNAVAILABLE.withDescription("warming up").asException());
        return;
      }
      out.onNext(
          ListModelsResponse.newBuilder()
              .addModels(info(EMBED))
              .addModels(info(RERANK))
              .build());
      out.onCompleted();
    }

    @Override
    public void getModel(GetModelRequest request, StreamObserver<ModelInfo> out) {
      if (request.getName().equals(EMBED) || request.getName().equals(RERANK)) {
        out.onNext(info(request.getName()));
        out.onCompleted();
      } else {
        out.onError(Status.NOT_FOUND.withDescription("no model").asException());
      }
    }

    private ModelInfo info(String name) {
      return ModelInfo.newBuilder()
          .setName(name)
          .setKind(name.equals(EMBED) ? ModelKind.MODEL_KIND_EMBEDDING : ModelKind.MODEL_KIND_RERANK)
          .setDimensions(name.equals(EMBED) ? DIMS : 0)
          .build();
    }
  }
}

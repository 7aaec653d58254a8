package dev.embedrank.client;

import dev.embedrank.v1.RerankGrpc;
import dev.embedrank.v1.RerankRequest;
import dev.embedrank.v1.RerankResponse;
import io.grpc.Channel;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The Rerank service's calls behind {@link EmbedRankClient}'s {@code rerank...} methods (blocking
 * and async), and the reading of its answer as {@link RerankResult}s, best first.
 */
final class RerankCalls {
  private final RerankGrpc.RerankBlockingStub blocking;
  private final RerankGrpc.RerankFutureStub future;

  RerankCalls(Channel channel) {
    this.blocking = RerankGrpc.newBlockingStub(channel);
    this.future = RerankGrpc.newFutureStub(channel);
  }

  List<RerankResult> rerank(
      String model, String query, List<String> documents, RerankOptions options) {
    return results(rerankRaw(options.toRequest(model, query, documents)), options);
  }

  RerankResponse rerankRaw(RerankRequest request) {
    return Unary.call(() -> blocking.rerank(request));
  }

  CompletableFuture<List<RerankResult>> rerankAsync(
      String model, String query, List<String> documents, RerankOptions options) {
    RerankRequest request = options.toRequest(model, query, documents);
    return Unary.toCompletable(future.rerank(request), r -> results(r, options));
  }

  private static List<RerankResult> results(RerankResponse response, RerankOptions options) {
    List<RerankResult> out = new ArrayList<>(response.getResultsCount());
    for (dev.embedrank.v1.RerankResult r : response.getResultsList()) {
      out.add(
          new RerankResult(
              r.getIndex(),
              r.getScore(),
              options.returnDocuments() ? r.getDocument() : null,
              r.getTruncated(),
              r.getChunkCount() > 0 ? Span.from(r.getSpan()) : null,
              r.getChunkCount()));
    }
    return Collections.unmodifiableList(out);
  }
}

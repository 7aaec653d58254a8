package dev.embedrank.client;

import com.google.common.util.concurrent.FutureCallback;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.MoreExecutors;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Error mapping of the unary calls: a blocking stub's {@link StatusRuntimeException} becomes an
 * {@link EmbedRankException}, and a future stub's {@link ListenableFuture} a {@link
 * CompletableFuture} that completes exceptionally with one (and cancels the RPC when cancelled).
 */
final class Unary {
  private Unary() {}

  /** Runs one blocking RPC, e.g. {@code Unary.call(() -> stub.encode(request))}. */
  static <T> T call(Supplier<T> rpc) {
    try {
      return rpc.get();
    } catch (StatusRuntimeException e) {
      throw EmbedRankException.from(e);
    }
  }

  /**
   * {@code source} (a future stub's answer) mapped by {@code map}; a failure of either completes
   * the result with an {@link EmbedRankException}.
   */
  static <T, R> CompletableFuture<R> toCompletable(
      ListenableFuture<T> source, Function<? super T, ? extends R> map) {
    CompletableFuture<R> target =
        new CompletableFuture<>() {
          @Override
          public boolean cancel(boolean mayInterruptIfRunning) {
            source.cancel(mayInterruptIfRunning); // cancels the RPC
            return super.cancel(mayInterruptIfRunning);
          }
        };
    Futures.addCallback(
        source,
        new FutureCallback<T>() {
          @Override
          public void onSuccess(T value) {
            try {
              target.complete(map.apply(value));
            } catch (RuntimeException e) {
              target.completeExceptionally(EmbedRankException.from(e));
            }
          }

          @Override
          public void onFailure(Throwable t) {
            target.completeExceptionally(EmbedRankException.from(t));
          }
        },
        MoreExecutors.directExecutor());
    return target;
  }
}

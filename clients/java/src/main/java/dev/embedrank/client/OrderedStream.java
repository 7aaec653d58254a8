package dev.embedrank.client;

import dev.embedrank.v1.StreamError;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Semaphore;
import java.util.function.BiFunction;
import java.util.function.Function;

/**
 * One of the ...Stream RPCs: sends ids "0", "1", ... with a bound on requests in flight, collects
 * the responses in request order, an error item as that item's {@link EmbedRankException}.
 *
 * @param <Req> the unary request (EncodeRequest, ClassifyRequest, ...)
 * @param <Q> the stream's request item (EncodeStreamRequest, ...)
 * @param <S> the stream's response item (EncodeStreamResponse, ...)
 * @param <R> the unary response (EncodeResponse, ...)
 */
final class OrderedStream<Req, Q, S, R> implements ClientResponseObserver<Q, S> {
  /**
   * What differs between the ...Stream RPCs: the RPC's name (for errors), how an item is made,
   * and how a response item is read (its id; its response or error, null when not set).
   */
  record Shape<Req, Q, S, R>(
      String rpc,
      BiFunction<String, Req, Q> item,
      Function<S, String> id,
      Function<S, R> response,
      Function<S, StreamError> error) {}

  /** Sends {@code requests} on the stream {@code open} starts and returns the items in order. */
  static <Req, Q, S, R> List<StreamItem<R>> run(
      Shape<Req, Q, S, R> shape,
      Function<StreamObserver<S>, StreamObserver<Q>> open,
      List<Req> requests,
      int maxInFlight) {
    if (maxInFlight < 1) {
      throw new IllegalArgumentException("maxInFlight must be >= 1, got " + maxInFlight);
    }
    if (requests.isEmpty()) {
      return List.of();
    }
    OrderedStream<Req, Q, S, R> call = new OrderedStream<>(shape, requests.size(), maxInFlight);
    return call.run(requests, open.apply(call));
  }

  private final Shape<Req, Q, S, R> shape;
  private final int total;
  private final int maxInFlight;
  private final Semaphore permits;
  private final Object lock = new Object();
  private final CompletableFuture<Void> done = new CompletableFuture<>();
  private final List<StreamItem<R>> results;
  private ClientCallStreamObserver<Q> call;
  private int received; // touched by gRPC's serialized callbacks only

  private OrderedStream(Shape<Req, Q, S, R> shape, int total, int maxInFlight) {
    this.shape = shape;
    this.total = total;
    this.maxInFlight = maxInFlight;
    this.permits = new Semaphore(maxInFlight);
    this.results = new ArrayList<>(Collections.nCopies(total, null));
  }

  @Override
  public void beforeStart(ClientCallStreamObserver<Q> requestStream) {
    this.call = requestStream;
  }

  private List<StreamItem<R>> run(List<Req> requests, StreamObserver<Q> sender) {
    try {
      for (int i = 0; i < total; i++) {
        permits.acquire();
        Q item = shape.item().apply(Integer.toString(i), requests.get(i));
        synchronized (lock) {
          if (done.isDone()) {
            break;
          }
          sender.onNext(item);
        }
      }
      synchronized (lock) {
        if (!done.isDone()) {
          sender.onCompleted();
        }
      }
      done.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      fail(new EmbedRankException(Status.Code.CANCELLED, "interrupted", "", e));
      throw EmbedRankException.from(joinFailure());
    } catch (ExecutionException e) {
      throw EmbedRankException.from(e.getCause());
    } catch (RuntimeException e) {
      fail(EmbedRankException.from(e));
      throw EmbedRankException.from(joinFailure());
    }
    return Collections.unmodifiableList(results);
  }

  private Throwable joinFailure() {
    try {
      done.getNow(null);
      return new IllegalStateException("stream not failed");
    } catch (RuntimeException e) {
      return e.getCause() != null ? e.getCause() : e;
    }
  }

  @Override
  public void onNext(S response) {
    int i = received++;
    String got = shape.id().apply(response);
    if (i >= total) {
      fail(protocolError("response with id '" + got + "' after all "
          + total + " requests were answered"));
      return;
    }
    String id = Integer.toString(i);
    if (!id.equals(got)) {
      fail(protocolError("response with id '" + got + "' where id '" + id
          + "' was expected (responses must come in request order)"));
      return;
    }
    R value = shape.response().apply(response);
    StreamError error = shape.error().apply(response);
    StreamItem<R> item;
    if (value != null) {
      item = StreamItem.ok(i, id, value);
    } else if (error != null) {
      item = StreamItem.failed(i, id, EmbedRankException.fromStreamError(error));
    } else {
      item = StreamItem.failed(i, id, EmbeddingDecoder.malformed(
          "stream response '" + id + "' has neither response nor error"));
    }
    results.set(i, item);
    permits.release();
  }

  @Override
  public void onError(Throwable t) {
    fail(EmbedRankException.from(t));
  }

  @Override
  public void onCompleted() {
    if (received < total) {
      fail(protocolError("stream ended after " + received + " of " + total + " responses"));
    } else {
      done.complete(null);
    }
  }

  private void fail(EmbedRankException e) {
    synchronized (lock) {
      if (done.completeExceptionally(e) && call != null) {
        call.cancel(e.getMessage(), e);
      }
    }
    permits.release(total + maxInFlight); // unblock the sender
  }

  private EmbedRankException protocolError(String message) {
    return new EmbedRankException(Status.Code.INTERNAL, shape.rpc() + ": " + message);
  }
}

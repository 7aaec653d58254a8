package dev.embedrank.client;

import dev.embedrank.v1.EncodeRequest;
import dev.embedrank.v1.EncodeResponse;
import dev.embedrank.v1.EncodeStreamRequest;
import dev.embedrank.v1.EncodeStreamResponse;
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

/** One EncodeStream: sends with a bound on requests in flight, collects in order. */
final class OrderedStream
    implements ClientResponseObserver<EncodeStreamRequest, EncodeStreamResponse> {
  private final int total;
  private final int maxInFlight;
  private final Semaphore permits;
  private final Object lock = new Object();
  private final CompletableFuture<Void> done = new CompletableFuture<>();
  private final List<StreamItem<EncodeResponse>> results;
  private ClientCallStreamObserver<EncodeStreamRequest> call;
  private int received; // touched by gRPC's serialized callbacks only

  OrderedStream(int total, int maxInFlight) {
    this.total = total;
    this.maxInFlight = maxInFlight;
    this.permits = new Semaphore(maxInFlight);
    this.results = new ArrayList<>(Collections.nCopies(total, null));
  }

  @Override
  public void beforeStart(ClientCallStreamObserver<EncodeStreamRequest> requestStream) {
    this.call = requestStream;
  }

  List<StreamItem<EncodeResponse>> run(
      List<EncodeRequest> requests, StreamObserver<EncodeStreamRequest> sender) {
    try {
      for (int i = 0; i < total; i++) {
        permits.acquire();
        EncodeStreamRequest item =
            EncodeStreamRequest.newBuilder()
                .setId(Integer.toString(i))
                .setRequest(requests.get(i))
                .build();
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
  public void onNext(EncodeStreamResponse response) {
    int i = received++;
    if (i >= total) {
      fail(protocolError("response with id '" + response.getId() + "' after all "
          + total + " requests were answered"));
      return;
    }
    String id = Integer.toString(i);
    if (!id.equals(response.getId())) {
      fail(protocolError("response with id '" + response.getId() + "' where id '" + id
          + "' was expected (responses must come in request order)"));
      return;
    }
    StreamItem<EncodeResponse> item;
    switch (response.getResultCase()) {
      case RESPONSE:
        item = StreamItem.ok(i, id, response.getResponse());
        break;
      case ERROR:
        item = StreamItem.failed(i, id, EmbedRankException.fromStreamError(response.getError()));
        break;
      default:
        item = StreamItem.failed(i, id, EmbeddingDecoder.malformed(
            "stream response '" + id + "' has neither response nor error"));
        break;
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

  private static EmbedRankException protocolError(String message) {
    return new EmbedRankException(Status.Code.INTERNAL, "EncodeStream: " + message);
  }
}

// ---------------------------------------------------------------------------------------------
// Rerank

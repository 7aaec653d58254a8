package dev.embedrank.client;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.Status;
import java.util.concurrent.Executor;
import java.util.function.Supplier;

/** Adds {@code authorization: Bearer <token>} to every call. */
final class BearerTokenCredentials extends CallCredentials {
  private final Supplier<String> token;

  BearerTokenCredentials(Supplier<String> token) {
    this.token = token;
  }

  @Override
  public void applyRequestMetadata(
      RequestInfo requestInfo, Executor appExecutor, MetadataApplier applier) {
    String t;
    try {
      t = token.get();
    } catch (RuntimeException e) {
      applier.fail(
          Status.UNAUTHENTICATED.withDescription("could not get the bearer token").withCause(e));
      return;
    }
    Metadata headers = new Metadata();
    headers.put(EmbedRankClient.AUTHORIZATION, "Bearer " + t);
    applier.apply(headers);
  }
}

package dev.embedrank.client;

import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptors;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.TlsChannelCredentials;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The connection of an {@link EmbedRankClient}, from its {@link EmbedRankClient.Builder}'s
 * settings: the channel credentials (plaintext, TLS, a CA file, mutual TLS), the service config
 * (retry of UNAVAILABLE, round_robin with health checking), the message size limit, the channel's
 * per-call defaults (deadline, bearer token) and its shutdown.
 */
final class ChannelSetup {
  private ChannelSetup() {}

  /** See {@link EmbedRankClient#retryServiceConfig(int)}. */
  static Map<String, Object> retryServiceConfig(int maxAttempts) {
    if (maxAttempts < 2) {
      throw new IllegalArgumentException("maxAttempts must be >= 2, got " + maxAttempts);
    }
    Map<String, Object> methodConfig = SharedServiceConfig.methodConfig();
    @SuppressWarnings("unchecked")
    Map<String, Object> retryPolicy = (Map<String, Object>) methodConfig.get("retryPolicy");
    retryPolicy.put("maxAttempts", (double) maxAttempts);
    return Map.of("methodConfig", List.of(methodConfig));
  }

  /**
   * The channel: from {@code custom} when given (then {@code target} and {@code credentials} are
   * not used), else to {@code target} with {@code credentials} and health-checked round_robin.
   */
  static ManagedChannel build(
      ManagedChannelBuilder<?> custom,
      String target,
      Supplier<ChannelCredentials> credentials,
      boolean retry,
      int maxAttempts,
      int maxInboundMessageSize) {
    ManagedChannelBuilder<?> b = custom;
    Map<String, Object> serviceConfig = retry ? retryServiceConfig(maxAttempts) : Map.of();
    if (b == null) {
      if (target == null) {
        throw new IllegalStateException("target is not set");
      }
      b = Grpc.newChannelBuilder(target, credentials.get());
      // Every address the target resolves to (replicas) takes calls in turn, unless NOT_SERVING.
      serviceConfig = HealthChecking.serviceConfig(serviceConfig);
    }
    b.maxInboundMessageSize(maxInboundMessageSize);
    if (!serviceConfig.isEmpty()) {
      b.defaultServiceConfig(serviceConfig);
    }
    if (retry) {
      b.enableRetry();
    } else {
      b.disableRetry();
    }
    return b.build();
  }

  /**
   * Plaintext, TLS with the JVM's CAs, or TLS trusting {@code trustedCertificates} and/or
   * presenting {@code clientCertificate} with {@code clientKey} (either may be null).
   */
  static ChannelCredentials credentials(
      boolean tls, Path trustedCertificates, Path clientCertificate, Path clientKey) {
    if (!tls) {
      return InsecureChannelCredentials.create();
    }
    if (trustedCertificates == null && clientCertificate == null) {
      return TlsChannelCredentials.create();
    }
    TlsChannelCredentials.Builder tlsBuilder = TlsChannelCredentials.newBuilder();
    if (trustedCertificates != null) {
      try {
        tlsBuilder.trustManager(trustedCertificates.toFile());
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read " + trustedCertificates, e);
      }
    }
    if (clientCertificate != null) {
      try {
        tlsBuilder.keyManager(clientCertificate.toFile(), clientKey.toFile());
      } catch (IOException e) {
        throw new UncheckedIOException(
            "cannot read the client certificate " + clientCertificate + " / key " + clientKey, e);
      }
    }
    return tlsBuilder.build();
  }

  /** {@code channel} giving every call {@code deadline} (null: none) and the token (null: none). */
  static Channel withDefaults(ManagedChannel channel, Duration deadline, Supplier<String> token) {
    return ClientInterceptors.intercept(
        channel,
        new DefaultsInterceptor(deadline, token == null ? null : new BearerTokenCredentials(token)));
  }

  /** Shuts {@code channel} down, waiting up to 5 seconds for calls in progress. */
  static void close(ManagedChannel channel) {
    channel.shutdown();
    try {
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
        channel.awaitTermination(1, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }
}

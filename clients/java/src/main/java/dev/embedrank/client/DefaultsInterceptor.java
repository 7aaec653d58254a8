package dev.embedrank.client;

import io.grpc.CallCredentials;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.MethodDescriptor;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/** Gives every call the default deadline and the credentials, unless it has its own. */
final class DefaultsInterceptor implements ClientInterceptor {
  private final Duration deadline;
  private final CallCredentials credentials;

  DefaultsInterceptor(Duration deadline, CallCredentials credentials) {
    this.deadline = deadline;
    this.credentials = credentials;
  }

  @Override
  public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
      MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
    if (deadline != null && options.getDeadline() == null) {
      options = options.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS);
    }
    if (credentials != null && options.getCredentials() == null) {
      options = options.withCallCredentials(credentials);
    }
    return next.newCall(method, options);
  }
}

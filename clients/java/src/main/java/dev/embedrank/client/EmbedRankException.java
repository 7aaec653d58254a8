package dev.embedrank.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import dev.embedrank.v1.StreamError;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * An error from the embedrank server (or from talking to it): the gRPC status code and the
 * server's message.
 *
 * <p>Thrown by every method of {@link EmbedRankClient} in place of {@link StatusRuntimeException};
 * the original exception, if any, is the {@linkplain #getCause() cause}. {@link #field()} names the
 * request field at fault when the server said so: from the {@code google.rpc.BadRequest} detail of
 * an INVALID_ARGUMENT status, or from the {@code StreamError} of a stream item.
 */
public class EmbedRankException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final Status.Code code;
  private final String serverMessage;
  private final String field;

  public EmbedRankException(Status.Code code, String serverMessage) {
    this(code, serverMessage, "", null);
  }

  public EmbedRankException(Status.Code code, String serverMessage, String field, Throwable cause) {
    super(format(code, serverMessage, field), cause);
    this.code = Objects.requireNonNull(code, "code");
    this.serverMessage = serverMessage == null ? "" : serverMessage;
    this.field = field == null ? "" : field;
  }

  /** The gRPC status code, e.g. {@code INVALID_ARGUMENT} or {@code NOT_FOUND}. */
  public Status.Code code() {
    return code;
  }

  /** The message as the server sent it (the status description); empty when none. */
  public String serverMessage() {
    return serverMessage;
  }

  /** The request field at fault, e.g. {@code "texts[3]"}, when the server named one; else empty. */
  public String field() {
    return field;
  }

  /** Wraps any throwable from a gRPC call, unwrapping future and completion wrappers. */
  public static EmbedRankException from(Throwable t) {
    Throwable cur = t;
    while ((cur instanceof ExecutionException || cur instanceof CompletionException)
        && cur.getCause() != null) {
      cur = cur.getCause();
    }
    if (cur instanceof EmbedRankException) {
      return (EmbedRankException) cur;
    }
    if (cur instanceof CancellationException) {
      return new EmbedRankException(Status.Code.CANCELLED, "call cancelled", "", cur);
    }
    Status status;
    if (cur instanceof StatusRuntimeException) {
      status = ((StatusRuntimeException) cur).getStatus();
    } else if (cur instanceof StatusException) {
      status = ((StatusException) cur).getStatus();
    } else {
      status = Status.fromThrowable(cur);
    }
    String message = status.getDescription();
    if (message == null && status.getCause() != null && status.getCause() != cur) {
      message = String.valueOf(status.getCause());
    }
    return new EmbedRankException(status.getCode(), message, badRequestField(cur), cur);
  }

  /** The first field violation of a google.rpc.BadRequest in the status details, or "". */
  private static String badRequestField(Throwable t) {
    com.google.rpc.Status details;
    try {
      details = StatusProto.fromThrowable(t);
    } catch (RuntimeException e) {
      return "";
    }
    if (details == null) {
      return "";
    }
    for (Any any : details.getDetailsList()) {
      if (any.is(BadRequest.class)) {
        try {
          BadRequest bad = any.unpack(BadRequest.class);
          if (bad.getFieldViolationsCount() > 0) {
            return bad.getFieldViolations(0).getField();
          }
        } catch (InvalidProtocolBufferException e) {
          return "";
        }
      }
    }
    return "";
  }

  /** The error of one item of a stream. */
  public static EmbedRankException fromStreamError(StreamError error) {
    Status.Code code = Status.fromCodeValue(error.getCode()).getCode();
    return new EmbedRankException(code, error.getMessage(), error.getField(), null);
  }

  private static String format(Status.Code code, String message, String field) {
    StringBuilder sb = new StringBuilder(String.valueOf(code));
    if (message != null && !message.isEmpty()) {
      sb.append(": ").append(message);
    }
    if (field != null && !field.isEmpty()) {
      sb.append(" (field ").append(field).append(')');
    }
    return sb.toString();
  }
}

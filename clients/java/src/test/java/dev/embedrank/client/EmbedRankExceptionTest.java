package dev.embedrank.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.embedrank.v1.StreamError;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;

class EmbedRankExceptionTest {

  @Test
  void wrapsStatusRuntimeException() {
    StatusRuntimeException sre =
        Status.INVALID_ARGUMENT.withDescription("texts must not be empty").asRuntimeException();
    EmbedRankException e = EmbedRankException.from(sre);
    assertEquals(Status.Code.INVALID_ARGUMENT, e.code());
    assertEquals("texts must not be empty", e.serverMessage());
    assertEquals("INVALID_ARGUMENT: texts must not be empty", e.getMessage());
    assertSame(sre, e.getCause());
  }

  @Test
  void unwrapsFutureWrappers() {
    StatusRuntimeException sre = Status.NOT_FOUND.withDescription("no model x").asRuntimeException();
    EmbedRankException e =
        EmbedRankException.from(new CompletionException(new ExecutionException(sre)));
    assertEquals(Status.Code.NOT_FOUND, e.code());
    EmbedRankException same = EmbedRankException.from(new CompletionException(e));
    assertSame(e, same);
  }

  @Test
  void streamErrorCarriesCodeMessageAndField() {
    EmbedRankException e =
        EmbedRankException.fromStreamError(
            StreamError.newBuilder().setCode(3).setMessage("empty text").setField("texts[3]").build());
    assertEquals(Status.Code.INVALID_ARGUMENT, e.code());
    assertEquals("empty text", e.serverMessage());
    assertEquals("texts[3]", e.field());
    assertTrue(e.getMessage().contains("texts[3]"));
    assertEquals(Status.Code.NOT_FOUND, EmbedRankException.fromStreamError(
        StreamError.newBuilder().setCode(5).build()).code());
    assertEquals(Status.Code.UNKNOWN, EmbedRankException.fromStreamError(
        StreamError.newBuilder().setCode(99).build()).code());
  }

  @Test
  void otherThrowablesAreUnknown() {
    EmbedRankException e = EmbedRankException.from(new IllegalStateException("boom"));
    assertEquals(Status.Code.UNKNOWN, e.code());
  }
}

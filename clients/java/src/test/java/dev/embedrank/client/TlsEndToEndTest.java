package dev.embedrank.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.grpc.Status;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Against a mutual-TLS server that tests/test_tls.py starts with certificates it made; skipped
 * without EMBEDRANK_TLS_TARGET.
 */
class TlsEndToEndTest {
  private static final String TARGET = System.getenv("EMBEDRANK_TLS_TARGET");
  private static final String MODEL = System.getenv("EMBEDRANK_TLS_MODEL");

  private static Path env(String name) {
    return Path.of(System.getenv(name));
  }

  private static EmbedRankClient.Builder builder() {
    assumeTrue(TARGET != null && !TARGET.isBlank(), "EMBEDRANK_TLS_TARGET not set (tests/test_tls.py sets it)");
    return EmbedRankClient.builder(TARGET)
        .defaultDeadline(Duration.ofSeconds(30))
        .retry(false)
        .trustedCertificates(env("EMBEDRANK_TLS_CA"));
  }

  private static void assertRefused(EmbedRankClient.Builder b) {
    try (EmbedRankClient client = b.build()) {
      EmbedRankException e =
          assertThrows(EmbedRankException.class, () -> client.encode(MODEL, List.of("refused")));
      assertEquals(Status.Code.UNAVAILABLE, e.code(), e.getMessage());
    }
  }

  @Test
  void clientCertificateAccepted() {
    EmbedRankClient.Builder b =
        builder().clientCertificate(env("EMBEDRANK_TLS_CERT"), env("EMBEDRANK_TLS_KEY"));
    try (EmbedRankClient client = b.build()) {
      float[][] vectors = client.encode(MODEL, List.of("over mutual TLS"));
      assertEquals(1, vectors.length);
      assertTrue(vectors[0].length > 0);
    }
  }

  @Test
  void noClientCertificateRefused() {
    assertRefused(builder());
  }

  @Test
  void certificateOfAnotherCaRefused() {
    assertRefused(
        builder()
            .clientCertificate(env("EMBEDRANK_TLS_OTHER_CERT"), env("EMBEDRANK_TLS_OTHER_KEY")));
  }

  @Test
  void plaintextRefused() {
    assertRefused(builder().usePlaintext());
  }
}

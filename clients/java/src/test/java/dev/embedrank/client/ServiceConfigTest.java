package dev.embedrank.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

class ServiceConfigTest {

  @Test
  @SuppressWarnings("unchecked")
  void retriesUnavailableOnAllThreeServices() {
    Map<String, Object> config = EmbedRankClient.retryServiceConfig(4);
    List<Map<String, Object>> methodConfigs = (List<Map<String, Object>>) config.get("methodConfig");
    assertEquals(1, methodConfigs.size());
    Map<String, Object> mc = methodConfigs.get(0);

    List<Map<String, Object>> names = (List<Map<String, Object>>) mc.get("name");
    Set<Object> services = names.stream().map(n -> n.get("service")).collect(Collectors.toSet());
    assertEquals(
        Set.of(
            "embedrank.v1.Embed",
            "embedrank.v1.Rerank",
            "embedrank.v1.Models",
            "embedrank.v1.Tokenize",
            "embedrank.v1.Classify",
            "embedrank.v1.SparseEmbed",
            "embedrank.v1.MultiVectorEmbed"),
        services);
    for (Map<String, Object> n : names) {
      assertEquals(Set.of("service"), n.keySet(), "whole services, no method names");
    }

    Map<String, Object> retry = (Map<String, Object>) mc.get("retryPolicy");
    // grpc-java's service config parser wants JSON numbers as Double.
    assertEquals(4.0, retry.get("maxAttempts"));
    assertEquals(Double.class, retry.get("backoffMultiplier").getClass());
    assertEquals("0.1s", retry.get("initialBackoff"));
    assertEquals("2s", retry.get("maxBackoff"));
    assertEquals(List.of("UNAVAILABLE"), retry.get("retryableStatusCodes"));
  }

  @Test
  void serviceNamesMatchTheGeneratedStubs() {
    assertEquals(
        List.of(
            "embedrank.v1.Embed",
            "embedrank.v1.Rerank",
            "embedrank.v1.Models",
            "embedrank.v1.Tokenize",
            "embedrank.v1.Classify",
            "embedrank.v1.SparseEmbed",
            "embedrank.v1.MultiVectorEmbed"),
        EmbedRankClient.SERVICES);
  }

  @Test
  void healthCheckingAddsRoundRobinAndKeepsTheRetries() {
    Map<String, Object> config = HealthChecking.serviceConfig(EmbedRankClient.retryServiceConfig(4));
    assertEquals(List.of(Map.of("round_robin", Map.of())), config.get("loadBalancingConfig"));
    assertEquals(Map.of("serviceName", ""), config.get("healthCheckConfig"));
    assertEquals(EmbedRankClient.retryServiceConfig(4).get("methodConfig"), config.get("methodConfig"));
  }

  @Test
  void needsAtLeastTwoAttempts() {
    assertThrows(IllegalArgumentException.class, () -> EmbedRankClient.retryServiceConfig(1));
    assertThrows(IllegalArgumentException.class, () -> EmbedRankClient.builder().maxAttempts(6));
  }
}

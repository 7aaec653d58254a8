package dev.embedrank.client;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Client-side health checking, as the Python and Go clients do it: the channel watches every
 * replica's {@code grpc.health.v1} status (service {@code ""}, the server as a whole) and sends no
 * new call to one that is NOT_SERVING (an embedrank server loading its models, or draining after
 * SIGTERM), before its connections close. gRPC does this with round_robin only; the
 * health-checking round_robin comes from {@code io.grpc:grpc-services} on the classpath. A server
 * without the health service (UNIMPLEMENTED) is taken as serving. Both entries come from the
 * shared {@code clients/service-config.json} ({@link SharedServiceConfig}).
 */
final class HealthChecking {
  private HealthChecking() {}

  /**
   * {@code config} (a service config, e.g. {@link EmbedRankClient#retryServiceConfig(int)}) with
   * round_robin and health checking added.
   */
  static Map<String, Object> serviceConfig(Map<String, Object> config) {
    Map<String, Object> withHealth = new LinkedHashMap<>(config);
    withHealth.put("loadBalancingConfig", SharedServiceConfig.get("loadBalancingConfig"));
    withHealth.put("healthCheckConfig", SharedServiceConfig.get("healthCheckConfig"));
    return withHealth;
  }
}

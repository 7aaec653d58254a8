package dev.embedrank.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.embedrank.v1.ListModelsRequest;
import dev.embedrank.v1.ListModelsResponse;
import dev.embedrank.v1.ModelInfo;
import dev.embedrank.v1.ModelsGrpc;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Loopback servers, one client over their addresses: round-robin, retry past a dead one, and no
 * calls to one whose health is NOT_SERVING.
 */
class ReplicasTest {
  private final List<Server> servers = new ArrayList<>();
  private final List<AtomicInteger> calls = new ArrayList<>();
  private final List<HealthStatusManager> healths = new ArrayList<>();

  private String start() throws IOException {
    AtomicInteger count = new AtomicInteger();
    HealthStatusManager health = new HealthStatusManager(); // "" SERVING until told otherwise
    Server s =
        Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
            .addService(health.getHealthService())
            .addService(
                new ModelsGrpc.ModelsImplBase() {
                  @Override
                  public void listModels(
                      ListModelsRequest request, StreamObserver<ListModelsResponse> out) {
                    count.incrementAndGet();
                    out.onNext(
                        ListModelsResponse.newBuilder()
                            .addModels(ModelInfo.newBuilder().setName("m"))
                            .build());
                    out.onCompleted();
                  }
                })
            .build()
            .start();
    servers.add(s);
    calls.add(count);
    healths.add(health);
    return "127.0.0.1:" + s.getPort();
  }

  private static EmbedRankClient client(List<String> addresses) {
    return EmbedRankClient.builder()
        .addresses(addresses)
        .usePlaintext()
        .defaultDeadline(Duration.ofSeconds(10))
        .build();
  }

  @AfterEach
  void stop() throws InterruptedException {
    for (Server s : servers) {
      s.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void balancesOverEveryAddressAndRetriesPastADeadOne() throws Exception {
    List<String> addresses = List.of(start(), start(), start());
    try (EmbedRankClient client = client(addresses)) {
      for (int i = 0; i < 30; i++) { // every subchannel connects
        client.listModels();
      }
      int[] before = calls.stream().mapToInt(AtomicInteger::get).toArray();
      int n = 90;
      for (int i = 0; i < n; i++) {
        assertEquals("m", client.listModels().get(0).getName());
      }
      for (int r = 0; r < 3; r++) {
        int got = calls.get(r).get() - before[r];
        assertTrue(got >= n / 5, "replica " + r + " took " + got + " of " + n);
      }
      servers.get(0).shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      for (int i = 0; i < 60; i++) {
        assertEquals(1, client.listModels().size(), "call " + i + " after a replica stopped");
      }
    }
  }

  /** As an embedrank server does while loading and from SIGTERM on, with its connections open. */
  @Test
  void noCallsToAReplicaWhileItIsNotServing() throws Exception {
    List<String> addresses = List.of(start(), start());
    try (EmbedRankClient client = client(addresses)) {
      for (int i = 0; i < 20; i++) {
        client.listModels();
      }
      assertTrue(calls.get(0).get() > 0 && calls.get(1).get() > 0, "both replicas take calls");

      healths.get(0).setStatus("", ServingStatus.NOT_SERVING);
      Thread.sleep(500); // the Watch stream carries the change
      int[] before = calls.stream().mapToInt(AtomicInteger::get).toArray();
      for (int i = 0; i < 60; i++) {
        assertEquals("m", client.listModels().get(0).getName());
      }
      assertEquals(0, calls.get(0).get() - before[0], "calls to the NOT_SERVING replica");
      assertEquals(60, calls.get(1).get() - before[1]);

      healths.get(0).setStatus("", ServingStatus.SERVING); // back: it takes calls again
      Thread.sleep(500);
      int back = calls.get(0).get();
      for (int i = 0; i < 20; i++) {
        client.listModels();
      }
      assertTrue(calls.get(0).get() > back, "the replica serving again took no call");
    }
  }

  @Test
  void badAddressesRefusedByTheBuilder() {
    assertThrows(IllegalArgumentException.class, () -> EmbedRankClient.builder().addresses(List.of()));
    assertThrows(
        IllegalArgumentException.class,
        () -> EmbedRankClient.builder().addresses(List.of("127.0.0.1:1", "no-port")));
  }
}

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
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Three loopback servers, one client over their addresses: round-robin, and retry past a dead one. */
class ReplicasTest {
  private final List<Server> servers = new ArrayList<>();
  private final List<AtomicInteger> calls = new ArrayList<>();

  private String start() throws IOException {
    AtomicInteger count = new AtomicInteger();
    Server s =
        Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
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
    return "127.0.0.1:" + s.getPort();
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
    try (EmbedRankClient client =
        EmbedRankClient.builder()
            .addresses(addresses)
            .usePlaintext()
            .defaultDeadline(Duration.ofSeconds(10))
            .build()) {
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

  @Test
  void badAddressesRefusedByTheBuilder() {
    assertThrows(IllegalArgumentException.class, () -> EmbedRankClient.builder().addresses(List.of()));
    assertThrows(
        IllegalArgumentException.class,
        () -> EmbedRankClient.builder().addresses(List.of("127.0.0.1:1", "no-port")));
  }
}

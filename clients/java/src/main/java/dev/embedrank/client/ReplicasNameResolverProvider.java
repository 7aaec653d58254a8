package dev.embedrank.client;

import io.grpc.Attributes;
import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.NameResolverProvider;
import io.grpc.NameResolverRegistry;
import io.grpc.StatusOr;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * Resolves {@code embedrank-replicas:///host1:port1,host2:port2} to those addresses, so one channel
 * balances over a fixed list of replicas ({@link EmbedRankClient.Builder#addresses(List)}). Host
 * names are resolved once, when the channel starts; for replicas behind one DNS name (a Kubernetes
 * headless Service) use the target {@code dns:///name:port} instead.
 */
final class ReplicasNameResolverProvider extends NameResolverProvider {
  static final String SCHEME = "embedrank-replicas";
  private static volatile boolean registered;

  static synchronized void register() {
    if (!registered) {
      NameResolverRegistry.getDefaultRegistry().register(new ReplicasNameResolverProvider());
      registered = true;
    }
  }

  /** The target for these "host:port" addresses. */
  static String target(List<String> addresses) {
    if (addresses.isEmpty()) {
      throw new IllegalArgumentException("no addresses");
    }
    for (String a : addresses) {
      parse(a); // fail in the builder, not later on the channel
    }
    return SCHEME + ":///" + String.join(",", addresses);
  }

  static InetSocketAddress parse(String address) {
    int colon = address.lastIndexOf(':');
    if (colon <= 0 || colon == address.length() - 1) {
      throw new IllegalArgumentException(
          "address '" + address + "': give host:port ([v6]:port for IPv6)");
    }
    String host = address.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    int port;
    try {
      port = Integer.parseInt(address.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("address '" + address + "': the port is not a number");
    }
    return InetSocketAddress.createUnresolved(host, port);
  }

  @Override
  protected boolean isAvailable() {
    return true;
  }

  @Override
  protected int priority() {
    return 5;
  }

  @Override
  public String getDefaultScheme() {
    return SCHEME;
  }

  @Override
  public Collection<Class<? extends SocketAddress>> getProducedSocketAddressTypes() {
    return List.of(InetSocketAddress.class);
  }

  @Override
  public NameResolver newNameResolver(URI uri, NameResolver.Args args) {
    if (!SCHEME.equals(uri.getScheme())) {
      return null;
    }
    String path = uri.getPath().startsWith("/") ? uri.getPath().substring(1) : uri.getPath();
    List<String> addresses = List.of(path.split(","));
    String authority = parse(addresses.get(0)).getHostString();
    return new NameResolver() {
      @Override
      public String getServiceAuthority() {
        return authority; // the name a TLS certificate is checked against
      }

      @Override
      public void start(Listener2 listener) {
        List<EquivalentAddressGroup> groups = new ArrayList<>();
        for (String a : addresses) {
          InetSocketAddress u = parse(a);
          groups.add(new EquivalentAddressGroup(new InetSocketAddress(u.getHostString(), u.getPort())));
        }
        listener.onResult2(
            ResolutionResult.newBuilder()
                .setAddressesOrError(StatusOr.fromValue(groups))
                .setAttributes(Attributes.EMPTY)
                .build());
      }

      @Override
      public void shutdown() {}
    };
  }
}

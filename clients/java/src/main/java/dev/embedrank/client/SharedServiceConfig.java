package dev.embedrank.client;

import com.google.gson.Gson;
import com.google.gson.reflect.TypeToken;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * The gRPC service config the Python, Go and Java clients share: {@code clients/service-config.json}
 * (round_robin, client-side health checking, and the retry policy for UNAVAILABLE on every method
 * of Embed, Rerank and Models), packed into this jar at build time (pom.xml). Gson reads JSON
 * numbers as Double, the form {@code ManagedChannelBuilder#defaultServiceConfig} takes.
 */
final class SharedServiceConfig {
  private static final String RESOURCE = "service-config.json";
  private static final Map<String, Object> CONFIG = read();

  private SharedServiceConfig() {}

  private static Map<String, Object> read() {
    try (InputStream in = SharedServiceConfig.class.getResourceAsStream(RESOURCE)) {
      if (in == null) {
        throw new IllegalStateException(RESOURCE + " is missing from the jar (clients/java/pom.xml packs it)");
      }
      String json = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      return new Gson().fromJson(json, new TypeToken<Map<String, Object>>() {}.getType());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A top-level entry of the shared config (a fresh copy the caller may change). */
  static Object get(String key) {
    Gson gson = new Gson();
    return gson.fromJson(gson.toJson(CONFIG.get(key)), Object.class);
  }

  /** The one method config (services and retry policy). */
  @SuppressWarnings("unchecked")
  static Map<String, Object> methodConfig() {
    return (Map<String, Object>) ((List<Object>) get("methodConfig")).get(0);
  }
}

package dev.embedrank.example;

import dev.embedrank.client.EmbedRankClient;
import dev.embedrank.client.EmbedRankException;
import dev.embedrank.client.RerankResult;
import java.util.List;
import java.util.Locale;

/**
 * Encodes a few sentences, prints their cosine similarities and, given a rerank model, reranks
 * them against a query.
 *
 * <pre>
 * mvn -B -q compile dependency:build-classpath -Dmdep.outputFile=target/classpath.txt -Dmdep.includeScope=runtime
 * java -cp "target/classes:$(cat target/classpath.txt)" dev.embedrank.example.Example localhost:50051 minilm [rerank-model]
 * </pre>
 *
 * <p>(Through {@code mvn exec:java} it runs too, with Maven's stray ANSI resets around its output.)
 *
 * <p>Environment: EMBEDRANK_TOKEN (a bearer token), EMBEDRANK_TLS=1 (use TLS instead of
 * plaintext).
 */
public final class Example {
  private static final List<String> SENTENCES =
      List.of(
          "A man is eating food.",
          "A man is eating a piece of bread.",
          "The girl is carrying a baby.",
          "A monkey is playing drums.");

  private Example() {}

  public static void main(String[] args) {
    if (args.length < 2 || args.length > 3) {
      System.err.println("usage: Example <target host:port> <embedding model> [rerank model]");
      System.exit(2);
    }
    String target = args[0];
    String model = args[1];
    String rerankModel = args.length == 3 ? args[2] : null;

    EmbedRankClient.Builder builder = EmbedRankClient.builder(target);
    if (!"1".equals(System.getenv("EMBEDRANK_TLS"))) {
      builder.usePlaintext();
    }
    String token = System.getenv("EMBEDRANK_TOKEN");
    if (token != null && !token.isEmpty()) {
      builder.bearerToken(token);
    }

    try (EmbedRankClient client = builder.build()) {
      float[][] vectors = client.encode(model, SENTENCES);
      System.out.printf(
          Locale.ROOT, "%s: %d embeddings of %d dimensions%n",
          model, vectors.length, vectors[0].length);
      System.out.println("cosine similarities:");
      for (int i = 0; i < SENTENCES.size(); i++) {
        for (int j = i + 1; j < SENTENCES.size(); j++) {
          System.out.printf(
              Locale.ROOT, "  %.4f  %-36s %s%n",
              cosine(vectors[i], vectors[j]), SENTENCES.get(i), SENTENCES.get(j));
        }
      }

      if (rerankModel != null) {
        String query = "Someone is having a meal.";
        List<RerankResult> results = client.rerank(rerankModel, query, SENTENCES);
        System.out.printf(Locale.ROOT, "%nrerank (%s) for \"%s\":%n", rerankModel, query);
        for (RerankResult r : results) {
          System.out.printf(
              Locale.ROOT, "  %.4f  [%d] %s%n", r.score(), r.index(), SENTENCES.get(r.index()));
        }
      }
    } catch (EmbedRankException e) {
      System.err.println("embedrank call failed: " + e.code() + ": " + e.serverMessage());
      System.exit(1);
    }
  }

  /** Cosine similarity of two vectors of the same length; 0 if either is all zeros. */
  public static double cosine(float[] a, float[] b) {
    if (a.length != b.length) {
      throw new IllegalArgumentException("lengths differ: " + a.length + " vs " + b.length);
    }
    double dot = 0;
    double na = 0;
    double nb = 0;
    for (int i = 0; i < a.length; i++) {
      dot += (double) a[i] * b[i];
      na += (double) a[i] * a[i];
      nb += (double) b[i] * b[i];
    }
    if (na == 0 || nb == 0) {
      return 0;
    }
    return dot / (Math.sqrt(na) * Math.sqrt(nb));
  }
}

package dev.embedrank.client;

import dev.embedrank.v1.ClassifyGrpc;
import dev.embedrank.v1.ClassifyRequest;
import dev.embedrank.v1.EmbedGrpc;
import dev.embedrank.v1.EncodeMultiVectorRequest;
import dev.embedrank.v1.EncodeMultiVectorResponse;
import dev.embedrank.v1.EncodeRequest;
import dev.embedrank.v1.EncodeResponse;
import dev.embedrank.v1.EncodeSparseRequest;
import dev.embedrank.v1.EncodeSparseResponse;
import dev.embedrank.v1.GetModelRequest;
import dev.embedrank.v1.InputType;
import dev.embedrank.v1.ListModelsRequest;
import dev.embedrank.v1.ModelInfo;
import dev.embedrank.v1.ModelsGrpc;
import dev.embedrank.v1.MultiVectorEmbedGrpc;
import dev.embedrank.v1.Precision;
import dev.embedrank.v1.RerankGrpc;
import dev.embedrank.v1.RerankRequest;
import dev.embedrank.v1.RerankResponse;
import dev.embedrank.v1.ScoreMode;
import dev.embedrank.v1.SparseEmbedGrpc;
import dev.embedrank.v1.TokenizeGrpc;
import dev.embedrank.v1.TokenizeRequest;
import io.grpc.Channel;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

/**
 * Client of an embedrank server (services {@code embedrank.v1.Embed}, {@code Rerank},
 * {@code Models}).
 *
 * <pre>{@code
 * try (EmbedRankClient client = EmbedRankClient.builder("localhost:50051").usePlaintext().build()) {
 *   float[][] vectors = client.encode("minilm", List.of("first text", "second text"));
 * }
 * }</pre>
 *
 * <p>Thread-safe; share one instance. Every call gets the default deadline (unless the call has
 * its own) and the bearer token, if any; UNAVAILABLE is retried per the channel's service config
 * ({@link #retryServiceConfig(int)}). Failures are thrown as {@link EmbedRankException}.
 */
public final class EmbedRankClient implements AutoCloseable {
  /** Deadline of each call unless configured otherwise. */
  public static final Duration DEFAULT_DEADLINE = Duration.ofSeconds(30);
  /** Attempts of a call failing with UNAVAILABLE (the first one included). */
  public static final int DEFAULT_MAX_ATTEMPTS = 4;
  /** Requests sent on a stream but not yet answered, at most. */
  public static final int DEFAULT_STREAM_MAX_IN_FLIGHT = 16;
  /** Largest response accepted (grpc-java's own default is 4 MiB). */
  public static final int DEFAULT_MAX_INBOUND_MESSAGE_SIZE = 64 * 1024 * 1024;
  /** The services of the contract, as named in the service config. */
  public static final List<String> SERVICES =
      List.of(
          EmbedGrpc.SERVICE_NAME,
          RerankGrpc.SERVICE_NAME,
          ModelsGrpc.SERVICE_NAME,
          TokenizeGrpc.SERVICE_NAME,
          ClassifyGrpc.SERVICE_NAME,
          SparseEmbedGrpc.SERVICE_NAME,
          MultiVectorEmbedGrpc.SERVICE_NAME);

  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  // A facade: each method below delegates to one package-private class of a concept. The
  // connection (credentials, service config, per-call defaults) is ChannelSetup's; Encode and
  // EncodeStream are EmbedCalls'; Rerank RerankCalls'; Tokenize, Classify, SparseEmbed and
  // MultiVectorEmbed KindCalls' (unary) and KindStreams' (streams); errors are mapped by Unary.
  private final ManagedChannel managedChannel;
  private final Channel channel;
  private final EmbedCalls embed;
  private final RerankCalls rerank;
  private final KindCalls kinds;
  private final KindStreams streams;
  private final ModelsGrpc.ModelsBlockingStub models;

  private EmbedRankClient(ManagedChannel managedChannel, Builder b) {
    this.managedChannel = managedChannel;
    this.channel = ChannelSetup.withDefaults(managedChannel, b.defaultDeadline, b.token);
    this.embed = new EmbedCalls(channel, b.streamMaxInFlight);
    this.rerank = new RerankCalls(channel);
    this.kinds = new KindCalls(channel);
    this.streams = new KindStreams(channel, b.streamMaxInFlight);
    this.models = ModelsGrpc.newBlockingStub(channel);
  }

  public static Builder builder() {
    return new Builder();
  }

  /** A builder for {@code target}, e.g. {@code "localhost:50051"} or {@code "dns:///host:443"}. */
  public static Builder builder(String target) {
    return new Builder().target(target);
  }

  /**
   * The channel with this client's defaults (deadline, bearer token) applied to every call: use
   * it with the generated stubs, e.g. {@code ModelsGrpc.newBlockingStub(client.channel())}.
   */
  public Channel channel() {
    return channel;
  }

  // ---------------------------------------------------------------------------------------------
  // Embed

  /** Embeddings of {@code texts}, one float[] a text, with the server's default options. */
  public float[][] encode(String model, List<String> texts) {
    return encode(model, texts, EncodeOptions.defaults());
  }

  /** Embeddings of {@code texts}, one float[] a text. */
  public float[][] encode(String model, List<String> texts, EncodeOptions options) {
    return embed.encode(model, texts, options);
  }

  /**
   * Embeddings of {@code texts} with long texts split into token windows (LONG_INPUT_CHUNK, set
   * here whatever {@code options} say), and every window's vector and span: one vector per text
   * is the token-weighted mean of its windows'.
   */
  public ChunkedEmbeddings encodeChunks(String model, List<String> texts, EncodeOptions options) {
    return embed.encodeChunks(model, texts, options);
  }

  /** Embeddings of {@code texts} in a compact precision (int8, uint8, binary, ubinary). */
  public QuantizedEmbeddings encodeQuantized(String model, List<String> texts, Precision precision) {
    return encodeQuantized(model, texts, precision, EncodeOptions.defaults());
  }

  /** Embeddings of {@code texts} in a compact precision (int8, uint8, binary, ubinary). */
  public QuantizedEmbeddings encodeQuantized(
      String model, List<String> texts, Precision precision, EncodeOptions options) {
    return embed.encodeQuantized(model, texts, precision, options);
  }

  /** The Encode RPC as such, for access to token counts, truncation flags and metadata. */
  public EncodeResponse encodeRaw(EncodeRequest request) {
    return embed.encodeRaw(request);
  }

  /** {@link #encode(String, List)} without blocking; fails with {@link EmbedRankException}. */
  public CompletableFuture<float[][]> encodeAsync(String model, List<String> texts) {
    return encodeAsync(model, texts, EncodeOptions.defaults());
  }

  /** {@link #encode(String, List, EncodeOptions)} without blocking. */
  public CompletableFuture<float[][]> encodeAsync(
      String model, List<String> texts, EncodeOptions options) {
    return embed.encodeAsync(model, texts, options);
  }

  /**
   * Encodes each batch of {@code batches} as one request over a single EncodeStream, at most
   * {@link Builder#streamMaxInFlight(int)} requests unanswered at a time; the results come in
   * the order of {@code batches}. A batch the server refused on its own is an item whose
   * {@link StreamItem#value()} throws its {@link EmbedRankException}; the others are unaffected.
   *
   * @throws EmbedRankException when the stream as a whole fails (e.g. UNAVAILABLE,
   *     DEADLINE_EXCEEDED — the default deadline covers the whole stream)
   */
  public List<StreamItem<float[][]>> encodeStream(String model, List<List<String>> batches) {
    return encodeStream(model, batches, EncodeOptions.defaults());
  }

  /** {@link #encodeStream(String, List)} with options for every batch. */
  public List<StreamItem<float[][]>> encodeStream(
      String model, List<List<String>> batches, EncodeOptions options) {
    return embed.encodeStream(model, batches, options);
  }

  /** Sends {@code requests} over one EncodeStream; see {@link #encodeStream(String, List)}. */
  public List<StreamItem<EncodeResponse>> encodeStreamRaw(List<EncodeRequest> requests) {
    return embed.encodeStreamRaw(requests);
  }

  /**
   * Sends {@code requests} over one EncodeStream with ids "0", "1", ..., keeping at most {@code
   * maxInFlight} unanswered, and returns the responses in request order after checking each
   * echoed id.
   *
   * @param deadline deadline of the whole stream; null = the client's default deadline
   * @throws EmbedRankException when the stream fails as a whole, or the server answers out of
   *     order (INTERNAL)
   */
  public List<StreamItem<EncodeResponse>> encodeStreamRaw(
      List<EncodeRequest> requests, int maxInFlight, Duration deadline) {
    return embed.encodeStreamRaw(requests, maxInFlight, deadline);
  }

  /** All documents scored against {@code query}, best first, with default options. */
  public List<RerankResult> rerank(String model, String query, List<String> documents) {
    return rerank(model, query, documents, RerankOptions.defaults());
  }

  /** Documents scored against {@code query}, best first. */
  public List<RerankResult> rerank(
      String model, String query, List<String> documents, RerankOptions options) {
    return rerank.rerank(model, query, documents, options);
  }

  /** The Rerank RPC as such (token counts, label scores, metadata). */
  public RerankResponse rerankRaw(RerankRequest request) {
    return rerank.rerankRaw(request);
  }

  /** {@link #rerank(String, String, List)} without blocking. */
  public CompletableFuture<List<RerankResult>> rerankAsync(
      String model, String query, List<String> documents) {
    return rerankAsync(model, query, documents, RerankOptions.defaults());
  }

  /** {@link #rerank(String, String, List, RerankOptions)} without blocking. */
  public CompletableFuture<List<RerankResult>> rerankAsync(
      String model, String query, List<String> documents, RerankOptions options) {
    return rerank.rerankAsync(model, query, documents, options);
  }

  // ---------------------------------------------------------------------------------------------
  // Tokenize and Classify

  /**
   * The tokens {@code model} (of any kind) reads for each text, with the prompt Encode applies for
   * {@code inputType} (INPUT_TYPE_UNSPECIFIED: the model's default). No model runs.
   */
  public List<TokenizedInput> tokenize(String model, List<String> texts, InputType inputType) {
    return tokenizeRaw(KindRequests.tokenize(model, texts, inputType));
  }

  /** The tokens of each pair, as Rerank and Classify run them. */
  public List<TokenizedInput> tokenizePairs(String model, List<Pair> pairs) {
    return tokenizeRaw(KindRequests.tokenizePairs(model, pairs));
  }

  /** The Tokenize RPC with every option (prompt_name, truncation), as typed results. */
  public List<TokenizedInput> tokenizeRaw(TokenizeRequest request) {
    return kinds.tokenizeRaw(request);
  }

  /** Token ids back to text, as the model's tokenizer decodes them. */
  public String decode(String model, int[] ids, boolean skipSpecialTokens) {
    return kinds.decode(model, ids, skipSpecialTokens);
  }

  /** Each text's labels, best first; {@code topK} null for all of them. */
  public List<Classification> classify(String model, List<String> texts, Integer topK) {
    return classifyRaw(KindRequests.classify(model, texts, topK));
  }

  /** Each pair's labels (NLI: premise, hypothesis), best first; {@code topK} null for all. */
  public List<Classification> classifyPairs(String model, List<Pair> pairs, Integer topK) {
    return classifyRaw(KindRequests.classifyPairs(model, pairs, topK));
  }

  /** The Classify RPC with every option (raw scores: {@link ScoreMode#SCORE_MODE_RAW}). */
  public List<Classification> classifyRaw(ClassifyRequest request) {
    return kinds.classifyRaw(request);
  }

  // ---------------------------------------------------------------------------------------------
  // SparseEmbed, MultiVectorEmbed (Rerank on a multi-vector model scores by MaxSim)

  /** Sparse (SPLADE) vectors of {@code texts}, every non-zero weight, no tokens. */
  public List<SparseEmbedding> encodeSparse(String model, List<String> texts) {
    return encodeSparse(model, texts, null, false, InputType.INPUT_TYPE_UNSPECIFIED);
  }

  /**
   * Sparse (SPLADE) vectors of {@code texts}, one per text in order.
   *
   * @param topK keep each text's topK highest weights; null for all (negative: INVALID_ARGUMENT)
   * @param returnTokens also return each index's token string
   * @param inputType the model's query or document prompt (UNSPECIFIED: its default)
   */
  public List<SparseEmbedding> encodeSparse(
      String model, List<String> texts, Integer topK, boolean returnTokens, InputType inputType) {
    return kinds.encodeSparse(model, texts, topK, returnTokens, inputType);
  }

  /** The EncodeSparse RPC as such (token counts, metadata). */
  public EncodeSparseResponse encodeSparseRaw(EncodeSparseRequest request) {
    return kinds.encodeSparseRaw(request);
  }

  /**
   * Multi-vector (ColBERT) embeddings of {@code texts}: per text a matrix, one row per scored
   * token. {@code inputType} QUERY applies the model's query length and mask-token expansion,
   * DOCUMENT its document length and skiplist, UNSPECIFIED what the library's encode() does.
   */
  public List<float[][]> encodeMultiVector(String model, List<String> texts, InputType inputType) {
    return kinds.encodeMultiVector(model, texts, inputType);
  }

  /**
   * Multi-vector embeddings of {@code texts} in a compact precision, per text one matrix: int8 and
   * uint8 use per-dimension ranges calibrated at export, binary and ubinary pack sign bits.
   */
  public List<QuantizedEmbeddings> encodeMultiVectorQuantized(
      String model, List<String> texts, InputType inputType, Precision precision) {
    return kinds.encodeMultiVectorQuantized(model, texts, inputType, precision);
  }

  /** The ...Stream RPCs of Classify, Tokenize, SparseEmbed and MultiVectorEmbed, in order. */
  public KindStreams streams() {
    return streams;
  }

  /** The EncodeMultiVector RPC as such (vector and token counts, metadata). */
  public EncodeMultiVectorResponse encodeMultiVectorRaw(EncodeMultiVectorRequest request) {
    return kinds.encodeMultiVectorRaw(request);
  }

  // ---------------------------------------------------------------------------------------------
  // Models

  /** The models the server has loaded. */
  public List<ModelInfo> listModels() {
    return Unary.call(() -> models.listModels(ListModelsRequest.getDefaultInstance())).getModelsList();
  }

  /** One model; NOT_FOUND if the server has no such model. */
  public ModelInfo getModel(String name) {
    return Unary.call(() -> models.getModel(GetModelRequest.newBuilder().setName(name).build()));
  }

  // ---------------------------------------------------------------------------------------------

  /** Shuts the channel down, waiting up to 5 seconds for calls in progress. */
  @Override
  public void close() {
    ChannelSetup.close(managedChannel);
  }

  /**
   * The service config that retries UNAVAILABLE on every method of Embed, Rerank and Models, in
   * the form {@link ManagedChannelBuilder#defaultServiceConfig(Map)} takes (numbers as Double): the
   * shared {@code clients/service-config.json}'s method config with {@code maxAttempts} set.
   *
   * @param maxAttempts attempts in all, the first one included (2..5; gRPC caps it at 5)
   */
  public static Map<String, Object> retryServiceConfig(int maxAttempts) {
    return ChannelSetup.retryServiceConfig(maxAttempts);
  }

  /** Builds an {@link EmbedRankClient}. TLS by default; call {@link #usePlaintext()} for h2c. */
  public static final class Builder {
    private String target;
    private boolean tls = true;
    private Path trustedCertificates;
    private Path clientCertificate;
    private Path clientKey;
    private Supplier<String> token;
    private Duration defaultDeadline = DEFAULT_DEADLINE;
    private boolean retry = true;
    private int maxAttempts = DEFAULT_MAX_ATTEMPTS;
    private int maxInboundMessageSize = DEFAULT_MAX_INBOUND_MESSAGE_SIZE;
    private int streamMaxInFlight = DEFAULT_STREAM_MAX_IN_FLIGHT;
    private ManagedChannelBuilder<?> channelBuilder;

    private Builder() {}

    /** The server, e.g. {@code "localhost:50051"} (any gRPC target string). */
    public Builder target(String target) {
      this.target = Objects.requireNonNull(target, "target");
      return this;
    }

    /**
     * Several replicas as "host:port" addresses: calls are balanced round-robin over them and,
     * with retry on (the default), UNAVAILABLE is retried on the next one; one whose grpc.health.v1
     * status is NOT_SERVING gets no new calls ({@link HealthChecking}). The list is fixed; for
     * replicas behind one DNS name use {@code target("dns:///name:port")}, balanced the same way.
     * With TLS, the first address's host is the name checked against the certificate.
     */
    public Builder addresses(List<String> addresses) {
      this.target = ReplicasNameResolverProvider.target(List.copyOf(addresses));
      ReplicasNameResolverProvider.register();
      return this;
    }

    /** No TLS (HTTP/2 in clear text). */
    public Builder usePlaintext() {
      this.tls = false;
      return this;
    }

    /** TLS with the JVM's trusted CAs (the default). */
    public Builder useTransportSecurity() {
      this.tls = true;
      return this;
    }

    /** TLS trusting the CA certificates in this PEM file (e.g. a self-signed server). */
    public Builder trustedCertificates(Path caPem) {
      this.trustedCertificates = Objects.requireNonNull(caPem, "caPem");
      this.tls = true;
      return this;
    }

    /**
     * Mutual TLS: present this client certificate (PEM, the chain) and its private key (PEM,
     * PKCS#8: {@code -----BEGIN PRIVATE KEY-----}) to a server that asks for one.
     */
    public Builder clientCertificate(Path certChainPem, Path privateKeyPem) {
      this.clientCertificate = Objects.requireNonNull(certChainPem, "certChainPem");
      this.clientKey = Objects.requireNonNull(privateKeyPem, "privateKeyPem");
      this.tls = true;
      return this;
    }

    /**
     * Sends {@code authorization: Bearer <token>} with every call. Over plaintext the token
     * travels in clear; use TLS beyond localhost.
     */
    public Builder bearerToken(String token) {
      Objects.requireNonNull(token, "token");
      this.token = () -> token;
      return this;
    }

    /** Like {@link #bearerToken(String)}, asking {@code token} before every call. */
    public Builder bearerToken(Supplier<String> token) {
      this.token = Objects.requireNonNull(token, "token");
      return this;
    }

    /** Deadline of every call (of a whole stream for the stream helper); null = none. */
    public Builder defaultDeadline(Duration deadline) {
      if (deadline != null && (deadline.isNegative() || deadline.isZero())) {
        throw new IllegalArgumentException("deadline must be positive, got " + deadline);
      }
      this.defaultDeadline = deadline;
      return this;
    }

    /** Whether to retry UNAVAILABLE (default true). */
    public Builder retry(boolean retry) {
      this.retry = retry;
      return this;
    }

    /** Attempts in all for a call failing with UNAVAILABLE, 2..5 (default 4). */
    public Builder maxAttempts(int maxAttempts) {
      if (maxAttempts < 2 || maxAttempts > 5) {
        throw new IllegalArgumentException("maxAttempts must be 2..5, got " + maxAttempts);
      }
      this.maxAttempts = maxAttempts;
      return this;
    }

    /** Largest response accepted, in bytes (default 64 MiB). */
    public Builder maxInboundMessageSize(int bytes) {
      if (bytes <= 0) {
        throw new IllegalArgumentException("maxInboundMessageSize must be > 0, got " + bytes);
      }
      this.maxInboundMessageSize = bytes;
      return this;
    }

    /** Requests unanswered at a time on a stream (default 16). */
    public Builder streamMaxInFlight(int maxInFlight) {
      if (maxInFlight < 1) {
        throw new IllegalArgumentException("streamMaxInFlight must be >= 1, got " + maxInFlight);
      }
      this.streamMaxInFlight = maxInFlight;
      return this;
    }

    /**
     * Advanced: build the channel from this builder (in-process channels in tests, custom
     * transport settings). Target and TLS settings are then ignored; retry, the message size
     * limit, deadline and token still apply.
     */
    public Builder channelBuilder(ManagedChannelBuilder<?> channelBuilder) {
      this.channelBuilder = Objects.requireNonNull(channelBuilder, "channelBuilder");
      return this;
    }

    public EmbedRankClient build() {
      ManagedChannel managed =
          ChannelSetup.build(
              channelBuilder,
              target,
              () -> ChannelSetup.credentials(tls, trustedCertificates, clientCertificate, clientKey),
              retry,
              maxAttempts,
              maxInboundMessageSize);
      return new EmbedRankClient(managed, this);
    }
  }
}

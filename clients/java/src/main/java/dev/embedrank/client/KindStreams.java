package dev.embedrank.client;

import dev.embedrank.v1.ClassifyGrpc;
import dev.embedrank.v1.ClassifyRequest;
import dev.embedrank.v1.ClassifyResponse;
import dev.embedrank.v1.ClassifyStreamRequest;
import dev.embedrank.v1.ClassifyStreamResponse;
import dev.embedrank.v1.EncodeMultiVectorRequest;
import dev.embedrank.v1.EncodeMultiVectorResponse;
import dev.embedrank.v1.EncodeMultiVectorStreamRequest;
import dev.embedrank.v1.EncodeMultiVectorStreamResponse;
import dev.embedrank.v1.EncodeRequest;
import dev.embedrank.v1.EncodeResponse;
import dev.embedrank.v1.EncodeSparseRequest;
import dev.embedrank.v1.EncodeSparseResponse;
import dev.embedrank.v1.EncodeSparseStreamRequest;
import dev.embedrank.v1.EncodeSparseStreamResponse;
import dev.embedrank.v1.EncodeStreamRequest;
import dev.embedrank.v1.EncodeStreamResponse;
import dev.embedrank.v1.InputType;
import dev.embedrank.v1.MultiVectorEmbedGrpc;
import dev.embedrank.v1.Precision;
import dev.embedrank.v1.SparseEmbedGrpc;
import dev.embedrank.v1.TokenizeGrpc;
import dev.embedrank.v1.TokenizeRequest;
import dev.embedrank.v1.TokenizeResponse;
import dev.embedrank.v1.TokenizeStreamRequest;
import dev.embedrank.v1.TokenizeStreamResponse;
import io.grpc.Channel;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * The ...Stream RPCs of Classify, Tokenize, SparseEmbed and MultiVectorEmbed ({@link
 * EmbedRankClient#streams()}), as {@link EmbedRankClient#encodeStream(String, List)} is for
 * Encode: each batch is one request on a single stream, at most {@link
 * EmbedRankClient.Builder#streamMaxInFlight(int)} unanswered; the items come in the order of the
 * batches, and a batch the server refused on its own is an item whose {@link StreamItem#value()}
 * throws its {@link EmbedRankException}. A failure of the whole stream is thrown.
 */
public final class KindStreams {
  static final OrderedStream.Shape<EncodeRequest, EncodeStreamRequest, EncodeStreamResponse, EncodeResponse> ENCODE =
      new OrderedStream.Shape<>(
          "EncodeStream",
          (id, r) -> EncodeStreamRequest.newBuilder().setId(id).setRequest(r).build(),
          EncodeStreamResponse::getId,
          s -> s.hasResponse() ? s.getResponse() : null,
          s -> s.hasError() ? s.getError() : null);
  private static final OrderedStream.Shape<ClassifyRequest, ClassifyStreamRequest, ClassifyStreamResponse, ClassifyResponse> CLASSIFY =
      new OrderedStream.Shape<>(
          "ClassifyStream",
          (id, r) -> ClassifyStreamRequest.newBuilder().setId(id).setRequest(r).build(),
          ClassifyStreamResponse::getId,
          s -> s.hasResponse() ? s.getResponse() : null,
          s -> s.hasError() ? s.getError() : null);
  private static final OrderedStream.Shape<TokenizeRequest, TokenizeStreamRequest, TokenizeStreamResponse, TokenizeResponse> TOKENIZE =
      new OrderedStream.Shape<>(
          "TokenizeStream",
          (id, r) -> TokenizeStreamRequest.newBuilder().setId(id).setRequest(r).build(),
          TokenizeStreamResponse::getId,
          s -> s.hasResponse() ? s.getResponse() : null,
          s -> s.hasError() ? s.getError() : null);
  private static final OrderedStream.Shape<EncodeSparseRequest, EncodeSparseStreamRequest, EncodeSparseStreamResponse, EncodeSparseResponse> SPARSE =
      new OrderedStream.Shape<>(
          "EncodeSparseStream",
          (id, r) -> EncodeSparseStreamRequest.newBuilder().setId(id).setRequest(r).build(),
          EncodeSparseStreamResponse::getId,
          s -> s.hasResponse() ? s.getResponse() : null,
          s -> s.hasError() ? s.getError() : null);
  private static final OrderedStream.Shape<EncodeMultiVectorRequest, EncodeMultiVectorStreamRequest, EncodeMultiVectorStreamResponse, EncodeMultiVectorResponse> MULTI_VECTOR =
      new OrderedStream.Shape<>(
          "EncodeMultiVectorStream",
          (id, r) -> EncodeMultiVectorStreamRequest.newBuilder().setId(id).setRequest(r).build(),
          EncodeMultiVectorStreamResponse::getId,
          s -> s.hasResponse() ? s.getResponse() : null,
          s -> s.hasError() ? s.getError() : null);

  private final Channel channel;
  private final int maxInFlight;

  KindStreams(Channel channel, int maxInFlight) {
    this.channel = channel;
    this.maxInFlight = maxInFlight;
  }

  /** Each batch's labels per text, best first ({@code topK} null: all labels). */
  public List<StreamItem<List<Classification>>> classify(
      String model, List<List<String>> batches, Integer topK) {
    return classifyRequests(map(batches, b -> KindRequests.classify(model, b, topK)))
        .stream().map(item -> item.map(KindDecoder::classifications)).toList();
  }

  /** Each batch's labels per pair (NLI: premise, hypothesis), best first. */
  public List<StreamItem<List<Classification>>> classifyPairs(
      String model, List<List<Pair>> batches, Integer topK) {
    List<ClassifyRequest> requests = map(batches, b -> KindRequests.classifyPairs(model, b, topK));
    return classifyRequests(requests).stream().map(i -> i.map(KindDecoder::classifications)).toList();
  }

  /** ClassifyStream with every option of the requests (raw scores, truncation). */
  public List<StreamItem<ClassifyResponse>> classifyRequests(List<ClassifyRequest> requests) {
    return OrderedStream.run(CLASSIFY, ClassifyGrpc.newStub(channel)::classifyStream, requests, maxInFlight);
  }

  /** Each batch's tokens per text, with the prompt Encode applies for {@code inputType}. */
  public List<StreamItem<List<TokenizedInput>>> tokenize(
      String model, List<List<String>> batches, InputType inputType) {
    List<TokenizeRequest> requests = map(batches, b -> KindRequests.tokenize(model, b, inputType));
    return tokenizeRequests(requests).stream().map(i -> i.map(KindDecoder::tokenized)).toList();
  }

  /** TokenizeStream with every option of the requests (pairs, prompt_name, truncation). */
  public List<StreamItem<TokenizeResponse>> tokenizeRequests(List<TokenizeRequest> requests) {
    return OrderedStream.run(TOKENIZE, TokenizeGrpc.newStub(channel)::tokenizeStream, requests, maxInFlight);
  }

  /** Each batch's sparse vectors, as {@link EmbedRankClient#encodeSparse}. */
  public List<StreamItem<List<SparseEmbedding>>> encodeSparse(
      String model, List<List<String>> batches, Integer topK, boolean returnTokens,
      InputType inputType) {
    List<EncodeSparseRequest> requests =
        map(batches, b -> KindRequests.sparse(model, b, topK, returnTokens, inputType));
    return encodeSparseRequests(requests).stream().map(i -> i.map(KindDecoder::sparse)).toList();
  }

  /** EncodeSparseStream with every option of the requests. */
  public List<StreamItem<EncodeSparseResponse>> encodeSparseRequests(List<EncodeSparseRequest> requests) {
    return OrderedStream.run(SPARSE, SparseEmbedGrpc.newStub(channel)::encodeSparseStream, requests, maxInFlight);
  }

  /** Each batch's float32 token vectors, per text a matrix. */
  public List<StreamItem<List<float[][]>>> encodeMultiVector(
      String model, List<List<String>> batches, InputType inputType) {
    List<EncodeMultiVectorRequest> requests = map(batches,
        b -> KindRequests.multiVector(model, b, inputType, Precision.PRECISION_FLOAT32));
    return encodeMultiVectorRequests(requests).stream().map(i -> i.map(KindDecoder::multiVectors)).toList();
  }

  /** Each batch's token vectors in a compact precision, per text a matrix. */
  public List<StreamItem<List<QuantizedEmbeddings>>> encodeMultiVectorQuantized(
      String model, List<List<String>> batches, InputType inputType, Precision precision) {
    List<EncodeMultiVectorRequest> requests = map(batches,
        b -> KindRequests.multiVector(model, b, inputType, precision));
    return encodeMultiVectorRequests(requests).stream()
        .map(i -> i.map(r -> KindDecoder.multiVectorsQuantized(r, precision))).toList();
  }

  /** EncodeMultiVectorStream with every option of the requests. */
  public List<StreamItem<EncodeMultiVectorResponse>> encodeMultiVectorRequests(
      List<EncodeMultiVectorRequest> requests) {
    return OrderedStream.run(MULTI_VECTOR, MultiVectorEmbedGrpc.newStub(channel)::encodeMultiVectorStream,
        requests, maxInFlight);
  }

  private static <B, T> List<T> map(List<B> batches, Function<B, T> f) {
    List<T> out = new ArrayList<>(batches.size());
    for (B b : batches) {
      out.add(f.apply(b));
    }
    return out;
  }
}

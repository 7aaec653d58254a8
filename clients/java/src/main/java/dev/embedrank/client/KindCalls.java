package dev.embedrank.client;

import dev.embedrank.v1.ClassifyGrpc;
import dev.embedrank.v1.ClassifyRequest;
import dev.embedrank.v1.DecodeRequest;
import dev.embedrank.v1.EncodeMultiVectorRequest;
import dev.embedrank.v1.EncodeMultiVectorResponse;
import dev.embedrank.v1.EncodeSparseRequest;
import dev.embedrank.v1.EncodeSparseResponse;
import dev.embedrank.v1.InputType;
import dev.embedrank.v1.MultiVectorEmbedGrpc;
import dev.embedrank.v1.Precision;
import dev.embedrank.v1.SparseEmbedGrpc;
import dev.embedrank.v1.TokenizeGrpc;
import dev.embedrank.v1.TokenizeRequest;
import io.grpc.Channel;
import java.util.List;

/**
 * The unary calls of Tokenize (and Decode), Classify, SparseEmbed and MultiVectorEmbed behind
 * {@link EmbedRankClient}'s methods of those names, as {@link KindStreams} is for their streams:
 * requests from {@link KindRequests}, answers read by {@link KindDecoder}.
 */
final class KindCalls {
  private final TokenizeGrpc.TokenizeBlockingStub tokenize;
  private final ClassifyGrpc.ClassifyBlockingStub classify;
  private final SparseEmbedGrpc.SparseEmbedBlockingStub sparse;
  private final MultiVectorEmbedGrpc.MultiVectorEmbedBlockingStub multiVector;

  KindCalls(Channel channel) {
    this.tokenize = TokenizeGrpc.newBlockingStub(channel);
    this.classify = ClassifyGrpc.newBlockingStub(channel);
    this.sparse = SparseEmbedGrpc.newBlockingStub(channel);
    this.multiVector = MultiVectorEmbedGrpc.newBlockingStub(channel);
  }

  List<TokenizedInput> tokenizeRaw(TokenizeRequest request) {
    return KindDecoder.tokenized(Unary.call(() -> tokenize.tokenize(request)));
  }

  String decode(String model, int[] ids, boolean skipSpecialTokens) {
    DecodeRequest.Builder b =
        DecodeRequest.newBuilder().setModel(model).setSkipSpecialTokens(skipSpecialTokens);
    for (int id : ids) {
      b.addIds(id);
    }
    return Unary.call(() -> tokenize.decode(b.build())).getText();
  }

  List<Classification> classifyRaw(ClassifyRequest request) {
    return KindDecoder.classifications(Unary.call(() -> classify.classify(request)));
  }

  List<SparseEmbedding> encodeSparse(
      String model, List<String> texts, Integer topK, boolean returnTokens, InputType inputType) {
    EncodeSparseResponse response =
        encodeSparseRaw(KindRequests.sparse(model, texts, topK, returnTokens, inputType));
    EmbeddingDecoder.checkRows(response.getVectorsCount(), texts.size());
    return KindDecoder.sparse(response);
  }

  EncodeSparseResponse encodeSparseRaw(EncodeSparseRequest request) {
    return Unary.call(() -> sparse.encodeSparse(request));
  }

  List<float[][]> encodeMultiVector(String model, List<String> texts, InputType inputType) {
    return KindDecoder.multiVectors(
        checkedMultiVector(model, texts, inputType, Precision.PRECISION_UNSPECIFIED));
  }

  List<QuantizedEmbeddings> encodeMultiVectorQuantized(
      String model, List<String> texts, InputType inputType, Precision precision) {
    return KindDecoder.multiVectorsQuantized(
        checkedMultiVector(model, texts, inputType, precision), precision);
  }

  EncodeMultiVectorResponse encodeMultiVectorRaw(EncodeMultiVectorRequest request) {
    return Unary.call(() -> multiVector.encodeMultiVector(request));
  }

  private EncodeMultiVectorResponse checkedMultiVector(
      String model, List<String> texts, InputType inputType, Precision precision) {
    EncodeMultiVectorResponse response =
        encodeMultiVectorRaw(KindRequests.multiVector(model, texts, inputType, precision));
    EmbeddingDecoder.checkRows(response.getVectorCountsCount(), texts.size());
    return response;
  }
}

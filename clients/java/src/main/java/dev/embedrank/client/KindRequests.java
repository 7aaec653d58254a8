package dev.embedrank.client;

import dev.embedrank.v1.ClassifyRequest;
import dev.embedrank.v1.EncodeMultiVectorRequest;
import dev.embedrank.v1.EncodeSparseRequest;
import dev.embedrank.v1.InputType;
import dev.embedrank.v1.Precision;
import dev.embedrank.v1.TokenizeRequest;
import java.util.List;

/**
 * The Tokenize, Classify, SparseEmbed and MultiVectorEmbed requests made from the convenience
 * methods' arguments, the same for the unary calls ({@link KindCalls}) and the streams ({@link
 * KindStreams}); an optional {@code topK} left null is not set.
 */
final class KindRequests {
  private KindRequests() {}

  static TokenizeRequest tokenize(String model, List<String> texts, InputType inputType) {
    return TokenizeRequest.newBuilder().setModel(model).addAllTexts(texts).setInputType(inputType).build();
  }

  static TokenizeRequest tokenizePairs(String model, List<Pair> pairs) {
    TokenizeRequest.Builder b = TokenizeRequest.newBuilder().setModel(model);
    pairs.forEach(p -> b.addPairs(p.toProto()));
    return b.build();
  }

  static ClassifyRequest classify(String model, List<String> texts, Integer topK) {
    return classifyBuilder(model, topK).addAllTexts(texts).build();
  }

  static ClassifyRequest classifyPairs(String model, List<Pair> pairs, Integer topK) {
    ClassifyRequest.Builder b = classifyBuilder(model, topK);
    pairs.forEach(p -> b.addPairs(p.toProto()));
    return b.build();
  }

  static EncodeSparseRequest sparse(
      String model, List<String> texts, Integer topK, boolean returnTokens, InputType inputType) {
    EncodeSparseRequest.Builder b =
        EncodeSparseRequest.newBuilder()
            .setModel(model)
            .addAllTexts(texts)
            .setReturnTokens(returnTokens)
            .setInputType(inputType);
    if (topK != null) {
      b.setTopK(topK);
    }
    return b.build();
  }

  static EncodeMultiVectorRequest multiVector(
      String model, List<String> texts, InputType inputType, Precision precision) {
    return EncodeMultiVectorRequest.newBuilder().setModel(model).addAllTexts(texts)
        .setInputType(inputType).setPrecision(precision).build();
  }

  private static ClassifyRequest.Builder classifyBuilder(String model, Integer topK) {
    ClassifyRequest.Builder b = ClassifyRequest.newBuilder().setModel(model);
    if (topK != null) {
      b.setTopK(topK);
    }
    return b;
  }
}

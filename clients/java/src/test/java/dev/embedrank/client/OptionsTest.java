package dev.embedrank.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.embedrank.v1.EncodeRequest;
import dev.embedrank.v1.InputType;
import dev.embedrank.v1.Precision;
import dev.embedrank.v1.RerankRequest;
import dev.embedrank.v1.ScoreMode;
import dev.embedrank.v1.Truncation;
import java.util.List;
import org.junit.jupiter.api.Test;

class OptionsTest {

  @Test
  void defaultEncodeRequestLeavesEverythingToTheServer() {
    EncodeRequest r = EncodeOptions.defaults().toRequest("minilm", List.of("a", "b"));
    assertEquals("minilm", r.getModel());
    assertEquals(List.of("a", "b"), r.getTextsList());
    assertEquals(InputType.INPUT_TYPE_UNSPECIFIED, r.getInputType());
    assertEquals("", r.getPromptName());
    assertFalse(r.hasNormalize(), "normalize must stay unset: the model's own behaviour");
    assertEquals(0, r.getDimensions());
    assertEquals(Truncation.TRUNCATION_UNSPECIFIED, r.getTruncation());
    assertEquals(Precision.PRECISION_FLOAT32, r.getPrecision());
  }

  @Test
  void encodeOptionsAreCopiedIntoTheRequest() {
    EncodeOptions o =
        EncodeOptions.builder()
            .inputType(InputType.INPUT_TYPE_QUERY)
            .promptName("query")
            .normalize(false)
            .dimensions(64)
            .truncation(Truncation.TRUNCATION_NONE)
            .build();
    EncodeRequest r = o.toRequest("m", List.of("x"), Precision.PRECISION_UBINARY);
    assertEquals(InputType.INPUT_TYPE_QUERY, r.getInputType());
    assertEquals("query", r.getPromptName());
    assertTrue(r.hasNormalize());
    assertFalse(r.getNormalize());
    assertEquals(64, r.getDimensions());
    assertEquals(Truncation.TRUNCATION_NONE, r.getTruncation());
    assertEquals(Precision.PRECISION_UBINARY, r.getPrecision());

    EncodeRequest n = EncodeOptions.builder().normalize(true).build().toRequest("m", List.of());
    assertTrue(n.hasNormalize());
    assertTrue(n.getNormalize());
  }

  @Test
  void encodeOptionsValueSemantics() {
    EncodeOptions a = EncodeOptions.builder().dimensions(8).normalize(true).build();
    EncodeOptions b = a.toBuilder().build();
    assertEquals(a, b);
    assertEquals(a.hashCode(), b.hashCode());
    assertNotEquals(a, a.toBuilder().normalize(null).build());
    assertEquals(EncodeOptions.defaults(), EncodeOptions.builder().promptName(null).build());
  }

  @Test
  void badEncodeOptionsAreRefused() {
    assertThrows(IllegalArgumentException.class, () -> EncodeOptions.builder().dimensions(-1));
    assertThrows(NullPointerException.class, () -> EncodeOptions.builder().inputType(null));
    assertThrows(
        NullPointerException.class, () -> EncodeOptions.defaults().toRequest(null, List.of()));
  }

  @Test
  void defaultRerankRequest() {
    RerankRequest r = RerankOptions.defaults().toRequest("rr", "q", List.of("d0", "d1"));
    assertEquals("rr", r.getModel());
    assertEquals("q", r.getQuery());
    assertEquals(List.of("d0", "d1"), r.getDocumentsList());
    assertFalse(r.hasTopK(), "top_k unset = all results");
    assertFalse(r.getReturnDocuments());
    assertEquals(ScoreMode.SCORE_MODE_UNSPECIFIED, r.getScores());
    assertEquals(Truncation.TRUNCATION_UNSPECIFIED, r.getTruncation());
  }

  @Test
  void rerankOptionsAreCopiedIntoTheRequest() {
    RerankOptions o =
        RerankOptions.builder()
            .topK(0)
            .returnDocuments(true)
            .rawScores(true)
            .truncation(Truncation.TRUNCATION_START)
            .build();
    RerankRequest r = o.toRequest("rr", "q", List.of("d"));
    assertTrue(r.hasTopK());
    assertEquals(0, r.getTopK());
    assertTrue(r.getReturnDocuments());
    assertEquals(ScoreMode.SCORE_MODE_RAW, r.getScores());
    assertEquals(Truncation.TRUNCATION_START, r.getTruncation());
    assertThrows(IllegalArgumentException.class, () -> RerankOptions.builder().topK(-1));
    assertEquals(o, RerankOptions.builder().topK(0).returnDocuments(true).rawScores(true)
        .truncation(Truncation.TRUNCATION_START).build());
  }
}

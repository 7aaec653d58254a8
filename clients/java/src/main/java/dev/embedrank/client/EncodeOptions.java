package dev.embedrank.client;

import dev.embedrank.v1.EncodeRequest;
import dev.embedrank.v1.InputType;
import dev.embedrank.v1.Precision;
import dev.embedrank.v1.Truncation;
import java.util.List;
import java.util.Objects;

/**
 * Options of an Encode request. Immutable; start from {@link #defaults()} or {@link #builder()}.
 *
 * <pre>{@code
 * EncodeOptions opts = EncodeOptions.builder()
 *     .inputType(InputType.INPUT_TYPE_QUERY)
 *     .normalize(true)
 *     .dimensions(256)
 *     .build();
 * }</pre>
 */
public final class EncodeOptions {
  private static final EncodeOptions DEFAULTS = new Builder().build();

  private final InputType inputType;
  private final String promptName;
  private final Boolean normalize;
  private final int dimensions;
  private final Truncation truncation;

  private EncodeOptions(Builder b) {
    this.inputType = b.inputType;
    this.promptName = b.promptName;
    this.normalize = b.normalize;
    this.dimensions = b.dimensions;
    this.truncation = b.truncation;
  }

  /** The server's defaults: no prompt choice, the model's normalization, all dimensions. */
  public static EncodeOptions defaults() {
    return DEFAULTS;
  }

  public static Builder builder() {
    return new Builder();
  }

  public Builder toBuilder() {
    Builder b = new Builder();
    b.inputType = inputType;
    b.promptName = promptName;
    b.normalize = normalize;
    b.dimensions = dimensions;
    b.truncation = truncation;
    return b;
  }

  public InputType inputType() {
    return inputType;
  }

  /** Empty when not set. */
  public String promptName() {
    return promptName;
  }

  /** Null when not set (the model's own behaviour). */
  public Boolean normalize() {
    return normalize;
  }

  /** 0 = all dimensions. */
  public int dimensions() {
    return dimensions;
  }

  public Truncation truncation() {
    return truncation;
  }

  /** The EncodeRequest for these options, in float32 precision. */
  public EncodeRequest toRequest(String model, List<String> texts) {
    return toRequest(model, texts, Precision.PRECISION_FLOAT32);
  }

  /** The EncodeRequest for these options in the given precision. */
  public EncodeRequest toRequest(String model, List<String> texts, Precision precision) {
    Objects.requireNonNull(model, "model");
    Objects.requireNonNull(texts, "texts");
    Objects.requireNonNull(precision, "precision");
    EncodeRequest.Builder r =
        EncodeRequest.newBuilder()
            .setModel(model)
            .addAllTexts(texts)
            .setInputType(inputType)
            .setPromptName(promptName)
            .setDimensions(dimensions)
            .setTruncation(truncation)
            .setPrecision(precision);
    if (normalize != null) {
      r.setNormalize(normalize);
    }
    return r.build();
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof EncodeOptions)) {
      return false;
    }
    EncodeOptions e = (EncodeOptions) o;
    return inputType == e.inputType
        && promptName.equals(e.promptName)
        && Objects.equals(normalize, e.normalize)
        && dimensions == e.dimensions
        && truncation == e.truncation;
  }

  @Override
  public int hashCode() {
    return Objects.hash(inputType, promptName, normalize, dimensions, truncation);
  }

  @Override
  public String toString() {
    return "EncodeOptions[inputType=" + inputType + ", promptName=" + promptName
        + ", normalize=" + normalize + ", dimensions=" + dimensions
        + ", truncation=" + truncation + "]";
  }

  public static final class Builder {
    private InputType inputType = InputType.INPUT_TYPE_UNSPECIFIED;
    private String promptName = "";
    private Boolean normalize;
    private int dimensions;
    private Truncation truncation = Truncation.TRUNCATION_UNSPECIFIED;

    private Builder() {}

    /** QUERY or DOCUMENT picks the model's prompt; UNSPECIFIED = its default prompt. */
    public Builder inputType(InputType inputType) {
      this.inputType = Objects.requireNonNull(inputType, "inputType");
      return this;
    }

    /** An explicit prompt name of the model; wins over the input type. Null or "" = none. */
    public Builder promptName(String promptName) {
      this.promptName = promptName == null ? "" : promptName;
      return this;
    }

    /** L2-normalize (or not); null = the model's own behaviour. */
    public Builder normalize(Boolean normalize) {
      this.normalize = normalize;
      return this;
    }

    /** Matryoshka: keep the first N dimensions; 0 = all. */
    public Builder dimensions(int dimensions) {
      if (dimensions < 0) {
        throw new IllegalArgumentException("dimensions must be >= 0, got " + dimensions);
      }
      this.dimensions = dimensions;
      return this;
    }

    public Builder truncation(Truncation truncation) {
      this.truncation = Objects.requireNonNull(truncation, "truncation");
      return this;
    }

    public EncodeOptions build() {
      return new EncodeOptions(this);
    }
  }
}

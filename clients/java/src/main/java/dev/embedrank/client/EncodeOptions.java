package dev.embedrank.client;

import dev.embedrank.v1.EncodeRequest;
import dev.embedrank.v1.InputType;
import dev.embedrank.v1.LongInput;
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
  private final LongInput longInput;
  private final Integer chunkOverlap;
  private final boolean returnChunks;

  private EncodeOptions(Builder b) {
    this.inputType = b.inputType;
    this.promptName = b.promptName;
    this.normalize = b.normalize;
    this.dimensions = b.dimensions;
    this.truncation = b.truncation;
    this.longInput = b.longInput;
    this.chunkOverlap = b.chunkOverlap;
    this.returnChunks = b.returnChunks;
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
    b.longInput = longInput;
    b.chunkOverlap = chunkOverlap;
    b.returnChunks = returnChunks;
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

  public LongInput longInput() {
    return longInput;
  }

  /** Null when not set (the server's default overlap). */
  public Integer chunkOverlap() {
    return chunkOverlap;
  }

  public boolean returnChunks() {
    return returnChunks;
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
            .setPrecision(precision)
            .setLongInput(longInput)
            .setReturnChunks(returnChunks);
    if (normalize != null) {
      r.setNormalize(normalize);
    }
    if (chunkOverlap != null) {
      r.setChunkOverlap(chunkOverlap);
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
        && truncation == e.truncation
        && longInput == e.longInput
        && Objects.equals(chunkOverlap, e.chunkOverlap)
        && returnChunks == e.returnChunks;
  }

  @Override
  public int hashCode() {
    return Objects.hash(
        inputType, promptName, normalize, dimensions, truncation, longInput, chunkOverlap, returnChunks);
  }

  @Override
  public String toString() {
    return "EncodeOptions[inputType=" + inputType + ", promptName=" + promptName
        + ", normalize=" + normalize + ", dimensions=" + dimensions
        + ", truncation=" + truncation + ", longInput=" + longInput
        + ", chunkOverlap=" + chunkOverlap + ", returnChunks=" + returnChunks + "]";
  }

  public static final class Builder {
    private InputType inputType = InputType.INPUT_TYPE_UNSPECIFIED;
    private String promptName = "";
    private Boolean normalize;
    private int dimensions;
    private Truncation truncation = Truncation.TRUNCATION_UNSPECIFIED;
    private LongInput longInput = LongInput.LONG_INPUT_UNSPECIFIED;
    private Integer chunkOverlap;
    private boolean returnChunks;

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

    /**
     * LONG_INPUT_CHUNK: a text longer than the model's window is split into overlapping token
     * windows; its vector is the token-weighted mean of theirs. TRUNCATE (the default): cut it.
     */
    public Builder longInput(LongInput longInput) {
      this.longInput = Objects.requireNonNull(longInput, "longInput");
      return this;
    }

    /** Tokens consecutive windows share (LONG_INPUT_CHUNK only); null = the server's default. */
    public Builder chunkOverlap(Integer chunkOverlap) {
      if (chunkOverlap != null && chunkOverlap < 0) {
        throw new IllegalArgumentException("chunkOverlap must be >= 0, got " + chunkOverlap);
      }
      this.chunkOverlap = chunkOverlap;
      return this;
    }

    /** Also return every window's vector and span (LONG_INPUT_CHUNK only). */
    public Builder returnChunks(boolean returnChunks) {
      this.returnChunks = returnChunks;
      return this;
    }

    public EncodeOptions build() {
      return new EncodeOptions(this);
    }
  }
}

package dev.embedrank.client;

import dev.embedrank.v1.LongInput;
import dev.embedrank.v1.RerankRequest;
import dev.embedrank.v1.ScoreMode;
import dev.embedrank.v1.Truncation;
import java.util.List;
import java.util.Objects;

/** Options of a Rerank request. Immutable; start from {@link #defaults()} or {@link #builder()}. */
public final class RerankOptions {
  private static final RerankOptions DEFAULTS = new Builder().build();

  private final Integer topK;
  private final boolean returnDocuments;
  private final boolean rawScores;
  private final Truncation truncation;
  private final LongInput longInput;
  private final Integer chunkOverlap;

  private RerankOptions(Builder b) {
    this.topK = b.topK;
    this.returnDocuments = b.returnDocuments;
    this.rawScores = b.rawScores;
    this.truncation = b.truncation;
    this.longInput = b.longInput;
    this.chunkOverlap = b.chunkOverlap;
  }

  /** All results, activated scores, no documents echoed, the default truncation. */
  public static RerankOptions defaults() {
    return DEFAULTS;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Null when not set (all results). */
  public Integer topK() {
    return topK;
  }

  public boolean returnDocuments() {
    return returnDocuments;
  }

  public boolean rawScores() {
    return rawScores;
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

  public RerankRequest toRequest(String model, String query, List<String> documents) {
    Objects.requireNonNull(model, "model");
    Objects.requireNonNull(query, "query");
    Objects.requireNonNull(documents, "documents");
    RerankRequest.Builder r =
        RerankRequest.newBuilder()
            .setModel(model)
            .setQuery(query)
            .addAllDocuments(documents)
            .setReturnDocuments(returnDocuments)
            .setScores(rawScores ? ScoreMode.SCORE_MODE_RAW : ScoreMode.SCORE_MODE_UNSPECIFIED)
            .setTruncation(truncation)
            .setLongInput(longInput);
    if (topK != null) {
      r.setTopK(topK);
    }
    if (chunkOverlap != null) {
      r.setChunkOverlap(chunkOverlap);
    }
    return r.build();
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof RerankOptions)) {
      return false;
    }
    RerankOptions r = (RerankOptions) o;
    return Objects.equals(topK, r.topK)
        && returnDocuments == r.returnDocuments
        && rawScores == r.rawScores
        && truncation == r.truncation
        && longInput == r.longInput
        && Objects.equals(chunkOverlap, r.chunkOverlap);
  }

  @Override
  public int hashCode() {
    return Objects.hash(topK, returnDocuments, rawScores, truncation, longInput, chunkOverlap);
  }

  @Override
  public String toString() {
    return "RerankOptions[topK=" + topK + ", returnDocuments=" + returnDocuments
        + ", rawScores=" + rawScores + ", truncation=" + truncation + ", longInput=" + longInput
        + ", chunkOverlap=" + chunkOverlap + "]";
  }

  public static final class Builder {
    private Integer topK;
    private boolean returnDocuments;
    private boolean rawScores;
    private Truncation truncation = Truncation.TRUNCATION_UNSPECIFIED;
    private LongInput longInput = LongInput.LONG_INPUT_UNSPECIFIED;
    private Integer chunkOverlap;

    private Builder() {}

    /** Return only the best {@code topK} results; null = all. */
    public Builder topK(Integer topK) {
      if (topK != null && topK < 0) {
        throw new IllegalArgumentException("topK must be >= 0, got " + topK);
      }
      this.topK = topK;
      return this;
    }

    /** Echo each document's text in its result. */
    public Builder returnDocuments(boolean returnDocuments) {
      this.returnDocuments = returnDocuments;
      return this;
    }

    /** Return the logits instead of activated scores (SCORE_MODE_RAW). */
    public Builder rawScores(boolean rawScores) {
      this.rawScores = rawScores;
      return this;
    }

    public Builder truncation(Truncation truncation) {
      this.truncation = Objects.requireNonNull(truncation, "truncation");
      return this;
    }

    /**
     * LONG_INPUT_CHUNK: a document longer than the window left after the query is scored window
     * by window and gets its best window's score (MaxP); {@link RerankResult#span()} names it.
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

    public RerankOptions build() {
      return new RerankOptions(this);
    }
  }
}

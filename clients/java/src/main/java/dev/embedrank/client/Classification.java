package dev.embedrank.client;

import java.util.List;

/**
 * One input's labels ({@link EmbedRankClient#classify}).
 *
 * @param labels highest score first
 * @param truncated whether the input was cut to the model's max_tokens
 * @param tokenCount tokens fed to the model
 */
public record Classification(List<LabelScore> labels, boolean truncated, int tokenCount) {
  /** The best label. */
  public LabelScore top() {
    return labels.get(0);
  }
}

package dev.embedrank.client;

import java.util.List;

/**
 * The tokens of one text or pair, as the model runs them ({@link EmbedRankClient#tokenize}).
 *
 * @param tokens in the order the model reads them
 * @param tokenCount how many
 * @param truncated whether the model cuts the input to {@code maxTokens} (with TRUNCATION_NONE:
 *     whether it would)
 * @param prompt the prompt placed before the text ("" when none)
 * @param maxTokens the model's limit, special tokens included
 */
public record TokenizedInput(
    List<Token> tokens, int tokenCount, boolean truncated, String prompt, int maxTokens) {

  /** The token ids in order. */
  public int[] ids() {
    return tokens.stream().mapToInt(Token::id).toArray();
  }
}

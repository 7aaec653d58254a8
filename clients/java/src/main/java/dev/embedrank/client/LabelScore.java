package dev.embedrank.client;

/**
 * One label's score for one input.
 *
 * @param index the label's output index (the checkpoint's id2label key)
 * @param label its name
 * @param score softmax (single-label) or sigmoid (multi-label) score, or the logit on request
 */
public record LabelScore(int index, String label, float score) {}

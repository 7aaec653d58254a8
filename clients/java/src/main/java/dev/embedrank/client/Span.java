package dev.embedrank.client;

/**
 * A piece of an input text as the server counts it: {@code [start, end)} in Unicode code points,
 * not Java chars (UTF-16 units). {@link #of(String)} turns it into a Java substring.
 *
 * @param start first code point
 * @param end one past the last code point
 */
public record Span(int start, int end) {
  public Span {
    if (start < 0 || end < start) {
      throw new IllegalArgumentException("bad span [" + start + ", " + end + ")");
    }
  }

  static Span from(dev.embedrank.v1.Span s) {
    return new Span(s.getStart(), s.getEnd());
  }

  /** The span's characters of {@code text}; ends past the text are clamped to it. */
  public String of(String text) {
    int points = text.codePointCount(0, text.length());
    int from = text.offsetByCodePoints(0, Math.min(start, points));
    int to = text.offsetByCodePoints(0, Math.min(end, points));
    return text.substring(from, to);
  }
}

package dev.embedrank.client;

import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;

/**
 * The outcome of one request sent over a stream: its value, or the error the server reported for
 * that request alone (the stream itself went on).
 *
 * @param <T> the value type
 */
public final class StreamItem<T> {
  private final int index;
  private final String id;
  private final T value;
  private final EmbedRankException error;

  private StreamItem(int index, String id, T value, EmbedRankException error) {
    this.index = index;
    this.id = id;
    this.value = value;
    this.error = error;
  }

  static <T> StreamItem<T> ok(int index, String id, T value) {
    return new StreamItem<>(index, id, Objects.requireNonNull(value, "value"), null);
  }

  static <T> StreamItem<T> failed(int index, String id, EmbedRankException error) {
    return new StreamItem<>(index, id, null, Objects.requireNonNull(error, "error"));
  }

  /** Position of the request in the list that was sent. */
  public int index() {
    return index;
  }

  /** The id sent with the request and echoed by the server ("0", "1", ...). */
  public String id() {
    return id;
  }

  public boolean isOk() {
    return error == null;
  }

  /**
   * The value.
   *
   * @throws EmbedRankException the error of this item (its code, message and field)
   */
  public T value() {
    if (error != null) {
      throw error;
    }
    return value;
  }

  /** The error of this item, if it failed. */
  public Optional<EmbedRankException> error() {
    return Optional.ofNullable(error);
  }

  /** Applies {@code f} to the value; an exception of f becomes this item's error. */
  public <U> StreamItem<U> map(Function<? super T, ? extends U> f) {
    if (error != null) {
      return new StreamItem<>(index, id, null, error);
    }
    try {
      return ok(index, id, f.apply(value));
    } catch (EmbedRankException e) {
      return failed(index, id, e);
    }
  }

  @Override
  public String toString() {
    return "StreamItem[" + id + (error == null ? ", ok]" : ", " + error.getMessage() + "]");
  }
}

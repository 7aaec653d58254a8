"""The bearer tokens of --auth-token-file, checked the same way on both ports.

- The file holds one token a line (blank lines and ``#`` comments skipped): any of them is accepted,
  so a token is rotated without a gap (add the new one, move the clients, remove the old one).
- ``reload()`` (SIGHUP, and the --model-poll-s poll when the file changed, as for the TLS files)
  reads it again; a file that became unreadable or empty is logged and the tokens stay as they were.
- The scheme is case-insensitive (RFC 9110 §11.1, RFC 6750 §2.1: ``bearer`` and ``BEARER`` are
  ``Bearer``); one or more spaces may follow it.
- The comparison takes the same time whatever the sent value: both sides are hashed first (so the
  length of a token is not told either) and every accepted token is compared, with no early exit.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path

from embedrank.model.errors import ConfigError, Unauthenticated

log = logging.getLogger(__name__)


def read_tokens(path: Path) -> tuple[str, ...]:
    """The tokens of ``path``; ConfigError naming the flag when it cannot be read or holds none."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--auth-token-file {path}: cannot read it ({exc})") from None
    tokens = tuple(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    if not tokens:
        raise ConfigError(f"--auth-token-file {path}: the file is empty (one token a line)")
    for number, token in enumerate(tokens, 1):
        if any(c.isspace() for c in token) or not token.isprintable():
            raise ConfigError(f"--auth-token-file {path}: token {number} holds a space or control character")
    return tokens


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def bearer_credential(header: str | bytes) -> bytes | None:
    """The credential of an ``Authorization`` value whose scheme is Bearer (any case); None otherwise."""
    raw = header if isinstance(header, bytes) else header.encode("utf-8", "replace")
    scheme, _, rest = raw.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    credential = rest.strip(b" \t")
    return credential or None


class BearerTokens:
    """The accepted tokens; ``accepts`` answers for an ``Authorization`` header or metadata value."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digests = tuple(_digest(t.encode()) for t in read_tokens(path))
        self._stamp = self._file_stamp()

    def accepts(self, header: str | bytes) -> bool:
        credential = bearer_credential(header)
        sent = _digest(credential if credential is not None else b"")
        matched = False
        for digest in self._digests:  # all of them, whatever matched: the time tells nothing
            matched |= hmac.compare_digest(sent, digest)
        return matched and credential is not None

    def check(self, sent: str | bytes, *, where: str) -> None:
        """Unauthenticated unless ``sent`` (an ``Authorization`` value) holds an accepted token; the
        message tells where the token goes (``where``: "header Authorization", "metadata authorization")."""
        if not self.accepts(sent):
            raise Unauthenticated(f"missing or wrong bearer token ({where}: Bearer <token>)" if sent
                                  else f"this server needs a bearer token ({where}: Bearer <token>)")

    def _file_stamp(self) -> tuple[int, int]:
        try:
            st = os.stat(self.path)
        except OSError:
            return (0, -1)
        return (st.st_mtime_ns, st.st_size)

    def reload(self) -> bool:
        """Read the file again; True when the tokens in it are the ones accepted from now on."""
        self._stamp = self._file_stamp()
        try:
            tokens = read_tokens(self.path)
        except ConfigError as exc:
            log.error("token reload refused, still accepting the previous token(s): %s", exc.message)
            return False
        self._digests = tuple(_digest(t.encode()) for t in tokens)
        log.info("auth: %d token(s) read from %s", len(tokens), self.path)
        return True

    def reload_if_changed(self) -> bool:
        return self._file_stamp() != self._stamp and self.reload()

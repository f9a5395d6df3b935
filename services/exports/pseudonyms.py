"""Stable keyed pseudonyms for de-identified exports.

A pseudonym is HMAC-SHA256(organization's export secret, "<kind>:<value>"), truncated to 96 bits
and written as 24 hex digits. The same object gets the same pseudonym in every pull, so rows of
separate pulls join; the secret is the organization's own, so pseudonyms of two organizations
never match; without the secret a pseudonym cannot be traced back, even by someone who knows the
ids. The kind is part of the message, so a client and a clinician with equal ids (they never
have) would still differ.
"""

import hashlib
from collections.abc import Callable, Hashable

PSEUDONYM_HEX_DIGITS = 24
_BLOCK = 64  # SHA-256's block size in bytes


class Pseudonyms:
    """Pseudonyms under one organization's secret. Values that repeat across rows (episodes,
    clients, clinicians, raters) are remembered, up to ``cache_size`` of them at a time, so memory
    stays bounded whatever the export's size."""

    def __init__(self, secret: str, *, cache_size: int = 65_536) -> None:
        # HMAC as RFC 2104 writes it, with SHA-256 states that have taken in the key's inner and
        # outer pads: copying two such states is about twice as quick as copying an `hmac.HMAC`,
        # and an export computes one pseudonym per row at least. The unit tests check the result
        # against `hmac`.
        key = secret.encode()
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        self._cache: dict[tuple[str, Hashable], str] = {}
        self._cache_size = cache_size

    def _mac(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:PSEUDONYM_HEX_DIGITS]

    def of(self, kind: str, value: object) -> str | None:
        """The pseudonym of ``value`` (an id or a label), or None for None / ''."""
        if value is None or value == "":
            return None
        return self._mac(f"{kind}:{value}".encode())

    def of_text(self, kind: str) -> Callable[[str], str]:
        """``of(kind, value)`` for ids as text (never None nor ''), with less on the way."""
        prefix, mac = f"{kind}:".encode(), self._mac
        return lambda value: mac(prefix + value.encode())

    def submission(self, value: str) -> str:
        """``of("submission", value)`` for a submission id's text, with less on the way."""
        return self._mac(b"submission:" + value.encode())

    def repeated(self, kind: str, value: Hashable) -> str | None:
        """As `of`, for values many rows share."""
        key = (kind, value)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            found = self._cache[key] = self.of(kind, value)  # type: ignore[assignment]
        return found

    @property
    def cached(self) -> int:
        """How many pseudonyms `repeated` holds (at most ``cache_size``)."""
        return len(self._cache)

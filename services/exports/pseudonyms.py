"""Stable keyed pseudonyms for de-identified exports.

A pseudonym is HMAC-SHA256(organization's export secret, "<kind>:<value>"), truncated to 96 bits
and written as 24 hex digits. The same object gets the same pseudonym in every pull, so rows of
separate pulls join; the secret is the organization's own, so pseudonyms of two organizations
never match; without the secret a pseudonym cannot be traced back, even by someone who knows the
ids. The kind is part of the message, so a client and a clinician with equal ids (they never
have) would still differ.
"""

import hashlib
import hmac
from typing import Any

PSEUDONYM_HEX_DIGITS = 24


class Pseudonyms:
    """Pseudonyms under one organization's secret. Values that repeat across rows (episodes,
    clients, clinicians, raters) are remembered, up to ``cache_size`` of them at a time, so memory
    stays bounded whatever the export's size."""

    def __init__(self, secret: str, *, cache_size: int = 65_536) -> None:
        self._base = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        self._cache: dict[tuple[str, Any], str] = {}
        self._cache_size = cache_size

    def of(self, kind: str, value: Any) -> str | None:
        """The pseudonym of ``value`` (an id or a label), or None for None / ''."""
        if value is None or value == "":
            return None
        mac = self._base.copy()
        mac.update(f"{kind}:{value}".encode())
        return mac.hexdigest()[:PSEUDONYM_HEX_DIGITS]

    def repeated(self, kind: str, value: Any) -> str | None:
        """As `of`, for values many rows share."""
        key = (kind, value)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            found = self._cache[key] = self.of(kind, value)  # type: ignore[assignment]
        return found

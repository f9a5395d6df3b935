"""Secrets at rest (DESIGN.md §10.7): webhook signing secrets, webhook endpoint URLs (which may
carry credentials: ``https://user:token@host/…`` or a token in the query) and export pseudonym
secrets are stored encrypted, under a key derived from ``ATTUNE_SECRET_KEY``.

They must be read back (to sign a delivery, to key a pseudonym), so they cannot be hashed like
API keys; a copy of the database without the server secret holds only ciphertext. Fernet
(AES-128-CBC with HMAC-SHA256, from ``cryptography``) authenticates what it decrypts, so a value
altered in the database fails loudly instead of signing with garbage. Its key comes from the
server secret through HKDF-SHA256 (RFC 5869) with a purpose label, so the same secret never
serves as both the API-key HMAC key and the encryption key.

Rotation: set the new ``ATTUNE_SECRET_KEY`` and list the previous ones in
``ATTUNE_SECRET_KEYS_OLD``. Values sealed under an old key still open (`MultiFernet`);
``attune rotate-secrets`` seals every stored value under the current key, after which the old
key can be dropped from the list (API keys minted under it still need it: their hashes cannot
be recomputed without the keys themselves).

A stored value without the ``fernet:`` prefix is a plaintext one from before this module (the
migration that introduced it seals them all; `rotate-secrets` seals any left): it is read as it
is, so a row written by older code never breaks deliveries or exports.
"""

import base64
from collections.abc import Sequence

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import Connection

PREFIX = "fernet:"
_PURPOSE = b"attune/secrets-at-rest/v1"


class UndecryptableSecret(Exception):
    """A stored secret that no configured key opens."""

    def __init__(self) -> None:
        super().__init__(
            "a stored secret cannot be decrypted: was ATTUNE_SECRET_KEY changed without listing "
            "the previous one in ATTUNE_SECRET_KEYS_OLD?"
        )


def derive_key(server_secret: str) -> bytes:
    """The Fernet key (urlsafe base64 of 32 bytes) for one server secret."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(
        server_secret.encode()
    )
    return base64.urlsafe_b64encode(raw)


class SecretBox:
    """Seals and opens stored secrets under the current server secret, and opens those sealed
    under the previous ones."""

    def __init__(self, current: str, old: Sequence[str] = ()) -> None:
        self._current = Fernet(derive_key(current))
        self._all = MultiFernet([self._current, *(Fernet(derive_key(s)) for s in old)])

    def seal(self, plaintext: str) -> str:
        return PREFIX + self._current.encrypt(plaintext.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # plaintext from before encryption at rest (see the module's docstring)
        try:
            return self._all.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise UndecryptableSecret from None

    def reseal(self, stored: str) -> str | None:
        """``stored`` sealed under the current key, or None when it already is."""
        if stored.startswith(PREFIX):
            try:
                self._current.decrypt(stored[len(PREFIX) :].encode())
                return None
            except InvalidToken:
                pass
        return self.seal(self.open(stored))


# Where secrets are stored: (what, table, column). Lightweight tables, so that the migrations
# that sealed them do not depend on today's models (each migration names its own columns).
StoredSecret = tuple[str, str, str]
STORED_SECRETS: tuple[StoredSecret, ...] = (
    ("export_secrets", "organizations", "export_secret"),
    ("webhook_secrets", "webhook_endpoints", "secret"),
    ("webhook_urls", "webhook_endpoints", "url"),
)


def reseal_stored_secrets(
    conn: Connection, box: SecretBox, columns: Sequence[StoredSecret] = STORED_SECRETS
) -> dict[str, int]:
    """Seal every stored secret of ``columns`` under the current key: plaintext ones (from
    before encryption at rest) and those sealed under an old key. How many of each kind changed.
    On a synchronous connection (Alembic's; `conn.run_sync` from async code), in the caller's
    transaction."""
    counts: dict[str, int] = {}
    for what, table_name, column in columns:
        table = sa.table(table_name, sa.column("id"), sa.column(column))
        changed = 0
        for row_id, value in conn.execute(sa.select(table.c.id, table.c[column])).all():
            sealed = box.reseal(value)
            if sealed is not None:
                conn.execute(sa.update(table).where(table.c.id == row_id).values({column: sealed}))
                changed += 1
        counts[what] = changed
    return counts

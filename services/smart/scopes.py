"""SMART scopes onto Attune scopes. Pure.

SMART App Launch 2.0 scopes for system access are ``system/<Type|*>.<cruds>`` (v2) or
``system/<Type|*>.<read|write|*>`` (v1), https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html.
Reading (``r``, ``s``) a type needs its Attune read scope, changing it (``c``, ``u``, ``d``) its
write scope. What is granted is what was asked for **and** what the client was registered with:
a scope the client may not hold is left out of the grant (RFC 6749 §3.3 lets the server grant
less), and the token response names exactly what was granted, one scope per type.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

# FHIR type → (scope to read it, scope to change it). "" needs only a key of the organisation
# (instrument definitions are not health data); None: not offered.
RESOURCES: dict[str, tuple[str | None, str | None]] = {
    "Patient": ("clients:read", "clients:write"),
    "Practitioner": ("clients:read", "clients:write"),
    "EpisodeOfCare": ("clients:read", "clients:write"),
    "Questionnaire": ("", None),
    "QuestionnaireResponse": ("submissions:read", "submissions:write"),
    "Observation": ("submissions:read", None),
    "DetectedIssue": ("alerts:read", "alerts:write"),
}
_ORDER = "cruds"
_READ, _WRITE = frozenset("rs"), frozenset("cud")
_SCOPE = re.compile(r"system/(\*|[A-Za-z]{1,64})\.(read|write|\*|c?r?u?d?s?)")
MAX_SCOPE_LENGTH = 2000


@dataclass(frozen=True)
class Grant:
    """The SMART scopes granted (for the token response) and the Attune scopes they carry."""

    smart: tuple[str, ...]
    attune: frozenset[str]


def _letters(permission: str) -> frozenset[str]:
    if permission == "read":
        return _READ
    if permission == "write":
        return _WRITE
    if permission == "*":
        return frozenset(_ORDER)
    return frozenset(permission)


def grant(requested: str, allowed: Iterable[str]) -> Grant:
    """The grant for a space-separated ``scope`` parameter and a client's registered scopes.
    Scopes this server does not know (other contexts, unknown types, query-parameter
    restrictions) are left out, as are letters the client's registration does not cover."""
    ceiling = frozenset(allowed)
    letters_by_type: dict[str, set[str]] = {}
    for token in requested.split(" ")[:100]:
        match = _SCOPE.fullmatch(token)
        if match is None or not match.group(2):
            continue
        kind, letters = match.group(1), _letters(match.group(2))
        for name in sorted(RESOURCES) if kind == "*" else [kind]:
            if name not in RESOURCES:
                continue
            read, write = RESOURCES[name]
            kept = letters_by_type.setdefault(name, set())
            if read is not None and (read == "" or read in ceiling):
                kept |= letters & _READ
            if write is not None and write in ceiling:
                kept |= letters & _WRITE
    smart, attune = [], set()
    for name in sorted(letters_by_type):
        kept = letters_by_type[name]
        if not kept:
            continue
        smart.append(f"system/{name}.{''.join(c for c in _ORDER if c in kept)}")
        read, write = RESOURCES[name]
        if kept & _READ and read:
            attune.add(read)
        if kept & _WRITE and write:
            attune.add(write)
    return Grant(tuple(smart), frozenset(attune))


def supported() -> list[str]:
    """The scopes the discovery document lists."""
    out = ["system/*.rs", "system/*.cruds"]
    for name, (_read, write) in sorted(RESOURCES.items()):
        out.append(f"system/{name}.rs")
        if write is not None:
            out.append(f"system/{name}.cud")
    return out

"""Built-in instrument definitions: one JSON file per instrument in ``definitions/``, validated
once."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType

from services.instruments.schema import InstrumentDefinition

DEFINITIONS_DIR = Path(__file__).parent / "definitions"


@cache
def _load() -> Mapping[str, InstrumentDefinition]:
    loaded: dict[str, InstrumentDefinition] = {}
    for path in sorted(DEFINITIONS_DIR.glob("*.json")):
        defn = InstrumentDefinition.model_validate_json(path.read_text(encoding="utf-8"))
        # The file name is the code, so a definition can be found by eye as well as by code.
        if path.stem != defn.code:
            raise ValueError(f"{path.name}: code '{defn.code}' does not match the file name")
        loaded[defn.code] = defn
    return MappingProxyType(loaded)


def builtin_instruments() -> dict[str, InstrumentDefinition]:
    """All built-in definitions by code (a fresh dict over the cached, immutable definitions)."""
    return dict(_load())


def get_builtin(code: str) -> InstrumentDefinition:
    """The built-in definition with this code; ``KeyError`` when there is none."""
    try:
        return _load()[code]
    except KeyError:
        raise KeyError(f"no built-in instrument '{code}'") from None

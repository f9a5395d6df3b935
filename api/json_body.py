"""Request bodies parsed as strict JSON (RFC 8259), before any schema sees them.

Python's parser is lenient where a health record cannot afford it: it keeps the last of two
equal keys (`{"answers": …, "answers": …}` would silently drop one set of answers), and it takes
UTF-16 and UTF-32 besides UTF-8. Here each is refused as invalid JSON, naming what is wrong; so
are nesting too deep for the parser and integers too long to convert, which would otherwise
surface as a bare 400.

`NaN`, `Infinity` and numbers out of range (`1e400`) are parsed, as non-finite floats, on
purpose: every field refuses them itself, naming the field (DESIGN.md §4: a NaN answer is a 422
naming the item), which a parse error could not.
"""

import json
from typing import Any

from starlette.requests import Request


class InvalidJSON(ValueError):
    """A body that is not acceptable JSON; `reason` is safe to show (it never quotes values)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise InvalidJSON(f"duplicate key {json.dumps(key[:64])}")
        seen.add(key)
    raise AssertionError("unreachable")


def loads(body: bytes) -> Any:
    """Parse `body` strictly; `json.JSONDecodeError` and `UnicodeDecodeError` pass through as
    the standard parser raises them, everything else refused is an `InvalidJSON`. UTF-8 only
    (RFC 8259 §8.1): the standard parser would also take UTF-16 and UTF-32."""
    try:
        return json.loads(body.decode(), object_pairs_hook=_object)
    except (json.JSONDecodeError, UnicodeDecodeError, InvalidJSON):
        raise
    except RecursionError:
        raise InvalidJSON("nested too deeply") from None
    except ValueError:  # an integer with more digits than Python converts
        raise InvalidJSON("a number has too many digits") from None


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json

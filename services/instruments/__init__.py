"""Instrument definitions (DESIGN.md §5): schema, validation and the built-in registry."""

from services.instruments.registry import builtin_instruments, get_builtin
from services.instruments.schema import (
    DefinitionProblems,
    Direction,
    InstrumentDefinition,
    Item,
    Population,
)

__all__ = [
    "DefinitionProblems",
    "Direction",
    "InstrumentDefinition",
    "Item",
    "Population",
    "builtin_instruments",
    "get_builtin",
]

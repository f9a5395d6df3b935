"""Retention: the worker removes what is no longer needed, on a schedule (DESIGN.md §10.7)."""

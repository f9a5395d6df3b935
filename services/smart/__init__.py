"""SMART Backend Services (DESIGN.md §10.6): system-to-system OAuth for EHRs.

Pure modules first: `scopes` (SMART ``system/…`` scopes onto Attune's), `assertions` (checking a
client's signed JWT), `discovery` (the ``.well-known/smart-configuration`` document); then the
stores: `clients` (registration by an admin) and `tokens` (the token endpoint's use case).
"""

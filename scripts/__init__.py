"""Reliability drills (run by scripts/outage and scripts/crash, as `python -m scripts.…`)."""

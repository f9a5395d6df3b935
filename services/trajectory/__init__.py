"""Trajectory analytics (DESIGN.md §7): reliable change, sudden gains, ruptures, per-episode
summary."""

from services.trajectory.analysis import Observation, Trajectory, build_trajectory
from services.trajectory.reliable_change import (
    jacobson_truax,
    min_reliable_change,
    rci,
    s_diff,
    s_e,
)
from services.trajectory.ruptures import Rupture, default_min_drop, find_ruptures
from services.trajectory.sudden_gains import SuddenChange, find_sudden_changes

__all__ = [
    "Observation",
    "Rupture",
    "SuddenChange",
    "Trajectory",
    "build_trajectory",
    "default_min_drop",
    "find_ruptures",
    "find_sudden_changes",
    "jacobson_truax",
    "min_reliable_change",
    "rci",
    "s_diff",
    "s_e",
]

"""Specialisation analysis: branches, critical points, learning curves, diagrams."""

from .diagram import DiagramRow, PhaseDiagram, phase_diagram
from .locate import LocatedPoint, LocationError, refine_alpha_mp
from .problem import SpecializationProblem, StationaryPointError
from .results import (
    CONVENTIONS,
    CriticalPoint,
    LearningCurve,
    SpecializationResult,
    StateBranch,
    Transition,
)
from .solve import SolveOptions, solve

__all__ = [
    "CONVENTIONS",
    "CriticalPoint",
    "DiagramRow",
    "LearningCurve",
    "LocatedPoint",
    "LocationError",
    "PhaseDiagram",
    "SolveOptions",
    "SpecializationProblem",
    "SpecializationResult",
    "StateBranch",
    "StationaryPointError",
    "Transition",
    "phase_diagram",
    "refine_alpha_mp",
    "solve",
]

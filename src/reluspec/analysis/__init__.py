"""Specialisation analysis: branches, critical points, learning curves, diagrams."""

from .diagram import DiagramRow, PhaseDiagram, phase_diagram
from .limit import (
    convergence_table,
    limit_critical_points,
    limit_states,
    trace_critical_curve,
)
from .locate import LocatedPoint, LocationError, refine_alpha_mp
from .partial import TwoGroupProblem, follow_partial_branch
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
from .stability import (
    FullStability,
    block_spectrum,
    find_full_space_bifurcations,
    full_space_stability,
    label_branch,
)

__all__ = [
    "CONVENTIONS",
    "FullStability",
    "TwoGroupProblem",
    "block_spectrum",
    "convergence_table",
    "limit_critical_points",
    "limit_states",
    "trace_critical_curve",
    "find_full_space_bifurcations",
    "follow_partial_branch",
    "full_space_stability",
    "label_branch",
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

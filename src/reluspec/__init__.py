"""reluspec: specialisation in soft committee machines at high temperature.

The layers, bottom to top: Cython kernels of the Gaussian integrals
(``reluspec._kernels``), activations, order parameters, theory (generalisation
error, entropy, free energy), a generic continuation solver, and the
specialisation analysis with its results, plots and command line.
"""

__version__ = "0.1.0"

from .activations import Activation, Erf, ReLU, activation
from .analysis import (
    CriticalPoint,
    LearningCurve,
    PhaseDiagram,
    SolveOptions,
    SpecializationProblem,
    SpecializationResult,
    StateBranch,
    Transition,
    block_spectrum,
    convergence_table,
    find_full_space_bifurcations,
    full_space_stability,
    limit_critical_points,
    phase_diagram,
    solve,
    trace_critical_curve,
)
from .continuation import (
    PALC,
    Branch,
    ContinuationError,
    ContinuationOptions,
    ContinuationProblem,
    SpecialPoint,
    continuation,
    switch_branch,
)
from .theory import (
    entropy,
    free_energy,
    free_energy_gradient,
    generalization_error,
    generalization_error_gradient,
    symmetric_entropy,
    symmetric_free_energy,
    symmetric_free_energy_gradient,
    symmetric_free_energy_hessian,
    symmetric_generalization_error,
    symmetric_generalization_error_gradient,
    symmetric_generalization_error_hessian,
)

__all__ = [
    "Activation",
    "Branch",
    "ContinuationError",
    "ContinuationOptions",
    "ContinuationProblem",
    "CriticalPoint",
    "Erf",
    "LearningCurve",
    "PALC",
    "PhaseDiagram",
    "ReLU",
    "SolveOptions",
    "SpecialPoint",
    "SpecializationProblem",
    "SpecializationResult",
    "StateBranch",
    "Transition",
    "activation",
    "block_spectrum",
    "convergence_table",
    "find_full_space_bifurcations",
    "full_space_stability",
    "limit_critical_points",
    "continuation",
    "entropy",
    "free_energy",
    "free_energy_gradient",
    "generalization_error",
    "generalization_error_gradient",
    "phase_diagram",
    "solve",
    "switch_branch",
    "symmetric_entropy",
    "symmetric_free_energy",
    "symmetric_free_energy_gradient",
    "symmetric_free_energy_hessian",
    "symmetric_generalization_error",
    "symmetric_generalization_error_gradient",
    "symmetric_generalization_error_hessian",
    "trace_critical_curve",
]

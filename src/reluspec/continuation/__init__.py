"""Numerical continuation of F(u, p) = 0 with folds, branch points and stability.

A generic pseudo-arclength solver, independent of the model it serves:

* :class:`ContinuationProblem` contains the residual, its derivatives and a
  start; :class:`PALC` is the algorithm and :class:`ContinuationOptions` the
  options; :func:`continuation` returns a :class:`Branch` with its
  :class:`SpecialPoint` objects;
* :func:`switch_branch` starts the branch crossing at a simple branch point;
* :func:`newton` is the Newton solver the correctors use.

Example
-------
>>> import numpy as np
>>> problem = ContinuationProblem(
...     residual=lambda u, p: u**2 - p,
...     jacobian=lambda u, p: np.diag(2 * u),
...     u0=[1.0],
...     p0=1.0,
... )
>>> branch = continuation(problem, PALC(), ContinuationOptions(p_max=1.0, direction=-1))
>>> fold = branch.special("fold")[0]
>>> abs(fold.p) < 1e-12
True
"""

from ._newton import newton
from .branch import Branch, SpecialPoint
from .errors import ContinuationError, ConvergenceWarning
from .options import PALC, ContinuationOptions
from .problem import ContinuationProblem
from .solver import continuation
from .switching import switch_branch

__all__ = [
    "Branch",
    "ContinuationError",
    "ContinuationOptions",
    "ContinuationProblem",
    "ConvergenceWarning",
    "PALC",
    "SpecialPoint",
    "continuation",
    "newton",
    "switch_branch",
]

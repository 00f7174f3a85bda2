"""Activation functions and the Gaussian integrals of their outputs.

Each activation ``g`` provides, for jointly Gaussian fields ``(u, v)`` with zero
mean, variances ``c11``, ``c22`` and covariance ``c12``:

* the pair correlation ``I(c11, c12, c22) = <g(u) g(v)>`` and its first and
  second derivatives with respect to the covariance entries (Cython kernels);
* the mean ``<g(u)>`` and its derivative with respect to ``c11``;
* the unit-variance pair correlation ``I(rho) = I(1, rho, 1)`` with its
  derivatives in ``rho``, which is all the site-symmetric theory needs;
* the same quantities in mpmath at any working precision ``dps``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

__all__ = ["Activation", "activation"]


class Activation(ABC):
    """Interface shared by all activations.

    Array methods accept anything numpy can broadcast and return float64
    arrays (0-d inputs give 0-d arrays). Invalid covariances raise
    ``ValueError`` naming the value and the valid range.
    """

    #: Name used by :func:`activation` and the command line.
    name: str = ""

    # -- the function itself, for simulations -------------------------------
    @abstractmethod
    def __call__(self, x): ...

    @abstractmethod
    def derivative(self, x): ...

    # -- pair correlation for a general 2x2 covariance ----------------------
    @abstractmethod
    def pair(self, c11, c12, c22): ...

    @abstractmethod
    def pair_gradient(self, c11, c12, c22):
        """Return ``(dI/dc11, dI/dc12, dI/dc22)``."""

    @abstractmethod
    def pair_hessian(self, c11, c12, c22):
        """Return the six second derivatives
        ``(I_11_11, I_11_12, I_11_22, I_12_12, I_12_22, I_22_22)``."""

    @abstractmethod
    def mean(self, c11): ...

    @abstractmethod
    def mean_derivative(self, c11): ...

    # -- unit variances, correlation rho ------------------------------------
    @abstractmethod
    def unit_pair(self, rho):
        """Return ``I(1, rho, 1)``."""

    @abstractmethod
    def unit_pair_derivative(self, rho, order=1):
        """Return ``d^order I(1, rho, 1) / d rho^order`` for order 1, 2 or 3."""

    @abstractmethod
    def unit_pair_deficit(self, delta):
        """Return ``I(1, 1, 1) - I(1, 1 - delta, 1)`` for ``0 <= delta <= 2``,
        to full relative precision when ``delta`` is small."""

    # -- mpmath versions -----------------------------------------------------
    @abstractmethod
    def pair_mp(self, c11, c12, c22, dps=50): ...

    @abstractmethod
    def pair_gradient_mp(self, c11, c12, c22, dps=50): ...

    @abstractmethod
    def pair_hessian_mp(self, c11, c12, c22, dps=50): ...

    @abstractmethod
    def mean_mp(self, c11, dps=50): ...

    @abstractmethod
    def unit_pair_mp(self, rho, dps=50): ...

    @abstractmethod
    def unit_pair_derivative_mp(self, rho, order=1, dps=50): ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self).__name__)


_REGISTRY: dict[str, type[Activation]] = {}


def activation(name: str) -> Activation:
    """Return a new activation looked up by ``name`` (case-insensitive)."""
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        valid = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown activation {name!r}; valid names are: {valid}")
    return _REGISTRY[key]()


def _as_float_array(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)

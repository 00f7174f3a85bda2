"""Newton's method with a max-norm residual test, shared by all correctors."""

from __future__ import annotations

import logging

import numpy as np

from .errors import ContinuationError

__all__ = ["newton"]

logger = logging.getLogger(__name__)


def newton(residual, jacobian, x0, tol=1e-10, max_iter=20):
    r"""Solve ``residual(x) = 0`` by Newton's method.

    The iteration :math:`x_{k+1} = x_k - J(x_k)^{-1} F(x_k)` stops as soon as
    :math:`\|F(x_k)\|_\infty \le` ``tol``; the residual is evaluated at the
    returned point, so the returned ``x`` always satisfies the test.

    Parameters
    ----------
    residual : callable
        ``residual(x) -> ndarray`` of the same shape as ``x``.
    jacobian : callable
        ``jacobian(x) -> ndarray`` of shape ``(x.size, x.size)``.
    x0 : array_like
        Initial guess, a 1-D array of finite floats.
    tol : float, default 1e-10
        Max-norm tolerance on the residual.
    max_iter : int, default 20
        Maximum number of Newton updates (linear solves).

    Returns
    -------
    x : ndarray
        The converged point.
    iterations : int
        Number of Newton updates performed (0 when ``x0`` already satisfies
        the tolerance).

    Raises
    ------
    ContinuationError
        If the residual or the update is NaN or infinite, the Jacobian is
        singular, or the tolerance is not met after ``max_iter`` updates. The
        exception carries ``residual_norm``, ``iterations`` and ``point``.
    ValueError
        If ``tol`` or ``max_iter`` is out of range, or the shapes returned by
        ``residual`` or ``jacobian`` do not match ``x0``.
    """
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol={tol!r} is invalid: it must be a finite number > 0")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)):
        raise ValueError(
            f"max_iter={max_iter!r} is invalid: it must be an integer >= 0"
        )
    if max_iter < 0:
        raise ValueError(
            f"max_iter={max_iter!r} is invalid: it must be an integer >= 0"
        )
    x = np.array(x0, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x0 must be a non-empty 1-D array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x0 contains NaN or infinite entries")
    return _newton(residual, jacobian, x, tol, max_iter, check_shapes=True)


def _newton(
    residual, jacobian, x, tol, max_iter, check_shapes=False, debug=False, polish=False
):
    """Run Newton's method on a float array ``x`` without validating options.

    With ``polish``, Newton updates continue after the tolerance is met for as
    long as each one at least halves the residual (at most ``_POLISH_MAX``).
    Near a singular point, such as a branch point, Newton's method converges
    only linearly, so a small residual does not imply a small error there.
    Polishing drives the error down to rounding level. The returned iteration
    count excludes the polishing updates.
    """
    n = x.size
    norm = np.inf
    for iteration in range(max_iter + 1):
        r = np.asarray(residual(x), dtype=float)
        if check_shapes and r.shape != (n,):
            raise ValueError(
                f"residual returned shape {r.shape}, expected ({n},) to match x0"
            )
        norm = float(np.max(np.abs(r)))
        if debug:
            logger.debug("Newton iteration %d: residual norm %.3e", iteration, norm)
        if not np.isfinite(norm):
            raise ContinuationError(
                f"the residual is NaN or infinite after {iteration} Newton "
                "iterations; the iterate left the domain where the residual is "
                "defined",
                residual_norm=norm,
                iterations=iteration,
                point=x,
            )
        if norm <= tol:
            if polish:
                x = _polish(residual, jacobian, x, r, norm)
            return x, iteration
        if iteration == max_iter:
            break
        jac = np.asarray(jacobian(x), dtype=float)
        if check_shapes and jac.shape != (n, n):
            raise ValueError(
                f"jacobian returned shape {jac.shape}, expected ({n}, {n})"
            )
        try:
            dx = np.linalg.solve(jac, r)
        except np.linalg.LinAlgError:
            raise ContinuationError(
                f"the Jacobian is singular at Newton iteration {iteration} "
                f"(residual norm {norm:.3e})",
                residual_norm=norm,
                iterations=iteration,
                point=x,
            ) from None
        if not np.all(np.isfinite(dx)):
            raise ContinuationError(
                f"the Newton update is NaN or infinite at iteration {iteration} "
                f"(residual norm {norm:.3e}); the Jacobian is singular or "
                "contains NaN",
                residual_norm=norm,
                iterations=iteration,
                point=x,
            )
        x = x - dx
    raise ContinuationError(
        f"Newton's method did not converge in {max_iter} iterations: residual "
        f"norm {norm:.3e} > tol {tol:.1e}",
        residual_norm=norm,
        iterations=max_iter,
        point=x,
    )


_POLISH_MAX = 30


def _polish(residual, jacobian, x, r, norm):
    """Apply Newton updates while each one at least halves the residual norm."""
    for _ in range(_POLISH_MAX):
        if norm == 0.0:
            break
        try:
            candidate = x - np.linalg.solve(np.asarray(jacobian(x), dtype=float), r)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(candidate)):
            break
        candidate_r = np.asarray(residual(candidate), dtype=float)
        candidate_norm = float(np.max(np.abs(candidate_r)))
        if not candidate_norm <= 0.5 * norm:
            break
        x, r, norm = candidate, candidate_r, candidate_norm
    return x

"""Linear algebra at one point of a branch: tangent, test functions, stability."""

from __future__ import annotations

import numpy as np

from .problem import _System

# Relative singular-value threshold below which a matrix counts as singular
# when the tangent has to be taken from a null space.
_RANK_TOL = 1e3 * np.finfo(float).eps


def null_space_tangent(jac_z: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Return the unit vector of the null space of ``jac_z`` closest to ``reference``.

    At a regular point the null space of the n x (n+1) matrix is the tangent
    line. At a branch point it is larger, and the projection of the reference
    direction (the predictor) picks the direction of the branch being traced.
    """
    n = jac_z.shape[0]
    _, sing, vh = np.linalg.svd(jac_z)
    if sing.size == 0 or sing[0] == 0.0:
        rank = 0
    else:
        rank = int(np.count_nonzero(sing > _RANK_TOL * sing[0]))
    basis = vh[rank:].T
    tangent = basis @ (basis.T @ reference)
    norm = np.linalg.norm(tangent)
    if norm <= _RANK_TOL * np.linalg.norm(reference):
        tangent = basis[:, -1] if rank < n + 1 else reference.copy()
        norm = np.linalg.norm(tangent)
        if tangent @ reference < 0:
            tangent = -tangent
    return tangent / norm


def bordered_tangent(jac_z: np.ndarray, reference: np.ndarray) -> np.ndarray:
    r"""Solve :math:`[F_z; r^T]\,\tau = e_{n+1}` and normalise, so that
    :math:`\tau \cdot r > 0`.

    Falls back to :func:`null_space_tangent` when the bordered matrix is
    singular, which happens exactly at branch points.
    """
    n = jac_z.shape[0]
    bordered = np.vstack([jac_z, reference])
    rhs = np.zeros(n + 1)
    rhs[n] = 1.0
    try:
        tangent = np.linalg.solve(bordered, rhs)
    except np.linalg.LinAlgError:
        return null_space_tangent(jac_z, reference)
    norm = np.linalg.norm(tangent)
    if not (np.isfinite(norm) and norm > 0):
        return null_space_tangent(jac_z, reference)
    return tangent / norm


def _is_symmetric(matrix: np.ndarray) -> bool:
    scale = float(np.max(np.abs(matrix))) if matrix.size else 0.0
    return bool(np.max(np.abs(matrix - matrix.T)) <= 1e-10 * max(scale, 1e-300))


def sorted_eigenvalues(matrix: np.ndarray) -> np.ndarray:
    """Return the eigenvalues sorted by real part (real dtype when symmetric)."""
    if _is_symmetric(matrix):
        return np.linalg.eigvalsh(0.5 * (matrix + matrix.T))
    values = np.linalg.eigvals(matrix)
    order = np.lexsort((values.imag, values.real))
    values = values[order]
    if np.all(values.imag == 0.0):
        return values.real.copy()
    return values


class PointData:
    """A corrected point with its exact tangent and lazily computed tests.

    Attributes
    ----------
    z : ndarray
        ``(u, q)``, shape ``(n + 1,)``.
    tangent : ndarray
        Unit tangent, oriented along the predictor of the step that reached z.
    jac_z : ndarray
        ``[F_u, F_q]`` at z, shape ``(n, n + 1)``.
    jac_eigenvalues : ndarray
        Eigenvalues of ``F_u`` sorted by real part.
    n_negative_jac : int
        Number of eigenvalues of ``F_u`` with negative real part.
    stability_eigenvalues : ndarray
        Eigenvalues of the stability matrix (or of ``F_u`` without one).
    n_unstable : int
        Number of negative (real parts of) stability eigenvalues.
    det_sign : float
        Sign of ``det [F_z; tangent^T]``: -1, 0 or +1.
    """

    def __init__(self, system: _System, z: np.ndarray, reference, *, tangent=None):
        self.z = z
        self.p = system.parameter(z[system.n])
        self._bordered_test = None
        self._jac_z_norm = None
        arrays = getattr(system.problem.stepper, "point_arrays", None)
        if arrays is not None and system.n == 3:
            self._from_compiled(arrays, reference, tangent)
            return
        self.jac_z = system.jacobian_z(z)
        if not np.all(np.isfinite(self.jac_z)):
            raise FloatingPointError(
                f"the Jacobian [F_u, F_p] at p={self.p:.6g} contains NaN or inf"
            )
        if tangent is None:
            tangent = bordered_tangent(self.jac_z, reference)
        self.tangent = tangent
        n = system.n
        jac_u = self.jac_z[:, :n]
        self.jac_eigenvalues = sorted_eigenvalues(jac_u)
        self.n_negative_jac = int(np.count_nonzero(self.jac_eigenvalues.real < 0))
        if system.has_stability_matrix:
            stab = system.stability_matrix(z[:n], self.p)
            if not np.all(np.isfinite(stab)):
                raise FloatingPointError(
                    f"the stability matrix at p={self.p:.6g} contains NaN or inf"
                )
            self.stability_eigenvalues = np.linalg.eigvalsh(0.5 * (stab + stab.T))
        else:
            self.stability_eigenvalues = self.jac_eigenvalues
        self.n_unstable = int(np.count_nonzero(self.stability_eigenvalues.real < 0))
        sign, _ = np.linalg.slogdet(np.vstack([self.jac_z, self.tangent]))
        self.det_sign = float(sign)

    def _from_compiled(self, arrays, reference, tangent):
        """Set the Jacobian, tangent, spectra and determinant sign from the
        problem's compiled stepper (see ``symmetric_palc_point``)."""
        has_tangent = tangent is not None
        out = arrays(self.z, tangent if has_tangent else reference, has_tangent)
        if out is None:
            raise FloatingPointError(
                f"the Jacobian [F_u, F_p] at p={self.p:.6g} is not defined: the "
                "state lies outside the domain of the residual"
            )
        self.jac_z = out[:12].reshape(3, 4)
        self.tangent = np.array(tangent, dtype=float) if has_tangent else out[12:16]
        self.jac_eigenvalues = out[16:19]
        self.n_negative_jac = int(np.count_nonzero(self.jac_eigenvalues < 0))
        self.stability_eigenvalues = out[19:22]
        self.n_unstable = int(np.count_nonzero(self.stability_eigenvalues < 0))
        self.det_sign = float(out[22])

    @property
    def u(self) -> np.ndarray:
        return self.z[:-1]

    @property
    def q(self) -> float:
        return float(self.z[-1])

    @property
    def bordered_test(self) -> float:
        r"""Branch-point test :math:`\mathrm{sign}(\det B)\,\sigma_{\min}(B)`.

        :math:`B = [F_z; \tau^T]` is non-singular at regular points and folds,
        and singular at branch points, where its determinant changes sign
        along the branch (see the module docstring of ``events``). The
        smallest singular value gives the test the scale of ``F_z`` and makes
        it vanish also where the determinant underflows.
        """
        if self._bordered_test is None:
            bordered = np.vstack([self.jac_z, self.tangent])
            sigma_min = float(np.linalg.svd(bordered, compute_uv=False)[-1])
            self._bordered_test = self.det_sign * sigma_min
        return self._bordered_test

    @property
    def jac_z_norm(self) -> float:
        """Largest singular value of ``[F_u, F_q]``, the scale of the tests."""
        if self._jac_z_norm is None:
            self._jac_z_norm = float(np.linalg.norm(self.jac_z, 2))
        return self._jac_z_norm

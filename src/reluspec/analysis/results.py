"""Result containers of the specialisation analysis, with CSV and JSON output.

Every container is a plain dataclass of numbers and numpy arrays. A
:class:`SpecializationResult` written with :meth:`SpecializationResult.to_json`
reads back with :meth:`SpecializationResult.from_json` into an equal object,
so that saved results can be plotted without solving again.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "StateBranch",
    "CriticalPoint",
    "Transition",
    "LearningCurve",
    "SpecializationResult",
    "CONVENTIONS",
]

#: Conventions stored with every result, so that a saved file is self-describing.
CONVENTIONS = {
    "student": "sigma(xi) = K^{-1/2} sum_k g(J_k . xi / sqrt(N)), Q_kk = 1",
    "teacher": "tau(xi) = K^{-1/2} sum_m g(B_m . xi / sqrt(N)), T = identity",
    "ansatz": "R_km = R delta_km + S (1 - delta_km), Q_kl = delta_kl + C (1 - delta_kl)",
    "generalization_error": "eps_g = <(sigma - tau)^2> / 2",
    "free_energy": "F = K alpha eps_g - s, s = (1/2) ln det(Q - R R^T)",
    "alpha": "alpha = beta P / (K N)",
    "relu": "g(x) = max(0, x)",
    "erf": "g(x) = erf(x / sqrt(2))",
}

_STATE_FIELDS = ("R", "S", "C", "generalization_error", "free_energy")


def _array(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _jsonable(value):
    """Convert numpy values and non-finite floats to JSON-safe objects."""
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.floating, float)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _float(value) -> float:
    return float(value)  # float("nan") and float("inf") parse the strings above


def _optional_float(value) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class StateBranch:
    """A branch of stationary points of the site-symmetric free energy.

    Attributes
    ----------
    name : str
        ``"unspecialized"``, ``"specialized R>S"`` or ``"specialized R<S"``;
        a suffix ``" #2"`` and so on distinguishes several branches of one kind.
    alpha, R, S, C, generalization_error, free_energy : ndarray
        Values along the branch, in the order the continuation traced them
        (``alpha`` need not be monotone: folds turn it back).
    n_unstable : ndarray of int
        Number of negative eigenvalues of the 3x3 Hessian of the free energy
        in (R, S, C); 0 marks a local minimum inside the ansatz.
    equilibrium : ndarray of bool
        True where the state is the global minimum of F among all states
        found at that alpha that are stable by the label ``stability``.
    n_unstable_full : ndarray of int
        Number of negative eigenvalues of the Hessian of F in the full space
        of all entries of R and of the off-diagonal entries of Q, counted
        with multiplicity (-1 where it was not computed).
    stability_note : tuple of str
        Per point, the full-space label with the symmetry blocks of the
        unstable directions, for example ``"unstable outside the ansatz
        only: 2 directions (standard 1 x 2)"``.
    stability : str
        ``"full"`` or ``"ansatz"``: the label that :attr:`stable` and
        ``equilibrium`` use.
    """

    name: str
    alpha: np.ndarray
    R: np.ndarray
    S: np.ndarray
    C: np.ndarray
    generalization_error: np.ndarray
    free_energy: np.ndarray
    n_unstable: np.ndarray
    equilibrium: np.ndarray
    n_unstable_full: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    stability_note: tuple = ()
    stability: str = "ansatz"

    @property
    def stable(self) -> np.ndarray:
        """Boolean array: True where the state is a local minimum, in the full
        space or inside the ansatz as :attr:`stability` selects."""
        if self.stability == "full":
            return self.n_unstable_full == 0
        return self.n_unstable == 0

    def to_dict(self) -> dict:
        out = {"name": self.name, "stability": self.stability}
        for key in (
            "alpha",
            *_STATE_FIELDS,
            "n_unstable",
            "equilibrium",
            "n_unstable_full",
        ):
            out[key] = _jsonable(getattr(self, key))
        out["stability_note"] = list(self.stability_note)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> StateBranch:
        arrays = {
            key: np.array([_float(v) for v in data[key]])
            for key in ("alpha", *_STATE_FIELDS)
        }
        return cls(
            name=data["name"],
            n_unstable=np.asarray(data["n_unstable"], dtype=np.int64),
            equilibrium=np.asarray(data["equilibrium"], dtype=bool),
            n_unstable_full=np.asarray(data.get("n_unstable_full", []), dtype=np.int64),
            stability_note=tuple(data.get("stability_note", ())),
            stability=data.get("stability", "ansatz"),
            **arrays,
        )


@dataclass(frozen=True)
class CriticalPoint:
    """A special point of the phase diagram at one value of alpha.

    Attributes
    ----------
    kind : str
        ``"branch_point"`` (a specialised branch leaves the unspecialised one),
        ``"fold"`` (a branch turns back in alpha: a spinodal) or
        ``"first_order"`` (two locally stable states have equal free energy)
        or ``"symmetry_breaking"`` (the full-space Hessian becomes singular
        in a block that breaks the permutation symmetry of the ansatz).
    alpha : float
        Location of the point.
    alpha_error : float
        Bound on the absolute error of the double ``alpha``: the size of the
        last Newton correction of the augmented system that defines the point
        (zero when that correction underflowed). For a refined point it is
        the larger of :attr:`alpha_high_precision_error` and half an ulp of
        ``alpha``, the rounding of the refined value to a double.
    branches : tuple of str
        Names of the branches involved.
    states : dict
        For each involved branch name, a dict with ``R, S, C,
        generalization_error, free_energy`` at ``alpha``.
    residual : float
        Max-norm of the defining equations at the reported point.
    alpha_high_precision : str
        Decimal digits of ``alpha`` from the mpmath refinement, or ``""``
        when the point was not refined.
    note : str
        For ``"symmetry_breaking"`` points (where a block of the full-space
        Hessian outside the ansatz becomes singular), the block and the
        multiplicity; empty otherwise.
    alpha_high_precision_error : float or None
        Estimated absolute error of the digits in
        :attr:`alpha_high_precision`, from the last correction of the mpmath
        Newton iteration; None for a point that was not refined.

    Notes
    -----
    A refined point constructed without ``alpha_high_precision_error``, as
    :func:`reluspec.solve` does and as JSON files without that field are
    read, takes the given ``alpha_error`` as the error of the digits, and
    ``alpha_error`` becomes at least half an ulp of ``alpha``.
    """

    kind: str
    alpha: float
    alpha_error: float
    branches: tuple
    states: dict
    residual: float
    alpha_high_precision: str = ""
    note: str = ""
    alpha_high_precision_error: float | None = None

    def __post_init__(self):
        if not self.alpha_high_precision:
            return
        if self.alpha_high_precision_error is None:
            object.__setattr__(self, "alpha_high_precision_error", self.alpha_error)
        rounding = 0.5 * math.ulp(self.alpha)
        object.__setattr__(self, "alpha_error", max(self.alpha_error, rounding))

    def to_dict(self) -> dict:
        return _jsonable(
            {
                "kind": self.kind,
                "alpha": self.alpha,
                "alpha_error": self.alpha_error,
                "branches": list(self.branches),
                "states": self.states,
                "residual": self.residual,
                "alpha_high_precision": self.alpha_high_precision,
                "alpha_high_precision_error": self.alpha_high_precision_error,
                "note": self.note,
            }
        )

    @classmethod
    def from_dict(cls, data: dict) -> CriticalPoint:
        states = {
            name: {key: _float(v) for key, v in state.items()}
            for name, state in data["states"].items()
        }
        return cls(
            kind=data["kind"],
            alpha=_float(data["alpha"]),
            alpha_error=_float(data["alpha_error"]),
            branches=tuple(data["branches"]),
            states=states,
            residual=_float(data["residual"]),
            alpha_high_precision=data.get("alpha_high_precision", ""),
            note=data.get("note", ""),
            alpha_high_precision_error=_optional_float(
                data.get("alpha_high_precision_error")
            ),
        )


@dataclass(frozen=True)
class Transition:
    """A change of the equilibrium state (the global minimum of F) with alpha.

    Attributes
    ----------
    kind : str
        ``"continuous"`` when the equilibrium state changes branch at a branch
        point without a jump, ``"first_order"`` when it jumps between two
        locally stable states of equal free energy.
    alpha : float
        Location; for a first-order transition the equal-free-energy point.
    alpha_error : float
        Bound on the absolute error of ``alpha``.
    before, after : str
        Names of the equilibrium branches below and above ``alpha``.
    jump : float
        Change of the generalisation error across the transition (after minus
        before); zero for a continuous transition.
    spinodals : tuple of float
        For a first-order transition, the alpha values bounding the
        coexistence of the two states: where the state of ``after`` appears
        (its fold or branch point) and where the state of ``before`` loses
        stability (nan when that does not happen in the solved range).
    """

    kind: str
    alpha: float
    alpha_error: float
    before: str
    after: str
    jump: float
    spinodals: tuple = ()

    def __post_init__(self):
        # Plain floats, so that CSV, JSON and repr show numbers the same way
        # whatever numpy scalar type a computation produced.
        for name in ("alpha", "alpha_error", "jump"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "spinodals", tuple(float(a) for a in self.spinodals))

    def to_dict(self) -> dict:
        return _jsonable(
            {
                "kind": self.kind,
                "alpha": self.alpha,
                "alpha_error": self.alpha_error,
                "before": self.before,
                "after": self.after,
                "jump": self.jump,
                "spinodals": list(self.spinodals),
            }
        )

    @classmethod
    def from_dict(cls, data: dict) -> Transition:
        return cls(
            kind=data["kind"],
            alpha=_float(data["alpha"]),
            alpha_error=_float(data["alpha_error"]),
            before=data["before"],
            after=data["after"],
            jump=_float(data["jump"]),
            spinodals=tuple(_float(v) for v in data["spinodals"]),
        )


@dataclass(frozen=True)
class LearningCurve:
    """The equilibrium state versus alpha.

    At each alpha the equilibrium is the site-symmetric state of least F
    among those that are locally stable, in the full space of R and Q or
    inside the ansatz as the ``stability`` argument of the solve selects
    (full space by default). ``branch[i]`` names the branch of the
    equilibrium at ``alpha[i]``; the grid contains both ends of every first-order jump, so a plot of
    ``generalization_error`` against ``alpha`` shows the jump as a vertical
    step.
    """

    alpha: np.ndarray
    R: np.ndarray
    S: np.ndarray
    C: np.ndarray
    generalization_error: np.ndarray
    free_energy: np.ndarray
    branch: tuple

    def to_dict(self) -> dict:
        out = {key: _jsonable(getattr(self, key)) for key in ("alpha", *_STATE_FIELDS)}
        out["branch"] = list(self.branch)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> LearningCurve:
        arrays = {
            key: np.array([_float(v) for v in data[key]])
            for key in ("alpha", *_STATE_FIELDS)
        }
        return cls(branch=tuple(data["branch"]), **arrays)


@dataclass(frozen=True)
class SpecializationResult:
    """Everything :func:`reluspec.solve` finds for one activation and one K.

    Attributes
    ----------
    activation : str
        Name of the activation (``"relu"`` or ``"erf"``).
    K : int
        Number of hidden units of student and teacher.
    alpha_range : tuple of float
        The requested range of alpha.
    branches : list of StateBranch
        Every branch found.
    critical_points : list of CriticalPoint
        Branch points, folds and equal-free-energy points, sorted by alpha.
    transitions : list of Transition
        Changes of the equilibrium state, sorted by alpha.
    learning_curve : LearningCurve
        The equilibrium state on a grid of alpha.
    metadata : dict
        Package version and the conventions of :data:`CONVENTIONS`.
    """

    activation: str
    K: int
    alpha_range: tuple
    branches: list
    critical_points: list
    transitions: list
    learning_curve: LearningCurve
    metadata: dict = field(default_factory=dict)

    def branch(self, name: str) -> StateBranch:
        """Return the branch called ``name``; raise KeyError listing the names."""
        for candidate in self.branches:
            if candidate.name == name:
                return candidate
        names = ", ".join(repr(b.name) for b in self.branches)
        raise KeyError(f"no branch named {name!r}; this result has {names}")

    # -- JSON -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "activation": self.activation,
            "K": int(self.K),
            "alpha_range": _jsonable(list(self.alpha_range)),
            "branches": [b.to_dict() for b in self.branches],
            "critical_points": [p.to_dict() for p in self.critical_points],
            "transitions": [t.to_dict() for t in self.transitions],
            "learning_curve": self.learning_curve.to_dict(),
            "metadata": _jsonable(self.metadata),
        }

    def to_json(self, path=None, indent: int | None = 1) -> str:
        """Return the result as a JSON string and write it to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, data: dict) -> SpecializationResult:
        required = ("activation", "K", "alpha_range", "branches", "learning_curve")
        missing = [key for key in required if key not in data]
        if missing:
            raise ValueError(
                f"not a reluspec result: the fields {', '.join(missing)} are missing"
            )
        return cls(
            activation=data["activation"],
            K=int(data["K"]),
            alpha_range=tuple(_float(v) for v in data["alpha_range"]),
            branches=[StateBranch.from_dict(b) for b in data["branches"]],
            critical_points=[
                CriticalPoint.from_dict(p) for p in data["critical_points"]
            ],
            transitions=[Transition.from_dict(t) for t in data["transitions"]],
            learning_curve=LearningCurve.from_dict(data["learning_curve"]),
            metadata=data.get("metadata", {}),
        )

    @classmethod
    def from_json(cls, source) -> SpecializationResult:
        """Read a result from a JSON string or from the path of a JSON file."""
        text = str(source)
        if not text.lstrip().startswith("{"):
            text = Path(source).read_text()
        return cls.from_dict(json.loads(text))

    # -- CSV --------------------------------------------------------------------
    def critical_points_csv(self, path=None) -> str:
        """Return the critical points and transitions as CSV and write it to
        ``path``.

        One row per critical point, then one per transition (kind
        ``transition:continuous`` or ``transition:first_order``). Columns:
        activation, K, kind, alpha (a double), alpha_error (the error of that
        double, at least half an ulp for a refined point),
        alpha_high_precision (digits of the mpmath refinement, or empty),
        alpha_high_precision_error (the error of those digits, or empty),
        branches (separated by ``; ``, ``before -> after`` for transitions),
        note, jump (change of eps_g at a transition, empty for critical
        points).
        """
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(
            [
                "activation",
                "K",
                "kind",
                "alpha",
                "alpha_error",
                "alpha_high_precision",
                "alpha_high_precision_error",
                "branches",
                "note",
                "jump",
            ]
        )
        for p in self.critical_points:
            writer.writerow(
                [
                    self.activation,
                    self.K,
                    p.kind,
                    repr(float(p.alpha)),
                    repr(float(p.alpha_error)),
                    p.alpha_high_precision,
                    (
                        repr(float(p.alpha_high_precision_error))
                        if p.alpha_high_precision
                        else ""
                    ),
                    "; ".join(p.branches),
                    p.note,
                    "",
                ]
            )
        for t in self.transitions:
            writer.writerow(
                [
                    self.activation,
                    self.K,
                    f"transition:{t.kind}",
                    repr(float(t.alpha)),
                    repr(float(t.alpha_error)),
                    "",
                    "",
                    f"{t.before} -> {t.after}",
                    "",
                    repr(float(t.jump)),
                ]
            )
        text = buffer.getvalue()
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_csv(self, path=None) -> str:
        """Return the branches as CSV, one row per point, and write it to ``path``.

        Columns: activation, K, branch, alpha, R, S, C, generalization_error,
        free_energy, n_unstable (inside the ansatz), n_unstable_full (full
        space), stable (by the result's stability label), equilibrium,
        stability_note. ``equilibrium`` is 1 on the point of a branch whose
        state is the global minimum of F.
        """
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(
            [
                "activation",
                "K",
                "branch",
                "alpha",
                *_STATE_FIELDS,
                "n_unstable",
                "n_unstable_full",
                "stable",
                "equilibrium",
                "stability_note",
            ]
        )
        for b in self.branches:
            stable = b.stable
            full = (
                b.n_unstable_full
                if len(b.n_unstable_full)
                else np.full(len(b.alpha), -1)
            )
            notes = b.stability_note if b.stability_note else ("",) * len(b.alpha)
            for i in range(len(b.alpha)):
                writer.writerow(
                    [
                        self.activation,
                        self.K,
                        b.name,
                        repr(float(b.alpha[i])),
                        *(repr(float(getattr(b, key)[i])) for key in _STATE_FIELDS),
                        int(b.n_unstable[i]),
                        int(full[i]),
                        int(stable[i]),
                        int(b.equilibrium[i]),
                        notes[i],
                    ]
                )
        text = buffer.getvalue()
        if path is not None:
            Path(path).write_text(text)
        return text

    def summary(self) -> str:
        """Return a readable table of the critical points and transitions."""
        lines = [f"{self.activation}, K = {self.K}, alpha in {self.alpha_range}"]
        header = f"  {'kind':<18}{'alpha':>22}{'+-':>10}  branches"
        lines.append(header)
        refined = []
        for p in self.critical_points:
            note = f" ({p.note})" if p.note else ""
            lines.append(
                f"  {p.kind:<18}{p.alpha:>22.15g}{p.alpha_error:>10.1e}  "
                + ", ".join(p.branches)
                + note
            )
            if p.alpha_high_precision:
                refined.append(
                    f"  {p.kind:<18} alpha = {p.alpha_high_precision} "
                    f"+- {p.alpha_high_precision_error:.1e}"
                )
        if refined:
            lines.append("  refined in mpmath (the error is that of these digits):")
            lines += refined
        if not self.critical_points:
            lines.append("  (no branch points, folds or first-order points in range)")
        for t in self.transitions:
            lines.append(
                f"  transition {t.kind} at alpha = {t.alpha:.12g}: {t.before} -> "
                f"{t.after}, eps_g jump {t.jump:+.3e}"
            )
        return "\n".join(lines)

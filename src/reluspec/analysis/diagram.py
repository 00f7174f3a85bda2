"""Phase diagrams: the critical values of alpha against K for several activations."""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from ..activations import Activation, activation as lookup_activation
from .problem import SpecializationProblem
from .results import CONVENTIONS, SpecializationResult, _jsonable
from .solve import SolveOptions, solve

__all__ = ["PhaseDiagram", "DiagramRow", "phase_diagram"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiagramRow:
    """One critical point or transition of one (activation, K).

    ``kind`` is a critical-point kind (``"branch_point"``, ``"fold"``,
    ``"first_order"``) or, for a change of the equilibrium state,
    ``"transition:continuous"`` or ``"transition:first_order"``.
    """

    activation: str
    K: int
    kind: str
    alpha: float
    alpha_error: float
    branches: str
    generalization_error_before: float = float("nan")
    generalization_error_after: float = float("nan")


@dataclass(frozen=True)
class PhaseDiagram:
    """Critical values of alpha for each activation and K.

    Attributes
    ----------
    rows : list of DiagramRow
        Every critical point and transition, sorted by activation, K, alpha.
    results : dict
        ``(activation, K) -> SpecializationResult`` of each solve.
    alpha_range : tuple of float
        The range of alpha that was solved.
    metadata : dict
        Package version and conventions.
    failures : dict
        ``(activation, K) -> error message`` of the solves that failed.
    """

    rows: list
    results: dict
    alpha_range: tuple
    metadata: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)

    def select(self, activation: str | None = None, kind: str | None = None) -> list:
        """Return the rows of one activation and/or one kind."""
        return [
            row
            for row in self.rows
            if (activation is None or row.activation == activation)
            and (kind is None or row.kind == kind)
        ]

    def to_csv(self, path=None) -> str:
        """Return the rows as CSV and write them to ``path`` if given."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        columns = list(DiagramRow.__dataclass_fields__)
        writer.writerow(columns)
        for row in self.rows:
            writer.writerow(
                [
                    repr(v) if isinstance(v, float) else v
                    for v in (getattr(row, c) for c in columns)
                ]
            )
        text = buffer.getvalue()
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_json(self, path=None) -> str:
        """Return the diagram, with every full result, as JSON."""
        data = {
            "alpha_range": list(self.alpha_range),
            "rows": [_jsonable(row.__dict__) for row in self.rows],
            "results": [r.to_dict() for r in self.results.values()],
            "metadata": _jsonable(self.metadata),
        }
        text = json.dumps(data, indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, source) -> PhaseDiagram:
        text = str(source)
        if not text.lstrip().startswith("{"):
            text = Path(source).read_text()
        data = json.loads(text)
        rows = [DiagramRow(**{k: _maybe_float(v) for k, v in r.items()}) for r in data["rows"]]
        results = {}
        for item in data["results"]:
            result = SpecializationResult.from_dict(item)
            results[(result.activation, result.K)] = result
        return cls(rows, results, tuple(data["alpha_range"]), data.get("metadata", {}))

    def table(self) -> str:
        """Return a readable fixed-width table of the rows."""
        lines = [
            f"{'activation':<10} {'K':>5}  {'kind':<24}{'alpha':>20} {'+-':>9}  branches"
        ]
        for row in self.rows:
            lines.append(
                f"{row.activation:<10} {row.K:>5}  {row.kind:<24}{row.alpha:>20.12g} "
                f"{row.alpha_error:>9.1e}  {row.branches}"
            )
        return "\n".join(lines)


def _maybe_float(value):
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return value


def _rows_of(result: SpecializationResult) -> list:
    rows = []
    for point in result.critical_points:
        rows.append(
            DiagramRow(
                result.activation,
                result.K,
                point.kind,
                point.alpha,
                point.alpha_error,
                "; ".join(point.branches),
            )
        )
    curve = result.learning_curve
    for transition in result.transitions:
        before = after = float("nan")
        at = np.nonzero(np.isclose(curve.alpha, transition.alpha, rtol=1e-12, atol=0))[0]
        for i in at:
            if curve.branch[i] == transition.before:
                before = float(curve.generalization_error[i])
            if curve.branch[i] == transition.after:
                after = float(curve.generalization_error[i])
        rows.append(
            DiagramRow(
                result.activation,
                result.K,
                f"transition:{transition.kind}",
                transition.alpha,
                transition.alpha_error,
                f"{transition.before} -> {transition.after}",
                before,
                after,
            )
        )
    return rows


def phase_diagram(
    activations,
    Ks,
    alpha=(0.5, 100.0),
    *,
    options: SolveOptions | None = None,
    progress: bool = True,
) -> PhaseDiagram:
    """Solve every (activation, K) and collect the critical values of alpha.

    Parameters
    ----------
    activations : iterable of Activation or str
        For example ``["relu", "erf"]``.
    Ks : iterable of int
        Numbers of hidden units, each ``>= 2``.
    alpha : (float, float)
        Range of alpha solved for each K.
    progress : bool
        Show a progress bar on standard error.
    """
    acts = [a if isinstance(a, Activation) else lookup_activation(a) for a in activations]
    Ks = [int(K) for K in Ks]
    if not acts:
        raise ValueError("activations is empty: give at least one, e.g. ['relu']")
    if not Ks:
        raise ValueError("Ks is empty: give at least one K >= 2")
    jobs = [(act, K) for act in acts for K in Ks]
    results, rows, failures = {}, [], {}
    for act, K in tqdm(jobs, desc="phase diagram", disable=not progress, unit="solve"):
        try:
            result = solve(SpecializationProblem(act, K), alpha, options=options)
        except (RuntimeError, FloatingPointError) as error:
            # A failed solve loses one (activation, K), not the whole sweep.
            logger.error("solving %s with K = %d failed: %s", act.name, K, error)
            failures[(act.name, K)] = f"{type(error).__name__}: {error}"
            continue
        results[(act.name, K)] = result
        rows += _rows_of(result)
    if not results:
        raise RuntimeError(
            "every solve of the phase diagram failed: "
            + "; ".join(f"{a} K={K}: {m}" for (a, K), m in failures.items())
        )
    rows.sort(key=lambda r: (r.activation, r.K, r.alpha))
    return PhaseDiagram(
        rows=rows,
        results=results,
        alpha_range=tuple(float(a) for a in alpha),
        metadata={"version": __version__, "conventions": dict(CONVENTIONS)},
        failures=failures,
    )

"""Phase diagrams: the critical values of alpha against K for several activations.

``K = math.inf`` is allowed: its rows are the limits of the large-K theory
(:mod:`reluspec.analysis.limit`) rather than a solve.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import multiprocessing
import numbers
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from ..activations import Activation
from ..activations import activation as lookup_activation
from .problem import SpecializationProblem
from .results import CONVENTIONS, SpecializationResult, _jsonable
from .solve import SolveOptions, _validate_alpha, solve

__all__ = ["PhaseDiagram", "DiagramRow", "limit_rows", "phase_diagram"]

logger = logging.getLogger(__name__)

# Exceptions that a solve raises when its numerics fail. ContinuationError,
# LocationError and StationaryPointError are RuntimeError subclasses, numpy's
# LinAlgError is a ValueError, and FloatingPointError, OverflowError and
# ZeroDivisionError are ArithmeticError subclasses.
_NUMERICAL_ERRORS = (RuntimeError, ArithmeticError, ValueError)
# RuntimeError subclasses that mark a bug rather than a failed solve.
_PROGRAMMING_ERRORS = (NotImplementedError, RecursionError)

_BROKEN_POOL_MESSAGE = (
    "a worker process of phase_diagram exited before returning a result. "
    "The usual cause is a script that calls phase_diagram with workers != 1 "
    'outside an `if __name__ == "__main__":` block: each worker starts a new '
    "interpreter that imports the script again (the multiprocessing 'spawn' "
    "start method), so the unguarded call runs again in the worker and fails. "
    'Put the call under `if __name__ == "__main__":`, or pass workers=1 to '
    "solve in this process. A worker killed by the system, for example for "
    "lack of memory, has the same effect."
)


@dataclass(frozen=True)
class DiagramRow:
    """One critical point or transition of one (activation, K).

    ``kind`` is a critical-point kind (``"branch_point"``, ``"fold"``,
    ``"first_order"``) or, for a change of the equilibrium state,
    ``"transition:continuous"`` or ``"transition:first_order"``. ``K`` is an
    integer, or ``math.inf`` for the K -> infinity limit.
    """

    activation: str
    K: int | float
    kind: str
    alpha: float
    alpha_error: float
    branches: str
    generalization_error_before: float = float("nan")
    generalization_error_after: float = float("nan")

    def __post_init__(self):
        # Plain floats, so that a row read back from JSON has the repr of
        # the row written, whatever numpy scalar type a computation produced.
        for name in (
            "alpha",
            "alpha_error",
            "generalization_error_before",
            "generalization_error_after",
        ):
            object.__setattr__(self, name, float(getattr(self, name)))


@dataclass(frozen=True)
class PhaseDiagram:
    """Critical values of alpha for each activation and K.

    Attributes
    ----------
    rows : list of DiagramRow
        Every critical point and transition, sorted by activation (in the
        order given), K and alpha.
    results : dict
        ``(activation, K) -> SpecializationResult`` of each solve.
    alpha_range : tuple of float
        The range of alpha that was solved.
    metadata : dict
        Package version and conventions.
    failures : dict
        ``(activation, K) -> "ExceptionType: message"`` of the solves that
        failed with a numerical error. These have no rows and no result.
        :meth:`table` and :meth:`to_json` include them, while :meth:`to_csv`
        and the plots do not.
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
        """Return the rows as CSV and write them to ``path`` if given.

        A failed solve has no rows, so the CSV does not show it. The failures
        are in :attr:`failures`, :meth:`table` and :meth:`to_json`, and this
        method logs a warning that lists them.
        """
        if self.failures:
            logger.warning(
                "the CSV has no rows for %d failed solves: %s",
                len(self.failures),
                _describe_failures(self.failures),
            )
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        columns = list(DiagramRow.__dataclass_fields__)
        writer.writerow(columns)
        for row in self.rows:
            writer.writerow(
                [
                    repr(float(v)) if isinstance(v, float) else v
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
            "failures": [
                {"activation": activation, "K": int(K), "message": message}
                for (activation, K), message in self.failures.items()
            ],
        }
        text = json.dumps(data, indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, source) -> PhaseDiagram:
        """Read a diagram from a JSON string or from the path of a JSON file.

        A file without a ``failures`` field reads back with no failures.
        """
        text = str(source)
        if not text.lstrip().startswith("{"):
            text = Path(source).read_text()
        data = json.loads(text)
        rows = [
            DiagramRow(**{k: _maybe_float(v) for k, v in r.items()})
            for r in data["rows"]
        ]
        results = {}
        for item in data["results"]:
            result = SpecializationResult.from_dict(item)
            results[(result.activation, result.K)] = result
        failures = {
            (item["activation"], int(item["K"])): item["message"]
            for item in data.get("failures", [])
        }
        return cls(
            rows,
            results,
            tuple(data["alpha_range"]),
            data.get("metadata", {}),
            failures,
        )

    def table(self) -> str:
        """Return a readable fixed-width table of the rows, then one line per
        failed solve with its error."""
        lines = [
            f"{'activation':<10} {'K':>5}  {'kind':<24}{'alpha':>20} {'+-':>9}  branches"
        ]
        for row in self.rows:
            lines.append(
                f"{row.activation:<10} {row.K:>5}  {row.kind:<24}{row.alpha:>20.12g} "
                f"{row.alpha_error:>9.1e}  {row.branches}"
            )
        if self.failures:
            lines.append(f"failed solves ({len(self.failures)}), with no rows above:")
        for (activation, K), message in self.failures.items():
            lines.append(f"{activation:<10} {K:>5}  solve failed: {message}")
        return "\n".join(lines)


def _describe_failures(failures: dict) -> str:
    """Format the failed solves of a diagram on one line, such as
    ``"erf K=3 (FloatingPointError: overflow)"``."""
    return "; ".join(
        f"{activation} K={K} ({message})"
        for (activation, K), message in failures.items()
    )


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
                "; ".join(point.branches) + (f" ({point.note})" if point.note else ""),
            )
        )
    curve = result.learning_curve
    for transition in result.transitions:
        before = after = float("nan")
        at = np.nonzero(np.isclose(curve.alpha, transition.alpha, rtol=1e-12, atol=0))[
            0
        ]
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
    workers: int = 1,
) -> PhaseDiagram:
    """Solve every (activation, K) and collect the critical values of alpha.

    Parameters
    ----------
    activations : iterable of Activation or str
        For example ``["relu", "erf"]``.
    Ks : iterable of int
        Numbers of hidden units, each ``>= 2``; ``math.inf`` adds the rows of
        the K -> infinity limit (:func:`limit_rows`). A repeated value is
        solved once.
    alpha : (float, float)
        Range of alpha solved for each K.
    progress : bool
        Show a progress bar on standard error.
    workers : int
        Number of processes that solve in parallel (default 1, in this
        process; ``0`` means one per CPU). Every solve is deterministic, so
        the diagram does not depend on it. Log records of the workers are
        passed on to the loggers of this process. The workers start as new
        interpreters that import the main script, so a script that calls
        this with ``workers != 1`` must make the call under
        ``if __name__ == "__main__":``.

    Returns
    -------
    PhaseDiagram
        A solve that fails with a numerical error (a RuntimeError such as
        ContinuationError or LocationError, an ArithmeticError, or a
        ValueError such as numpy's LinAlgError) is logged as an error and
        recorded in ``PhaseDiagram.failures``, and the other solves go on.

    Raises
    ------
    RuntimeError
        When every solve fails, or when a worker process exits without a
        result. The usual cause of the latter is a missing
        ``if __name__ == "__main__":`` guard. The diagram is not solved
        again in one process then, because that would hide that every run
        of such a script also runs its unguarded code once per worker.
    """
    if isinstance(activations, (str, Activation)):
        activations = [activations]
    if isinstance(Ks, (int, float, np.integer)):
        Ks = [Ks]
    if (
        isinstance(workers, bool)
        or not isinstance(workers, numbers.Integral)
        or workers < 0
    ):
        raise ValueError(
            f"workers = {workers!r} is invalid: give a number of processes >= 1, "
            "or 0 for one per CPU"
        )
    acts = [
        a if isinstance(a, Activation) else lookup_activation(a) for a in activations
    ]
    Ks = list(Ks)
    with_limit = any(isinstance(K, float) and math.isinf(K) and K > 0 for K in Ks)
    finite = []
    for K in Ks:
        if isinstance(K, float) and math.isinf(K) and K > 0:
            continue
        integral = isinstance(K, numbers.Integral) or (
            isinstance(K, float) and K.is_integer()
        )
        if isinstance(K, bool) or not integral:
            raise ValueError(
                f"K = {K!r} is invalid: Ks must be integers >= 2 or math.inf"
            )
        finite.append(int(K))
    # Repeated values are solved once, in the order first given.
    Ks = list(dict.fromkeys(finite))
    acts = list({a.name: a for a in acts}.values())
    if not acts:
        raise ValueError("activations is empty: give at least one, e.g. ['relu']")
    if not Ks and not with_limit:
        raise ValueError("Ks is empty: give at least one K >= 2 or math.inf")
    # Checking alpha and building the problems first rejects bad input
    # before any solve starts.
    alpha = _validate_alpha(alpha)
    jobs = [SpecializationProblem(act, K) for act in acts for K in Ks]
    workers = min(int(workers) or os.cpu_count() or 1, max(len(jobs), 1))
    outcomes = _solve_all(jobs, alpha, options, progress, workers)
    results, rows, failures = {}, [], {}
    for problem, outcome in zip(jobs, outcomes):
        key = (problem.activation.name, problem.K)
        if isinstance(outcome, SpecializationResult):
            results[key] = outcome
            rows += _rows_of(outcome)
        else:
            # A failed solve loses one (activation, K), not the whole sweep.
            logger.error("solving %s with K = %d failed: %s", key[0], key[1], outcome)
            failures[key] = outcome
    if with_limit:
        for act in acts:
            rows += limit_rows(act)
    if not results and not with_limit:
        raise RuntimeError(
            "every solve of the phase diagram failed: " + _describe_failures(failures)
        )
    order = {a.name: i for i, a in enumerate(acts)}
    rows.sort(key=lambda r: (order[r.activation], r.K, r.alpha))
    return PhaseDiagram(
        rows=rows,
        results=results,
        alpha_range=tuple(float(a) for a in alpha),
        metadata={"version": __version__, "conventions": dict(CONVENTIONS)},
        failures=failures,
    )


class _RecordList(logging.Handler):
    """Keep log records, with their message formatted, for another process."""

    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info and not record.exc_text:
            # The formatted traceback pickles, the traceback object does not.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        self.records.append(record)


def _solve_one(problem, alpha, options):
    """Return the result of one solve, or the type and message of the
    numerical error that ended it, on one line.

    Other exceptions, such as TypeError or NotImplementedError, propagate
    and end the whole diagram, because they mark a bug rather than a
    failed solve.
    """
    try:
        return solve(problem, alpha, options=options)
    except _PROGRAMMING_ERRORS:
        raise
    except _NUMERICAL_ERRORS as error:
        logger.debug("solving %r failed", problem, exc_info=True)
        message = " ".join(str(error).split())
        return f"{type(error).__name__}: {message}"


def _solve_in_worker(problem, alpha, options, level):
    """Solve in a worker process; return the outcome and the log records."""
    package_logger = logging.getLogger("reluspec")
    handler = _RecordList()
    saved = package_logger.level, package_logger.propagate
    package_logger.addHandler(handler)
    package_logger.setLevel(level)
    package_logger.propagate = False
    try:
        return _solve_one(problem, alpha, options), handler.records
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(saved[0])
        package_logger.propagate = saved[1]


def _solve_all(jobs, alpha, options, progress, workers) -> list:
    """Return the outcome of every job, in the order of the jobs."""
    bar = tqdm(
        total=len(jobs), desc="phase diagram", disable=not progress, unit="solve"
    )
    with bar:
        if workers <= 1:
            outcomes = []
            for problem in jobs:
                outcomes.append(_solve_one(problem, alpha, options))
                bar.update()
            return outcomes
        level = logging.getLogger("reluspec").getEffectiveLevel()
        outcomes = [None] * len(jobs)
        # Fresh interpreters: forking a process that runs kernel threads
        # could copy a held lock.
        context = multiprocessing.get_context("spawn")
        try:
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                futures = {
                    pool.submit(_solve_in_worker, problem, alpha, options, level): index
                    for index, problem in enumerate(jobs)
                }
                for future in as_completed(futures):
                    outcome, records = future.result()
                    for record in records:
                        target = logging.getLogger(record.name)
                        if target.isEnabledFor(record.levelno):
                            target.handle(record)
                    outcomes[futures[future]] = outcome
                    bar.update()
        except BrokenProcessPool as error:
            raise RuntimeError(_BROKEN_POOL_MESSAGE) from error
        return outcomes


def limit_rows(activation) -> list:
    """Return the rows of the K -> infinity limit of one activation.

    The branch point, the fold of the ``R > S`` branch and the equal-free-energy
    point at ``K = infinity``
    (:func:`reluspec.analysis.limit.limit_critical_points`) and the change of
    the equilibrium state there. For ReLU all three coincide at
    ``alpha = 2 pi`` and the transition is continuous. For erf the branch
    point moves to ``alpha = inf`` (its row has ``alpha = inf``, and the
    limit of ``alpha_c / K`` is named in ``branches``) and the transition is
    first order at the equal-free-energy point.
    """
    from .limit import limit_critical_points, limit_states

    act = (
        activation
        if isinstance(activation, Activation)
        else lookup_activation(activation)
    )
    points = {p.kind: p for p in limit_critical_points(act)}
    names = {
        "branch_point": "unspecialized; specialized R>S; specialized R<S",
        "fold": "specialized R>S",
        "first_order": "unspecialized; specialized R>S",
    }
    rows = []
    for kind, point in points.items():
        branches = names[kind]
        if math.isinf(point.alpha):
            branches += f" (alpha/K -> {point.alpha_scaled!r})"
        # The defining systems are solved to a few ulp (checked against
        # mpmath in tests/test_limit.py); the error is that of 4 ulp.
        error = 4.0 * np.finfo(float).eps * point.alpha_scaled
        rows.append(DiagramRow(act.name, math.inf, kind, point.alpha, error, branches))
    bp, first_order = points["branch_point"], points["first_order"]
    continuous = first_order.d == 0.0 and first_order.alpha == bp.alpha
    alpha_t = first_order.alpha
    states = {s.branch: s for s in limit_states(act, alpha_t * (1 + 1e-9))}
    after = states.get("specialized R>S")
    before = states["unspecialized"]
    rows.append(
        DiagramRow(
            act.name,
            math.inf,
            "transition:continuous" if continuous else "transition:first_order",
            alpha_t,
            4.0 * np.finfo(float).eps * alpha_t,
            "unspecialized -> specialized R>S",
            before.generalization_error,
            after.generalization_error if after is not None else float("nan"),
        )
    )
    return rows

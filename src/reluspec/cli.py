"""The ``reluspec`` command: learning curves and phase diagrams from the shell.

Examples
--------
::

    reluspec curve --activation relu --K 5 --alpha 0.5:60 --plot relu5.png
    reluspec diagram --activation relu erf --K 2-10,20,50,100 --csv diagram.csv
    reluspec diagram --activation relu erf --K 2-10,20,inf --plot diagram.png
    reluspec limit --activation relu
    reluspec plot relu5.json --plot relu5.pdf

Exit codes: 0 on success, 1 when the computation or writing a file fails,
2 for invalid command-line input (argparse usage errors), 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path

__all__ = [
    "main",
    "build_parser",
    "parse_K",
    "parse_K_list",
    "parse_diagram_K_list",
    "parse_alpha_range",
]

logger = logging.getLogger(__name__)

#: Largest number of K values one ``diagram`` command accepts.
MAX_K_VALUES = 1000

_K_LIST_FORM = (
    "comma-separated integers >= 2 and inclusive ranges LO-HI, e.g. 2-10,20,50,100"
)
_ALPHA_FORM = "LO:HI with 1e-08 <= LO < HI <= 1e+08, e.g. 0.5:60"


# -- argument types --------------------------------------------------------------------
def parse_K(text: str) -> int:
    """Parse one number of hidden units, an integer ``K >= 2``."""
    try:
        K = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid K {text!r}: expected an integer >= 2, e.g. 5"
        ) from None
    if K < 2:
        raise argparse.ArgumentTypeError(
            f"invalid K {text!r}: specialisation needs K >= 2 hidden units"
        )
    _check_K_limit(K, text)
    return K


def _check_K_limit(K: int, text: str) -> None:
    from .analysis.problem import MAX_K

    if K > MAX_K:
        raise argparse.ArgumentTypeError(
            f"invalid K {text!r}: K must be at most {MAX_K}, where the overlaps of "
            "the (R, S, C) coordinates still resolve in double precision"
        )


def parse_K_list(text: str) -> list[int]:
    """Parse a list of K such as ``2-10,20,50,100`` into sorted distinct integers.

    Items are separated by commas; ``LO-HI`` is the inclusive range. Every K
    must be at least 2, and at most :data:`MAX_K_VALUES` values are accepted.
    """
    values: set[int] = set()
    items = text.split(",")
    for item in items:
        item = item.strip()
        bounds = item.split("-")
        try:
            if len(bounds) == 1:
                lo = hi = int(bounds[0])
            elif len(bounds) == 2:
                lo, hi = int(bounds[0]), int(bounds[1])
            else:
                raise ValueError(item)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid K list {text!r}: item {item!r} is not an integer or a range "
                f"LO-HI; expected {_K_LIST_FORM}"
            ) from None
        if lo > hi:
            raise argparse.ArgumentTypeError(
                f"invalid K list {text!r}: range {item!r} is empty because "
                f"{lo} > {hi}; expected {_K_LIST_FORM}"
            )
        if lo < 2:
            raise argparse.ArgumentTypeError(
                f"invalid K list {text!r}: {lo} is below 2, and specialisation needs "
                f"K >= 2 hidden units; expected {_K_LIST_FORM}"
            )
        _check_K_limit(hi, text)
        if hi - lo + 1 + len(values) > MAX_K_VALUES:
            raise argparse.ArgumentTypeError(
                f"invalid K list {text!r}: more than {MAX_K_VALUES} values of K"
            )
        values.update(range(lo, hi + 1))
    return sorted(values)


def parse_diagram_K_list(text: str) -> list:
    """Parse a K list of :func:`parse_K_list` in which ``inf`` may be an item.

    ``inf`` (K = infinity) is returned as ``math.inf`` after the integers.
    """
    items = [item.strip() for item in text.split(",")]
    finite = [item for item in items if item.lower() not in ("inf", "infinity")]
    values = parse_K_list(",".join(finite)) if finite else []
    if len(finite) < len(items):
        values.append(math.inf)
    return values


def parse_alpha_range(text: str) -> tuple[float, float]:
    """Parse an alpha range ``LO:HI`` inside the range that solve accepts."""
    from .analysis.solve import ALPHA_MAX, ALPHA_MIN

    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError(text)
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid alpha range {text!r}: expected {_ALPHA_FORM}"
        ) from None
    if not (ALPHA_MIN <= lo < hi <= ALPHA_MAX):
        raise argparse.ArgumentTypeError(
            f"invalid alpha range {text!r}: expected {_ALPHA_FORM}"
        )
    return lo, hi


def _parse_activation(text: str) -> str:
    """Return the canonical name of an activation, e.g. ``"relu"`` for ``"ReLU"``."""
    # The analysis package imports every activation module, which registers
    # the activations by name.
    import reluspec.analysis  # noqa: F401

    from .activations import activation

    try:
        return activation(text).name
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _integer_at_least(minimum: int, name: str):
    """Return a parser of an integer of at least ``minimum``."""
    return _integer_between(minimum, None, name)


def _integer_between(minimum: int, maximum: int | None, name: str):
    """Return a parser of an integer from ``minimum`` to ``maximum``
    inclusive (no upper bound for None)."""
    if maximum is None:
        expected = f"expected an integer >= {minimum}"
    else:
        expected = f"expected an integer from {minimum} to {maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid {name} {text!r}: {expected}"
            ) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r}: {expected}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a finite number > 0, e.g. 10"
        )
    return value


def _check_writable(path: Path, kind: str, text: str) -> None:
    """Raise a usage error unless ``path`` can be opened for writing.

    The check runs before any computation, so that a long solve is not lost
    to an unwritable output file. A file that did not exist is removed again.
    """
    if os.path.lexists(path):
        # An existing regular file is opened for appending, which changes
        # nothing; links, devices and pipes (whose open could block) are left
        # to the write.
        if path.is_file() and not path.is_symlink():
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK))
            except OSError as error:
                reason = error.strerror or type(error).__name__
                raise argparse.ArgumentTypeError(
                    f"invalid {kind} file {text!r}: it cannot be written ({reason})"
                ) from None
        return
    try:
        with open(path, "x"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise argparse.ArgumentTypeError(
            f"invalid {kind} file {text!r}: it cannot be written ({reason})"
        ) from None
    path.unlink(missing_ok=True)


def _output_path(kind: str):
    """Return a parser of an output file path whose directory must exist.

    For figures, the suffix must name a format matplotlib can write.
    """

    def parse(text: str) -> Path:
        path = Path(text)
        if not text or path.is_dir():
            raise argparse.ArgumentTypeError(
                f"invalid {kind} file {text!r}: expected the name of a file, "
                "not a directory"
            )
        if not path.resolve().parent.is_dir():
            raise argparse.ArgumentTypeError(
                f"invalid {kind} file {text!r}: directory {str(path.parent)!r} "
                "does not exist"
            )
        _check_writable(path, kind, text)
        if kind == "figure":
            from matplotlib.backend_bases import FigureCanvasBase

            formats = FigureCanvasBase.get_supported_filetypes()
            suffix = path.suffix.lstrip(".").lower()
            if suffix not in formats:
                raise argparse.ArgumentTypeError(
                    f"invalid figure file {text!r}: the suffix must be one of "
                    + ", ".join(f".{f}" for f in sorted(formats))
                )
        return path

    return parse


def _input_json(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"JSON file {text!r} not found")
    return path


# -- parser ----------------------------------------------------------------------------
def _add_verbosity(parser, default):
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="log progress (INFO); twice also logs debug messages and tracebacks",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS if default is argparse.SUPPRESS else False,
        help="log only errors and hide the progress bar",
    )


def _add_solver_options(parser):
    parser.add_argument(
        "--grid",
        type=_integer_at_least(2, "grid size"),
        metavar="N",
        help="number of log-spaced alpha values of the learning curve (default 200)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``reluspec`` command."""
    from .analysis.solve import MAX_PRECISION

    parser = argparse.ArgumentParser(
        prog="reluspec",
        description=(
            "Specialisation of soft committee machines (ReLU and erf units) trained "
            "at high temperature: learning curves, critical points and phase diagrams."
        ),
    )
    _add_verbosity(parser, default=0)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    curve = commands.add_parser(
        "curve",
        help="all states, critical points and transitions for one activation and K",
        description=(
            "Solve one activation and K: trace every branch of stationary states, "
            "locate branch points, folds and first-order points, and print them."
        ),
    )
    curve.add_argument(
        "--activation",
        type=_parse_activation,
        default="relu",
        help="relu or erf (default relu)",
    )
    curve.add_argument(
        "--K",
        type=parse_K,
        required=True,
        help="number of hidden units, an integer >= 2",
    )
    curve.add_argument(
        "--alpha",
        type=parse_alpha_range,
        default=(0.5, 60.0),
        metavar="LO:HI",
        help="range of alpha = beta P / (K N), examples per weight (default 0.5:60)",
    )
    curve.add_argument(
        "--precision",
        type=_integer_between(16, MAX_PRECISION, "precision"),
        metavar="DIGITS",
        help=(
            "refine every critical point in mpmath to DIGITS decimal digits, "
            f"from 16 to {MAX_PRECISION}"
        ),
    )
    curve.add_argument(
        "--stability",
        choices=("full", "ansatz"),
        default="full",
        help=(
            "stability that decides the equilibrium: 'full' counts unstable "
            "directions in the space of all entries of R and Q, 'ansatz' only "
            "those in (R, S, C) (default full); both labels go to CSV and JSON"
        ),
    )
    _add_solver_options(curve)
    curve.add_argument(
        "--csv",
        type=_output_path("CSV"),
        metavar="FILE",
        help="write every branch as CSV, one row per traced state",
    )
    curve.add_argument(
        "--points-csv",
        type=_output_path("CSV"),
        metavar="FILE",
        help="write the critical points and transitions as CSV",
    )
    curve.add_argument(
        "--json",
        type=_output_path("JSON"),
        metavar="FILE",
        help="write the full result as JSON",
    )
    curve.add_argument(
        "--plot",
        type=_output_path("figure"),
        metavar="FILE",
        help="write the error of every branch against alpha to FILE (.png, .pdf, ...)",
    )
    curve.add_argument(
        "--plot-order-parameters",
        type=_output_path("figure"),
        metavar="FILE",
        help="write R, S and C against alpha to FILE",
    )
    _add_verbosity(curve, default=argparse.SUPPRESS)
    curve.set_defaults(handler=_run_curve, subparser=curve)

    diagram = commands.add_parser(
        "diagram",
        help="critical values of alpha against K for several activations",
        description=(
            "Solve every activation and K, print the critical points and "
            "transitions as a table, and write them to the requested files."
        ),
    )
    diagram.add_argument(
        "--activation",
        type=_parse_activation,
        nargs="+",
        default=["relu", "erf"],
        help="one or more activations (default: relu erf)",
    )
    diagram.add_argument(
        "--K",
        type=parse_diagram_K_list,
        nargs="+",
        default=[list(range(2, 11))],
        metavar="LIST",
        help=(
            f"values of K: {_K_LIST_FORM}, and inf for K = infinity (default 2-10); "
            "with inf the plot shows the critical curves against 1/K"
        ),
    )
    diagram.add_argument(
        "--alpha",
        type=parse_alpha_range,
        default=(0.5, 100.0),
        metavar="LO:HI",
        help="range of alpha solved for each K (default 0.5:100)",
    )
    _add_solver_options(diagram)
    diagram.add_argument(
        "--workers",
        type=_integer_at_least(0, "number of workers"),
        default=0,
        metavar="N",
        help="processes that solve in parallel (default 0: one per CPU)",
    )
    diagram.add_argument(
        "--csv", type=_output_path("CSV"), metavar="FILE", help="write the table as CSV"
    )
    diagram.add_argument(
        "--json",
        type=_output_path("JSON"),
        metavar="FILE",
        help="write the table and every result as JSON",
    )
    diagram.add_argument(
        "--plot",
        type=_output_path("figure"),
        metavar="FILE",
        help="write the phase diagram to FILE",
    )
    _add_verbosity(diagram, default=argparse.SUPPRESS)
    diagram.set_defaults(handler=_run_diagram, subparser=diagram)

    limit = commands.add_parser(
        "limit",
        help="convergence of the critical points and errors as K -> infinity",
        description=(
            "Compute the K -> infinity limits of the branch point, fold and "
            "equal-free-energy point and of the error of every state, and print a "
            "table of finite-K values (solved in mpmath), their distance to the "
            "limit, the fitted exponent of the correction and a Richardson "
            "estimate. The errors approach their limits like 1/K only for "
            "K alpha >> 1. A state that cannot be followed to some K is left out "
            "there with a warning, and the table says so."
        ),
    )
    limit.add_argument(
        "--activation",
        type=_parse_activation,
        default="relu",
        help="relu or erf (default relu)",
    )
    limit.add_argument(
        "--alpha",
        type=_positive_float,
        metavar="ALPHA",
        help="alpha of the states whose errors are listed (default 10 relu, 100 erf)",
    )
    limit.add_argument(
        "--K",
        type=parse_K_list,
        default=[10, 100, 1000, 10000, 100000],
        metavar="LIST",
        help=(
            "finite values of K >= 3 (the fold and the first-order point exist "
            "for K > 2): comma-separated integers and inclusive ranges LO-HI, "
            "e.g. 3-10,100 (default 10,100,1000,10000,100000)"
        ),
    )
    limit.add_argument(
        "--dps",
        type=_integer_at_least(16, "dps"),
        default=30,
        metavar="DIGITS",
        help="decimal digits of the finite-K computations in mpmath (default 30)",
    )
    limit.add_argument(
        "--csv", type=_output_path("CSV"), metavar="FILE", help="write the table as CSV"
    )
    _add_verbosity(limit, default=argparse.SUPPRESS)
    limit.set_defaults(handler=_run_limit, subparser=limit)

    plot = commands.add_parser(
        "plot",
        help="draw a result or diagram saved with --json",
        description=(
            "Read a JSON file written by 'curve --json' or 'diagram --json' and "
            "draw it without solving again."
        ),
    )
    plot.add_argument(
        "source", type=_input_json, metavar="JSON", help="file written with --json"
    )
    plot.add_argument(
        "--plot",
        type=_output_path("figure"),
        metavar="FILE",
        required=True,
        help="figure file to write",
    )
    plot.add_argument(
        "--plot-order-parameters",
        type=_output_path("figure"),
        metavar="FILE",
        help="for a curve result, also write R, S and C against alpha",
    )
    _add_verbosity(plot, default=argparse.SUPPRESS)
    plot.set_defaults(handler=_run_plot, subparser=plot)
    return parser


# -- commands --------------------------------------------------------------------------
def _solve_options(args):
    from .analysis import SolveOptions

    if args.grid is None:
        return None
    return SolveOptions(grid_points=args.grid)


def _save_figure(draw, data, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = draw(data, path=path)
    plt.close(fig)
    return f"wrote figure {path}"


def _write_then_print(table: str, outputs) -> None:
    """Write every requested file, then print the table and what was written.

    Files come first, so that a reader that closes standard output early
    (such as head) does not lose them.
    """
    messages = [write() for path, write in outputs if path is not None]
    print(table)
    for message in messages:
        print(message)


def _run_curve(args) -> int:
    from .analysis import SpecializationProblem, solve
    from .plotting import plot_learning_curve, plot_order_parameters

    problem = SpecializationProblem(args.activation, args.K)
    logger.info("solving %s for alpha in [%g, %g]", problem, *args.alpha)
    result = solve(
        problem,
        alpha=args.alpha,
        options=_solve_options(args),
        precision=args.precision,
        stability=args.stability,
    )
    _write_then_print(
        result.summary(),
        [
            (args.csv, lambda: _written("CSV", args.csv, result.to_csv)),
            (
                args.points_csv,
                lambda: _written("CSV", args.points_csv, result.critical_points_csv),
            ),
            (args.json, lambda: _written("JSON", args.json, result.to_json)),
            (
                args.plot,
                lambda: _save_figure(plot_learning_curve, result, args.plot),
            ),
            (
                args.plot_order_parameters,
                lambda: _save_figure(
                    plot_order_parameters, result, args.plot_order_parameters
                ),
            ),
        ],
    )
    return 0


def _written(kind: str, path, write) -> str:
    write(path)
    return f"wrote {kind} {path}"


def _run_diagram(args) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from .analysis import phase_diagram
    from .plotting import plot_phase_diagram

    activations = list(dict.fromkeys(args.activation))
    Ks = sorted({K for values in args.K for K in values})
    if len(Ks) - (math.inf in Ks) > MAX_K_VALUES:
        raise _UsageError(
            f"invalid --K: {len(Ks)} values of K, more than the maximum of "
            f"{MAX_K_VALUES}; split the diagram into several runs"
        )
    # Log records go through tqdm while the progress bar is shown, so that
    # they do not break its line.
    with logging_redirect_tqdm():
        diagram = phase_diagram(
            activations,
            Ks,
            alpha=args.alpha,
            options=_solve_options(args),
            progress=not args.quiet,
            workers=args.workers,
        )
    if math.inf in Ks:
        draw = _limit_figure(activations, Ks, args.alpha)
    else:
        draw = plot_phase_diagram
    _write_then_print(
        diagram.table(),
        [
            (args.csv, lambda: _written("CSV", args.csv, diagram.to_csv)),
            (args.json, lambda: _written("JSON", args.json, diagram.to_json)),
            (args.plot, lambda: _save_figure(draw, diagram, args.plot)),
        ],
    )
    return 0


def _limit_figure(activations, Ks, alpha_range):
    """Return a drawing function of the critical curves in 1/K with the diagram."""
    from .analysis.limit import (
        CRITICAL_KINDS,
        plot_critical_curves,
        trace_critical_curve,
    )

    finite = [K for K in Ks if math.isfinite(K)]
    eps_max = 0.5 if not finite else min(0.5, 1.0 / min(finite))
    curves = [
        trace_critical_curve(activation, kind, eps_max=eps_max)
        for activation in activations
        for kind in CRITICAL_KINDS
    ]

    def draw(diagram, path=None):
        return plot_critical_curves(
            curves, diagram, path=path, alpha_max=alpha_range[1]
        )

    return draw


def _run_limit(args) -> int:
    from .analysis.limit import convergence_table

    if min(args.K) < 3:
        raise _UsageError(
            f"invalid --K: {min(args.K)} is below 3; the fold and the first-order "
            "point exist for K > 2"
        )
    table = convergence_table(
        args.activation, alpha=args.alpha, Ks=args.K, dps=args.dps
    )
    _write_then_print(
        table.table(), [(args.csv, lambda: _written("CSV", args.csv, table.to_csv))]
    )
    return 0


def _run_plot(args) -> int:
    from .analysis import PhaseDiagram, SpecializationResult
    from .plotting import plot_learning_curve, plot_order_parameters, plot_phase_diagram

    try:
        data = json.loads(args.source.read_text())
    except json.JSONDecodeError as error:
        raise _UsageError(f"{str(args.source)!r} is not a JSON file: {error}") from None
    if not isinstance(data, dict) or not ({"rows", "branches"} & set(data)):
        raise _UsageError(
            f"{str(args.source)!r} contains neither a result of "
            "'reluspec curve --json' nor a diagram of 'reluspec diagram --json'"
        )
    kind = PhaseDiagram if "rows" in data else SpecializationResult
    try:
        saved = kind.from_json(args.source)
    except (KeyError, TypeError, ValueError) as error:
        raise _UsageError(
            f"{str(args.source)!r} is not a valid {kind.__name__} file: "
            f"{type(error).__name__}: {error}"
        ) from None
    if kind is PhaseDiagram:
        if args.plot_order_parameters is not None:
            raise _UsageError(
                f"invalid --plot-order-parameters: {str(args.source)!r} contains "
                "a diagram, and order parameters need a result of 'reluspec curve'"
            )
        if saved.failures:
            failed = ", ".join(f"{a} K={K}" for a, K in saved.failures)
            logger.warning(
                "the figure has no points for the failed solves %s, whose errors "
                "are in %s",
                failed,
                args.source,
            )
        Ks = sorted({row.K for row in saved.rows})
        if math.inf in Ks:
            # K = infinity has no place on a log K axis: draw the curves in 1/K.
            activations = list(dict.fromkeys(row.activation for row in saved.rows))
            draw = _limit_figure(activations, Ks, saved.alpha_range)
            print(_save_figure(draw, saved, args.plot))
        else:
            print(_save_figure(plot_phase_diagram, saved, args.plot))
        return 0
    result = saved
    print(_save_figure(plot_learning_curve, result, args.plot))
    if args.plot_order_parameters is not None:
        print(
            _save_figure(plot_order_parameters, result, args.plot_order_parameters)
        )
    return 0


class _UsageError(Exception):
    """Invalid input found after parsing; reported like an argparse error."""


def _configure_logging(args):
    if getattr(args, "quiet", False):
        level = logging.ERROR
    elif args.verbose >= 2:
        level = logging.DEBUG
    elif args.verbose == 1:
        level = logging.INFO
    else:
        level = logging.WARNING
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger().setLevel(level)
    logging.captureWarnings(True)


def main(argv=None) -> int:
    """Run the ``reluspec`` command with ``argv`` (default ``sys.argv[1:]``).

    Returns the exit code: 0 on success (also after ``--help``), 1 when the
    computation or writing a file fails, 2 for invalid input, 130 when
    interrupted, 141 when the reader of standard output has closed it.
    Errors are reported in one line on standard error, without a traceback
    unless ``-vv`` is given.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:
        return exit_request.code if isinstance(exit_request.code, int) else 2
    _configure_logging(args)
    command = args.subparser.prog
    try:
        return args.handler(args)
    except _UsageError as error:
        args.subparser.print_usage(sys.stderr)
        print(f"{command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of standard output (such as head) has exited. Output that
        # Python flushes at exit goes nowhere instead of raising again.
        try:
            descriptor = sys.stdout.fileno()
        except (OSError, ValueError):
            # Standard output is not a file (an in-memory stream).
            return 141
        os.dup2(os.open(os.devnull, os.O_WRONLY), descriptor)
        return 141
    except (RuntimeError, ArithmeticError, ValueError, OSError) as error:
        # ContinuationError, LocationError and StationaryPointError are
        # RuntimeError subclasses, and numpy's LinAlgError is a ValueError.
        logger.debug("%s failed", command, exc_info=True)
        message = " ".join(str(error).split())
        print(f"{command}: error: {type(error).__name__}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # ``python -m reluspec.cli`` runs this file as __main__. Calling main of
    # the imported module reluspec.cli, the entry point of ``python -m
    # reluspec``, keeps the logger name reluspec.cli.
    from reluspec.cli import main as package_main

    sys.exit(package_main())

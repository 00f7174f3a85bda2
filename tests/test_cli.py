"""Tests of the ``reluspec`` command: parsing, exit codes, messages and files.

Most tests replace the solver with hand-made results from test_plotting, so
that they check the command itself. One test runs a real solve end to end.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_plotting import first_order_diagram, first_order_result

import reluspec
import reluspec.analysis
from reluspec import cli
from reluspec.analysis import (
    DiagramRow,
    LocationError,
    PhaseDiagram,
    SpecializationResult,
    StationaryPointError,
)
from reluspec.analysis.solve import MAX_PRECISION
from reluspec.analysis.solve import solve as real_solve
from reluspec.continuation import ContinuationError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CURVE_COLUMNS = [
    "activation",
    "K",
    "branch",
    "alpha",
    "R",
    "S",
    "C",
    "generalization_error",
    "free_energy",
    "n_unstable",
    "n_unstable_full",
    "stable",
    "equilibrium",
    "stability_note",
]


@pytest.fixture(autouse=True)
def restore_root_logger():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture
def fake_solve(monkeypatch):
    """Replace the solver by one that records its arguments and returns the
    hand-made first-order result."""
    calls = []

    def solve(problem, alpha, options=None, precision=None, stability="full"):
        calls.append(
            {
                "problem": problem,
                "alpha": alpha,
                "options": options,
                "precision": precision,
                "stability": stability,
            }
        )
        return first_order_result()

    monkeypatch.setattr(reluspec.analysis, "solve", solve)
    return calls


@pytest.fixture
def fake_diagram(monkeypatch):
    calls = []

    def phase_diagram(
        activations, Ks, alpha=(0.5, 100.0), *, options=None, progress=True, workers=1
    ):
        calls.append(
            {
                "activations": activations,
                "Ks": Ks,
                "alpha": alpha,
                "options": options,
                "progress": progress,
                "workers": workers,
            }
        )
        return first_order_diagram()

    monkeypatch.setattr(reluspec.analysis, "phase_diagram", phase_diagram)
    return calls


def _assert_png(path):
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 10_000


# -- parsing K -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2-10,20,50,100", [2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 50, 100]),
        ("5", [5]),
        ("7,3,5,3", [3, 5, 7]),
        ("4-6,5-8", [4, 5, 6, 7, 8]),
        (" 2 - 3 , 9 ", [2, 3, 9]),
        ("3-3", [3]),
    ],
)
def test_parse_K_list_valid(text, expected):
    assert cli.parse_K_list(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not an integer"),
        ("1-5", "below 2"),
        ("0", "below 2"),
        ("a", "not an integer"),
        ("2-", "not an integer"),
        ("-3", "not an integer"),
        ("2--4", "not an integer"),
        ("2.5", "not an integer"),
        ("inf", "not an integer"),
        ("5-3", "empty"),
        ("2-100000", "more than"),
        ("2,,3", "not an integer"),
    ],
)
def test_parse_K_list_invalid(text, reason):
    with pytest.raises(argparse.ArgumentTypeError, match=reason) as info:
        cli.parse_K_list(text)
    if reason != "more than":
        assert "2-10,20,50,100" in str(info.value)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(2, 60), st.integers(0, 12)), min_size=1, max_size=6)
)
def test_parse_K_list_matches_union(items):
    text = ",".join(f"{lo}-{lo + width}" if width else str(lo) for lo, width in items)
    expected = sorted({K for lo, width in items for K in range(lo, lo + width + 1)})
    assert cli.parse_K_list(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("2", 2), ("100", 100), (" 7 ", 7)])
def test_parse_K_valid(text, expected):
    assert cli.parse_K(text) == expected


@pytest.mark.parametrize("text", ["1", "0", "-2", "2.0", "two", ""])
def test_parse_K_invalid(text):
    with pytest.raises(argparse.ArgumentTypeError, match=">= 2"):
        cli.parse_K(text)


# -- parsing alpha ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.5:60", (0.5, 60.0)), ("1e-1:1e2", (0.1, 100.0)), ("3:3.0001", (3.0, 3.0001))],
)
def test_parse_alpha_range_valid(text, expected):
    assert cli.parse_alpha_range(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "5:1",
        "2:2",
        "0:1",
        "-1:2",
        "1",
        "1:2:3",
        "a:b",
        "nan:1",
        "1:inf",
        ":",
        "1-2",
        "1e-300:10",
        "1:1e9",
    ],
)
def test_parse_alpha_range_invalid(text):
    with pytest.raises(
        argparse.ArgumentTypeError, match="LO:HI with 1e-08 <= LO < HI <= 1e[+]08"
    ):
        cli.parse_alpha_range(text)


# -- usage errors through main ---------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["curve", "--K", "1"], "K >= 2"),
        (["curve", "--K", "3", "--alpha", "5:1"], "LO:HI with 1e-08 <= LO < HI"),
        (["curve", "--K", "3", "--activation", "tanh"], "unknown activation 'tanh'"),
        (["curve"], "--K"),
        (["diagram", "--K", "2-x"], "2-10,20,50,100"),
        (["diagram", "--K", "1-4"], "2-10,20,50,100"),
        (
            ["diagram", "--activation", "relu", "sigmoid"],
            "unknown activation 'sigmoid'",
        ),
        (["curve", "--K", "3", "--plot", "out.xyz"], ".png"),
        (
            ["curve", "--K", "3", "--csv", "/no/such/directory/out.csv"],
            "does not exist",
        ),
        (["curve", "--K", "3", "--json", "."], "not a directory"),
        (["curve", "--K", "3", "--precision", "8"], "from 16 to 1000"),
        (["curve", "--K", "3", "--precision", "100000"], "from 16 to 1000"),
        (["curve", "--K", "3", "--precision", "thirty"], "from 16 to 1000"),
        (["curve", "--K", "3", "--grid", "1"], ">= 2"),
        (["curve", "--K", "3", "-v", "-q"], "not allowed with"),
        (["solve"], "invalid choice"),
        ([], "required"),
    ],
)
def test_usage_errors(argv, message, capsys, fake_solve):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "usage: reluspec" in err
    assert message in err
    assert "Traceback" not in err
    assert fake_solve == []


def test_unknown_activation_lists_valid_names(capsys):
    assert cli.main(["curve", "--K", "3", "--activation", "tanh"]) == 2
    err = capsys.readouterr().err
    assert "relu" in err
    assert "erf" in err


def test_help_exits_zero(capsys):
    assert cli.main(["--help"]) == 0
    assert "curve" in capsys.readouterr().out
    assert cli.main(["diagram", "--help"]) == 0
    assert "LO-HI" in capsys.readouterr().out


def test_precision_range_matches_solve(fake_solve, capsys):
    """The command accepts exactly the precisions that solve accepts, and
    its help states that range."""
    for digits in (16, MAX_PRECISION):
        assert cli.main(["curve", "--K", "3", "--precision", str(digits)]) == 0
        assert fake_solve[-1]["precision"] == digits
    calls = len(fake_solve)
    for digits in (15, MAX_PRECISION + 1):
        assert cli.main(["curve", "--K", "3", "--precision", str(digits)]) == 2
        problem = reluspec.SpecializationProblem("relu", 2)
        with pytest.raises(ValueError, match=f"from 16 to {MAX_PRECISION}"):
            real_solve(problem, alpha=(1.0, 2.0), precision=digits)
    assert len(fake_solve) == calls
    capsys.readouterr()
    assert cli.main(["curve", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"DIGITS decimal digits, from 16 to {MAX_PRECISION}" in help_text


# -- numerical failures ----------------------------------------------------------------
@pytest.mark.parametrize(
    "error",
    [
        ContinuationError("step size fell below ds_min at alpha = 3.1"),
        LocationError("Newton iteration for the fold did not converge\nresidual 1e-3"),
        StationaryPointError("no stationary point"),
        np.linalg.LinAlgError("Singular matrix"),
    ],
)
def test_numerical_failure_exits_one(error, monkeypatch, capsys):
    def failing_solve(*args, **kwargs):
        raise error

    monkeypatch.setattr(reluspec.analysis, "solve", failing_solve)
    assert cli.main(["curve", "--K", "3"]) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"reluspec curve: error: {type(error).__name__}: ")
    assert " ".join(str(error).split()) in lines[0]


def test_failure_in_diagram_exits_one(monkeypatch, capsys):
    def failing(*args, **kwargs):
        raise ContinuationError("branch lost")

    monkeypatch.setattr(reluspec.analysis, "phase_diagram", failing)
    assert cli.main(["diagram", "--K", "2-3", "-q"]) == 1
    assert "ContinuationError: branch lost" in capsys.readouterr().err


# -- curve -----------------------------------------------------------------------------
def test_curve_passes_parsed_arguments(fake_solve, capsys):
    argv = ["curve", "--activation", "ERF", "--K", "7", "--alpha", "1:40"]
    assert cli.main(argv + ["--grid", "40", "--precision", "30"]) == 0
    (call,) = fake_solve
    assert call["problem"].K == 7
    assert call["problem"].activation.name == "erf"
    assert call["alpha"] == (1.0, 40.0)
    assert call["options"].grid_points == 40
    assert call["precision"] == 30
    assert call["stability"] == "full"
    out = capsys.readouterr().out
    assert out.strip() == first_order_result().summary().strip()


def test_curve_writes_files(fake_solve, tmp_path, capsys):
    paths = {
        "csv": tmp_path / "curve.csv",
        "json": tmp_path / "curve.json",
        "plot": tmp_path / "curve.png",
        "order": tmp_path / "order.png",
    }
    argv = [
        "curve",
        "--K",
        "3",
        "--csv",
        str(paths["csv"]),
        "--json",
        str(paths["json"]),
    ]
    argv += [
        "--plot",
        str(paths["plot"]),
        "--plot-order-parameters",
        str(paths["order"]),
    ]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    for path in paths.values():
        assert str(path) in out

    expected = first_order_result()
    with paths["csv"].open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == CURVE_COLUMNS
    assert len(rows) - 1 == sum(len(b.alpha) for b in expected.branches)
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["branch"] == expected.branches[0].name
    assert float(first["alpha"]) == expected.branches[0].alpha[0]

    loaded = SpecializationResult.from_json(paths["json"])
    assert loaded.to_dict() == expected.to_dict()
    _assert_png(paths["plot"])
    _assert_png(paths["order"])


def test_curve_logging_levels(fake_solve):
    root = logging.getLogger()
    assert cli.main(["curve", "--K", "3"]) == 0
    assert root.level == logging.WARNING
    assert cli.main(["curve", "--K", "3", "-v"]) == 0
    assert root.level == logging.INFO
    assert cli.main(["-v", "curve", "--K", "3"]) == 0
    assert root.level == logging.INFO
    assert cli.main(["curve", "--K", "3", "-vv"]) == 0
    assert root.level == logging.DEBUG
    assert cli.main(["curve", "--K", "3", "-q"]) == 0
    assert root.level == logging.ERROR


# -- diagram ---------------------------------------------------------------------------
def test_diagram_passes_parsed_arguments(fake_diagram, capsys):
    argv = ["diagram", "--activation", "relu", "erf", "relu", "--K", "2-4,10", "3,20"]
    assert cli.main(argv + ["--alpha", "0.5:100", "-q"]) == 0
    (call,) = fake_diagram
    assert call["activations"] == ["relu", "erf"]
    assert call["Ks"] == [2, 3, 4, 10, 20]
    assert call["alpha"] == (0.5, 100.0)
    assert call["progress"] is False
    assert capsys.readouterr().out.strip() == first_order_diagram().table().strip()

    assert cli.main(["diagram"]) == 0
    assert fake_diagram[1]["activations"] == ["relu", "erf"]
    assert fake_diagram[1]["Ks"] == list(range(2, 11))
    assert fake_diagram[1]["progress"] is True
    assert fake_diagram[1]["workers"] == 0

    assert cli.main(["diagram", "--workers", "3", "-q"]) == 0
    assert fake_diagram[2]["workers"] == 3


def test_diagram_rejects_negative_workers(capsys):
    assert cli.main(["diagram", "--workers", "-1"]) == 2
    assert "invalid number of workers '-1': expected an integer >= 0" in (
        capsys.readouterr().err
    )


def test_diagram_writes_files(fake_diagram, tmp_path):
    csv_path, json_path, png_path = (tmp_path / n for n in ("d.csv", "d.json", "d.png"))
    argv = ["diagram", "--K", "2-3", "--csv", str(csv_path), "--json", str(json_path)]
    assert cli.main(argv + ["--plot", str(png_path), "-q"]) == 0
    expected = first_order_diagram()
    with csv_path.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(DiagramRow.__dataclass_fields__)
    assert len(rows) - 1 == len(expected.rows)
    loaded = PhaseDiagram.from_json(json_path)
    # repr makes NaN fields compare equal, which == on the rows does not.
    assert [repr(row) for row in loaded.rows] == [repr(row) for row in expected.rows]
    _assert_png(png_path)


# -- plot ------------------------------------------------------------------------------
def test_plot_reads_saved_files(tmp_path, capsys):
    curve_json, diagram_json = tmp_path / "curve.json", tmp_path / "diagram.json"
    first_order_result().to_json(curve_json)
    first_order_diagram().to_json(diagram_json)
    curve_png, order_png, diagram_png = (
        tmp_path / n for n in ("c.png", "o.png", "d.png")
    )
    argv = ["plot", str(curve_json), "--plot", str(curve_png)]
    assert cli.main(argv + ["--plot-order-parameters", str(order_png)]) == 0
    assert cli.main(["plot", str(diagram_json), "--plot", str(diagram_png)]) == 0
    for path in (curve_png, order_png, diagram_png):
        _assert_png(path)


def test_plot_rejects_other_files(tmp_path, capsys):
    text_file, other_json = tmp_path / "notes.json", tmp_path / "other.json"
    text_file.write_text("not json")
    other_json.write_text(json.dumps({"answer": 42}))
    for source in (text_file, other_json):
        assert cli.main(["plot", str(source), "--plot", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err
        assert "usage: reluspec plot" in err
        assert str(source) in err
    missing = tmp_path / "missing.json"
    assert cli.main(["plot", str(missing), "--plot", str(tmp_path / "x.png")]) == 2
    assert "not found" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"branches": [], "activation": "relu"}))
    assert cli.main(["plot", str(broken), "--plot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "not a valid SpecializationResult file: ValueError" in err
    assert "Traceback" not in err


def test_plot_rejects_order_parameters_of_diagram(tmp_path, capsys):
    source = tmp_path / "diagram.json"
    first_order_diagram().to_json(source)
    argv = ["plot", str(source), "--plot", str(tmp_path / "d.png")]
    argv += ["--plot-order-parameters", str(tmp_path / "o.png")]
    assert cli.main(argv) == 2
    assert "order parameters need a result" in capsys.readouterr().err


# -- the module and an end-to-end run --------------------------------------------------
def _run_module(module, *arguments):
    # The child process imports the same reluspec as this one.
    source = str(Path(reluspec.__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", module, *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": path},
    )


@pytest.mark.parametrize("module", ["reluspec", "reluspec.cli"])
def test_python_dash_m_runs_main(module):
    completed = _run_module(module, "curve", "--K", "1")
    assert completed.returncode == 2
    assert "K >= 2" in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize("module", ["reluspec", "reluspec.cli"])
def test_python_dash_m_runs_commands(module, tmp_path):
    """Both module entry points print the help and run a command to its
    end, each with exit code 0."""
    completed = _run_module(module, "--help")
    assert completed.returncode == 0
    assert completed.stdout.startswith("usage: reluspec ")
    source, figure = tmp_path / "diagram.json", tmp_path / "diagram.png"
    first_order_diagram().to_json(source)
    completed = _run_module(module, "plot", str(source), "--plot", str(figure))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == f"wrote figure {figure}\n"
    _assert_png(figure)


def test_curve_end_to_end(tmp_path, capsys):
    """Solve erf with K = 2 on a coarse grid and read every file back."""
    csv_path, json_path, png_path = (tmp_path / n for n in ("e.csv", "e.json", "e.png"))
    argv = [
        "curve",
        "--activation",
        "erf",
        "--K",
        "2",
        "--alpha",
        "1:40",
        "--grid",
        "40",
    ]
    argv += ["--csv", str(csv_path), "--json", str(json_path), "--plot", str(png_path)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("erf, K = 2")

    result = SpecializationResult.from_json(json_path)
    assert result.activation == "erf"
    assert result.K == 2
    assert result.alpha_range == (1.0, 40.0)
    names = [b.name for b in result.branches]
    assert "unspecialized" in names
    for point in result.critical_points:
        assert point.kind in out
    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == CURVE_COLUMNS
    alphas = np.array([float(row["alpha"]) for row in rows])
    # The solver keeps only points inside the range, up to its 1e-12
    # relative tolerance at the ends.
    assert np.all(alphas >= 1.0 * (1 - 1e-12))
    assert np.all(alphas <= 40.0 * (1 + 1e-12))
    assert len(rows) == sum(len(b.alpha) for b in result.branches)
    _assert_png(png_path)


def test_curve_stability_option_reaches_result(tmp_path, capsys):
    """--stability ansatz and --stability full both run, and the JSON records
    which label decided the equilibrium."""
    for label in ("full", "ansatz"):
        path = tmp_path / f"{label}.json"
        argv = ["curve", "--activation", "relu", "--K", "3", "--alpha", "2:20"]
        argv += ["--grid", "40", "--stability", label, "--json", str(path), "-q"]
        assert cli.main(argv) == 0
        loaded = SpecializationResult.from_json(path)
        assert loaded.metadata["stability"] == label
        assert all(b.stability == label for b in loaded.branches)
    capsys.readouterr()


def test_curve_rejects_unknown_stability(capsys):
    assert cli.main(["curve", "--K", "3", "--stability", "partial"]) == 2
    err = capsys.readouterr().err
    assert "stability" in err
    assert "Traceback" not in err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs the Linux /proc")
def test_unwritable_output_is_usage_error(capsys, fake_solve):
    """/proc takes no new files, even for root: the error comes before any
    solve and names the option."""
    assert cli.main(["curve", "--K", "3", "--csv", "/proc/reluspec.csv"]) == 2
    assert "argument --csv: invalid CSV file '/proc/reluspec.csv': it cannot be " in (
        capsys.readouterr().err
    )
    assert fake_solve == []


def test_output_check_leaves_no_file(tmp_path):
    path = tmp_path / "new.csv"
    assert cli._output_path("CSV")(str(path)) == path
    assert not path.exists()
    existing = tmp_path / "old.csv"
    existing.write_text("kept")
    cli._output_path("CSV")(str(existing))
    assert existing.read_text() == "kept"


def test_curve_writes_points_csv(fake_solve, tmp_path, capsys):
    path = tmp_path / "points.csv"
    assert cli.main(["curve", "--K", "3", "--points-csv", str(path)]) == 0
    assert f"wrote CSV {path}" in capsys.readouterr().out
    assert path.read_text() == first_order_result().critical_points_csv()


@pytest.mark.parametrize(
    "argv",
    [["curve", "--K", "100001"], ["diagram", "--K", "2-100001"]],
)
def test_K_above_limit_is_usage_error(argv, capsys):
    assert cli.main(argv) == 2
    assert "K must be at most 100000" in capsys.readouterr().err


def test_closed_output_pipe_ends_quietly(monkeypatch, capsys):
    """A reader that closes standard output early (as head does) ends the
    command with exit code 141 and no error message."""

    def closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_run_limit", closed_pipe)
    assert cli.main(["limit", "--activation", "relu"]) == 141
    assert capsys.readouterr().err == ""


def test_plot_command_reports_figure(fake_solve, tmp_path, capsys):
    source = tmp_path / "curve.json"
    assert cli.main(["curve", "--K", "3", "--json", str(source), "-q"]) == 0
    capsys.readouterr()
    figure = tmp_path / "again.png"
    assert cli.main(["plot", str(source), "--plot", str(figure)]) == 0
    assert f"wrote figure {figure}" in capsys.readouterr().out
    _assert_png(figure)


def test_files_written_before_output_closes(fake_solve, tmp_path, monkeypatch):
    """A reader that closes standard output at the first line (head -1)
    still gets the requested files."""
    path = tmp_path / "curve.csv"
    lines = []

    def closing_print(*args, **kwargs):
        lines.append(args)
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("builtins.print", closing_print)
    assert cli.main(["curve", "--K", "3", "--csv", str(path), "-q"]) == 141
    assert path.read_text() == first_order_result().to_csv()


def test_output_check_leaves_links_alone(tmp_path):
    target = tmp_path / "target.csv"
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert cli._output_path("CSV")(str(link)) == link
    assert link.is_symlink()
    assert not target.exists()


def test_unwritable_existing_file_is_usage_error(tmp_path, monkeypatch):
    """An existing file that cannot be opened for writing is rejected before
    any solve. Tests may run as root, which may write any file, so the
    operating system's denial is simulated."""
    path = tmp_path / "kept.csv"
    path.write_text("kept")

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli.os, "open", deny)
    with pytest.raises(
        argparse.ArgumentTypeError, match="it cannot be written .Permission denied"
    ):
        cli._output_path("CSV")(str(path))
    assert path.read_text() == "kept"


# -- refined critical points -----------------------------------------------------------
def _refined_result():
    """Return the hand-made result with its first-order point refined the
    way solve stores it: 30 digits, and the error of those digits passed as
    alpha_error."""
    result = first_order_result()
    points = list(result.critical_points)
    index = [p.kind for p in points].index("first_order")
    # 20 and 20 + 2e-29 round to the same double, so the digits differ
    # from the double alpha by less than its rounding.
    digits = "20.0000000000000000000000000002"
    points[index] = dataclasses.replace(
        points[index], alpha_high_precision=digits, alpha_error=3e-29
    )
    return dataclasses.replace(result, critical_points=points), points[index]


def test_refined_point_separates_errors():
    result, point = _refined_result()
    assert point.alpha == 20.0
    assert point.alpha_error == 0.5 * math.ulp(20.0)
    assert point.alpha_high_precision_error == 3e-29
    unrefined = [p for p in result.critical_points if not p.alpha_high_precision]
    assert [p.alpha_high_precision_error for p in unrefined] == [None, None]
    assert [p.alpha_error for p in unrefined] == [1e-13, 1e-12]


def test_curve_shows_error_of_each_value(monkeypatch, tmp_path, capsys):
    """The summary and the points CSV give the double alpha with its own
    error and the refined digits with theirs."""
    result, point = _refined_result()
    monkeypatch.setattr(reluspec.analysis, "solve", lambda *args, **kwargs: result)
    path = tmp_path / "points.csv"
    argv = ["curve", "--K", "3", "--precision", "30", "--points-csv", str(path)]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    # The table line of the point, not the line of its refined digits.
    (table_line,) = [
        line for line in lines if line.split()[:2] == ["first_order", "20"]
    ]
    assert table_line.split()[2] == "1.8e-15"
    assert "  refined in mpmath (the error is that of these digits):" in lines
    assert f"  first_order        alpha = {point.alpha_high_precision} +- 3.0e-29" in (
        lines
    )
    rows = list(csv.DictReader(path.open()))
    (row,) = [row for row in rows if row["kind"] == "first_order"]
    assert float(row["alpha"]) == 20.0
    assert float(row["alpha_error"]) == 0.5 * math.ulp(20.0)
    assert row["alpha_high_precision"] == point.alpha_high_precision
    assert float(row["alpha_high_precision_error"]) == 3e-29
    others = [row for row in rows if row["kind"] != "first_order"]
    assert {row["alpha_high_precision_error"] for row in others} == {""}


def test_refined_point_json_round_trip(tmp_path):
    result, point = _refined_result()
    path = tmp_path / "refined.json"
    result.to_json(path)
    again = SpecializationResult.from_json(path)
    assert again.critical_points == result.critical_points
    stored = json.loads(path.read_text())["critical_points"]
    assert [p["alpha_high_precision_error"] for p in stored] == [None, 3e-29, None]


def test_json_without_refined_error_field(tmp_path, capsys):
    """A JSON file without alpha_high_precision_error, whose alpha_error of a
    refined point is the error of the digits, reads back with the two
    errors separated and plots."""
    result, _ = _refined_result()
    data = result.to_dict()
    for stored in data["critical_points"]:
        if stored.pop("alpha_high_precision_error") is not None:
            stored["alpha_error"] = 3e-29
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    again = SpecializationResult.from_json(path)
    assert again.critical_points == result.critical_points
    figure = tmp_path / "old.png"
    assert cli.main(["plot", str(path), "--plot", str(figure)]) == 0
    _assert_png(figure)
    capsys.readouterr()


def test_curve_refined_errors_bound_digits(tmp_path, capsys):
    """Solve erf with K = 3 at 30 digits: each double alpha lies within its
    alpha_error of the refined digits, and the digits carry an error below
    1e-25 relative."""
    path = tmp_path / "points.csv"
    argv = ["curve", "--activation", "erf", "--K", "3", "--alpha", "20:60"]
    argv += ["--grid", "40", "--precision", "30", "--points-csv", str(path), "-q"]
    assert cli.main(argv) == 0
    capsys.readouterr()
    rows = [r for r in csv.DictReader(path.open()) if r["alpha_high_precision"]]
    assert sorted(r["kind"] for r in rows) == ["branch_point", "first_order", "fold"]
    for row in rows:
        alpha = float(row["alpha"])
        with mpmath.workdps(40):
            digits = mpmath.mpf(row["alpha_high_precision"])
            assert abs(digits - alpha) <= float(row["alpha_error"])
            assert float(row["alpha_error"]) == 0.5 * math.ulp(alpha)
        # The refinement reaches at least 25 of its 30 digits.
        assert float(row["alpha_high_precision_error"]) < 1e-25 * alpha


# -- failed solves in diagrams ---------------------------------------------------------
def _diagram_with_failure():
    return dataclasses.replace(
        first_order_diagram(),
        failures={("erf", 4): "LinAlgError: Singular matrix"},
    )


def test_diagram_prints_failed_solves(monkeypatch, tmp_path, capsys, caplog):
    diagram = _diagram_with_failure()
    monkeypatch.setattr(
        reluspec.analysis, "phase_diagram", lambda *args, **kwargs: diagram
    )
    csv_path, json_path = tmp_path / "d.csv", tmp_path / "d.json"
    argv = ["diagram", "--K", "2-5", "--csv", str(csv_path), "--json", str(json_path)]
    with caplog.at_level(logging.WARNING):
        assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "erf            4  solve failed: LinAlgError: Singular matrix" in out
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "the CSV has no rows for 1 failed solves: erf K=4 "
        "(LinAlgError: Singular matrix)"
    ]
    loaded = PhaseDiagram.from_json(json_path)
    assert loaded.failures == diagram.failures


def test_plot_warns_about_failed_solves(tmp_path, capsys, caplog):
    source, figure = tmp_path / "d.json", tmp_path / "d.png"
    _diagram_with_failure().to_json(source)
    with caplog.at_level(logging.WARNING):
        assert cli.main(["plot", str(source), "--plot", str(figure)]) == 0
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"the figure has no points for the failed solves erf K=4, whose errors "
        f"are in {source}"
    )
    _assert_png(figure)
    capsys.readouterr()

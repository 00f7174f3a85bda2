"""Tests of phase diagrams: parallel solves and their log records."""

import csv
import dataclasses
import io
import json
import logging
import math
import os
import pickle
import subprocess
import sys
import textwrap
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest

import reluspec as rs
from reluspec.analysis import LocationError, StationaryPointError
from reluspec.analysis import diagram as diagram_module
from reluspec.analysis.problem import SpecializationProblem
from reluspec.continuation import ContinuationError


def test_parallel_diagram_equals_serial():
    """Solves are deterministic, so two worker processes give the rows and
    results of one process exactly."""
    # K = 20, 21 and 23 take the ReLU fold and equal-F point from the
    # regular large-K equations, which each process traces and solves on
    # its own; their results must not depend on which K came before.
    arguments = (["relu", "erf"], [2, 3, 20, 21, 23], (1.0, 40.0))
    serial = rs.phase_diagram(*arguments, progress=False, workers=1)
    parallel = rs.phase_diagram(*arguments, progress=False, workers=2)
    assert parallel.rows == serial.rows
    assert list(parallel.results) == list(serial.results)
    for key, result in serial.results.items():
        assert parallel.results[key].to_json() == result.to_json()


@pytest.mark.parametrize("workers", [-1, 1.5, True, "2"])
def test_diagram_rejects_invalid_workers(workers):
    with pytest.raises(ValueError, match=r"workers = .* is invalid: .* processes >= 1"):
        rs.phase_diagram(["relu"], [3], progress=False, workers=workers)


def test_diagram_checks_every_K_before_solving(monkeypatch):
    def no_solve(*args, **kwargs):
        raise AssertionError("a solve started before K was checked")

    monkeypatch.setattr(diagram_module, "solve", no_solve)
    with pytest.raises(ValueError, match="K = 1 is invalid"):
        rs.phase_diagram(["relu"], [3, 1], progress=False)


def test_worker_returns_formatted_records():
    """A worker hands back its log records with the message already
    formatted, so that they pickle whatever their arguments were."""
    problem = SpecializationProblem("relu", 2)
    outcome, records = diagram_module._solve_in_worker(
        problem, (1.0, 10.0), None, logging.INFO
    )
    assert isinstance(outcome, rs.SpecializationResult)
    messages = [record.msg for record in records]
    assert any(m.startswith("solving SpecializationProblem(") for m in messages)
    assert all(record.args is None for record in records)
    assert logging.getLogger("reluspec").propagate


def test_worker_reports_failure_as_text(monkeypatch):
    def failing(problem, alpha, options=None):
        raise FloatingPointError("overflow in the entropy")

    monkeypatch.setattr(diagram_module, "solve", failing)
    outcome = diagram_module._solve_one(SpecializationProblem("erf", 3), (1, 2), None)
    assert outcome == "FloatingPointError: overflow in the entropy"
    diagram = rs.phase_diagram(["erf"], [3, math.inf], progress=False)
    assert diagram.failures == {("erf", 3): outcome}


def test_csv_writes_plain_numbers():
    """Every alpha and error in the CSV parses as a float: numpy scalars are
    written as numbers, not as their repr."""
    diagram = rs.phase_diagram(["erf"], [3], (1.0, 60.0), progress=False)
    lines = diagram.to_csv().splitlines()
    header = lines[0].split(",")
    columns = [header.index("alpha"), header.index("alpha_error")]
    for line in lines[1:]:
        fields = next(csv.reader([line]))
        for column in columns:
            assert math.isfinite(float(fields[column]))
    assert "np.float64" not in diagram.to_csv()


def test_diagram_checks_alpha_before_solving(monkeypatch):
    def no_solve(*args, **kwargs):
        raise AssertionError("a solve started before alpha was checked")

    monkeypatch.setattr(diagram_module, "solve", no_solve)
    with pytest.raises(ValueError, match=r"alpha range \(5.0, 1.0\) is invalid"):
        rs.phase_diagram(["relu"], [3], (5.0, 1.0), progress=False)


def test_diagram_solves_repeated_K_once(monkeypatch):
    calls = []

    def counting_solve(problem, alpha, options=None):
        calls.append((problem.activation.name, problem.K))
        return rs.solve(problem, alpha, options=options)

    monkeypatch.setattr(diagram_module, "solve", counting_solve)
    diagram = rs.phase_diagram(
        ["erf", "relu", "erf"], [3, 2, 3], (1.0, 40.0), progress=False
    )
    assert calls == [("erf", 3), ("erf", 2), ("relu", 3), ("relu", 2)]
    assert [r.activation for r in diagram.rows] == sorted(
        (r.activation for r in diagram.rows), key=["erf", "relu"].index
    )
    assert diagram.rows[0].activation == "erf"


@pytest.mark.parametrize("K", ["2-4", 2.5, True, None])
def test_diagram_rejects_invalid_K_values(K):
    with pytest.raises(ValueError, match="Ks must be integers >= 2 or math.inf"):
        rs.phase_diagram(["relu"], [3, K], progress=False)


# -- worker processes and the __main__ guard -------------------------------------------
def _row_texts(diagram):
    """Return the repr of every row: exact for floats, and equal for two nan
    values, which compare unequal."""
    return [repr(row) for row in diagram.rows]


def _run_script(directory, source):
    """Run ``source`` as a script in a new interpreter that imports the
    reluspec of this process."""
    script = directory / "script.py"
    script.write_text(textwrap.dedent(source))
    package = str(Path(rs.__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [package, os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=directory,
        env={**os.environ, "PYTHONPATH": path},
    )


def test_unguarded_script_names_the_guard(tmp_path):
    """Each spawned worker imports the script again and fails there, and the
    parent reports the missing guard instead of BrokenProcessPool."""
    completed = _run_script(
        tmp_path,
        """
        import reluspec as rs

        rs.phase_diagram(["relu"], [2, 3], (1.0, 10.0), workers=2, progress=False)
        """,
    )
    assert completed.returncode == 1
    last_line = completed.stderr.strip().splitlines()[-1]
    assert last_line.startswith("RuntimeError: a worker process of phase_diagram ")
    assert 'if __name__ == "__main__":' in last_line
    assert "workers=1" in last_line
    assert "BrokenProcessPool" in completed.stderr


def test_guarded_script_solves_in_workers(tmp_path):
    """The README pattern: with the guard the same call succeeds and gives
    the diagram of one process."""
    completed = _run_script(
        tmp_path,
        """
        import reluspec as rs

        if __name__ == "__main__":
            diagram = rs.phase_diagram(
                ["relu"], [2, 3], (1.0, 10.0), workers=2, progress=False
            )
            diagram.to_json("parallel.json")
        """,
    )
    assert completed.returncode == 0, completed.stderr
    parallel = rs.PhaseDiagram.from_json(tmp_path / "parallel.json")
    serial = rs.phase_diagram(["relu"], [2, 3], (1.0, 10.0), progress=False)
    assert _row_texts(parallel) == _row_texts(serial)
    assert parallel.failures == {}


def test_broken_pool_during_submit_names_the_guard(monkeypatch):
    """A pool that breaks before every job is submitted raises the same
    RuntimeError, chained to the BrokenProcessPool."""

    class BrokenPool:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return False

        def submit(self, *args, **kwargs):
            raise BrokenProcessPool("a child process terminated abruptly")

    monkeypatch.setattr(diagram_module, "ProcessPoolExecutor", BrokenPool)
    with pytest.raises(RuntimeError, match="__name__ == \"__main__\"") as caught:
        rs.phase_diagram(["relu"], [2, 3], (1.0, 10.0), progress=False, workers=2)
    assert isinstance(caught.value.__cause__, BrokenProcessPool)


# -- failed solves ---------------------------------------------------------------------
def _failing_at(K_failing, error):
    """Return a solve that raises ``error`` for K_failing and solves the rest."""

    def solve(problem, alpha, options=None):
        if problem.K == K_failing:
            raise error
        return rs.solve(problem, alpha, options=options)

    return solve


NUMERICAL_ERRORS = [
    np.linalg.LinAlgError("Singular matrix"),
    ValueError("math domain error"),
    ContinuationError("step size fell below ds_min at alpha = 3.1"),
    LocationError("Newton iteration for the fold did not converge"),
    StationaryPointError("no stationary point"),
    ZeroDivisionError("float division by zero"),
    OverflowError("math range error"),
    FloatingPointError("overflow encountered in exp"),
]


@pytest.mark.parametrize("error", NUMERICAL_ERRORS, ids=lambda e: type(e).__name__)
def test_numerical_failure_loses_one_K(error, monkeypatch, caplog):
    monkeypatch.setattr(diagram_module, "solve", _failing_at(3, error))
    with caplog.at_level(logging.ERROR, logger="reluspec"):
        diagram = rs.phase_diagram(["relu"], [2, 3], (1.0, 10.0), progress=False)
    message = f"{type(error).__name__}: {error}"
    assert diagram.failures == {("relu", 3): message}
    assert list(diagram.results) == [("relu", 2)]
    assert {row.K for row in diagram.rows} == {2}
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert logged == [f"solving relu with K = 3 failed: {message}"]


@pytest.mark.parametrize(
    "error",
    [
        TypeError("unsupported operand type(s)"),
        KeyError("R"),
        AttributeError("'NoneType' object has no attribute 'alpha'"),
        NotImplementedError("no kernel for this activation"),
        RecursionError("maximum recursion depth exceeded"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_programming_error_ends_the_diagram(error, monkeypatch):
    monkeypatch.setattr(diagram_module, "solve", _failing_at(3, error))
    with pytest.raises(type(error)):
        rs.phase_diagram(["relu"], [2, 3], (1.0, 10.0), progress=False)


def test_failure_message_is_one_line(monkeypatch):
    error = LocationError("Newton iteration did not converge\n  residual 1e-3")
    monkeypatch.setattr(diagram_module, "solve", _failing_at(3, error))
    outcome = diagram_module._solve_one(SpecializationProblem("erf", 3), (1, 2), None)
    assert outcome == "LocationError: Newton iteration did not converge residual 1e-3"


def test_worker_keeps_failure_traceback(monkeypatch):
    """At DEBUG level a worker logs the traceback of a failed solve as text,
    which survives pickling to the parent process."""

    def failing(problem, alpha, options=None):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(diagram_module, "solve", failing)
    outcome, records = diagram_module._solve_in_worker(
        SpecializationProblem("erf", 3), (1.0, 2.0), None, logging.DEBUG
    )
    assert outcome == "LinAlgError: Singular matrix"
    (record,) = [r for r in pickle.loads(pickle.dumps(records)) if r.exc_text]
    assert record.exc_text.startswith("Traceback (most recent call last):")
    assert "LinAlgError: Singular matrix" in record.exc_text
    assert "Singular matrix" in logging.Formatter().format(record)


@pytest.fixture(scope="module")
def diagram_with_failure():
    """relu with K = 2 solved, K = 3 failed, and the K = infinity rows."""
    error = np.linalg.LinAlgError("Singular matrix")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(diagram_module, "solve", _failing_at(3, error))
        return rs.phase_diagram(["relu"], [2, 3, math.inf], (1.0, 10.0), progress=False)


def test_failures_survive_json(diagram_with_failure, tmp_path):
    path = tmp_path / "diagram.json"
    diagram_with_failure.to_json(path)
    stored = json.loads(path.read_text())["failures"]
    assert stored == [
        {"activation": "relu", "K": 3, "message": "LinAlgError: Singular matrix"}
    ]
    again = rs.PhaseDiagram.from_json(path)
    assert again.failures == {("relu", 3): "LinAlgError: Singular matrix"}
    assert _row_texts(again) == _row_texts(diagram_with_failure)
    assert list(again.results) == [("relu", 2)]


def test_json_without_failures_reads_back(diagram_with_failure):
    """A JSON file without the failures field reads back with none."""
    data = json.loads(diagram_with_failure.to_json())
    del data["failures"]
    again = rs.PhaseDiagram.from_json(json.dumps(data))
    assert again.failures == {}
    assert _row_texts(again) == _row_texts(diagram_with_failure)


def test_table_lists_failures(diagram_with_failure):
    lines = diagram_with_failure.table().splitlines()
    assert lines[-2] == "failed solves (1), with no rows above:"
    assert lines[-1].split() == ["relu", "3", "solve", "failed:", "LinAlgError:"] + [
        "Singular",
        "matrix",
    ]
    rows = lines[1:-2]
    assert len(rows) == len(diagram_with_failure.rows)


def test_table_without_failures_has_only_rows(diagram_with_failure):
    diagram = dataclasses.replace(diagram_with_failure, failures={})
    lines = diagram.table().splitlines()
    assert len(lines) == 1 + len(diagram.rows)
    assert not any("failed" in line for line in lines)


def test_csv_warns_about_failures(diagram_with_failure, caplog):
    with caplog.at_level(logging.WARNING, logger="reluspec"):
        text = diagram_with_failure.to_csv()
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "the CSV has no rows for 1 failed solves: "
        "relu K=3 (LinAlgError: Singular matrix)"
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(diagram_with_failure.rows)
    assert {row["K"] for row in rows} == {"2", "inf"}

"""Benchmark the vectorised pair-correlation kernels.

Run from the repository root after building the extension::

    python benchmarks/bench_kernels.py [--n 1000000] [--repeat 7] [--check 20000]

For ReLU and erf units, on ``n`` random covariances, it reports per
covariance:

* ``kernel 1 thread``: the Cython kernel on one thread (``_kernels.pair``),
  which runs the SIMD fast path and the careful path for the covariances
  outside its region (their share is reported too);
* ``pair``: the public ``Activation.pair`` (validation included), which splits
  large arrays across ``RELUSPEC_NUM_THREADS`` threads (default: all CPUs);
* ``numpy``: the straightforward numpy expression of the same closed form, in
  the ``atan2`` form that the kernel uses and, for ReLU, in the ``arccos``,
  ``sin``, ``cos`` form of the textbook formula;
* ``floor``: the transcendental calls alone (numpy's ``sqrt`` and ``arctan2``
  or ``arcsin`` on ``n`` elements);
* the largest error in ulp, against mpmath at 50 digits, of the kernel and of
  the numpy expression on ``check`` randomly chosen benchmark inputs (0 skips
  the check);
* the cost of one scalar call from Python.

Times are the minimum over ``repeat`` runs, the figure least disturbed by
other load on the machine.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import timeit

import mpmath
import numpy as np

from reluspec import _kernels
from reluspec.activations import Erf, ReLU

TWO_PI = 2.0 * math.pi


def random_covariances(n: int, seed: int):
    """Return ``n`` covariances with log-uniform variances in [1e-2, 1e2] and
    correlations uniform in [-1, 1], 1% of them exactly +-1."""
    rng = np.random.default_rng(seed)
    c11 = 10.0 ** rng.uniform(-2, 2, n)
    c22 = 10.0 ** rng.uniform(-2, 2, n)
    rho = rng.uniform(-1.0, 1.0, n)
    edge = rng.random(n) < 0.01
    rho[edge] = np.sign(rho[edge])
    c12 = rho * np.sqrt(c11) * np.sqrt(c22)
    return c11, c12, c22


def relu_numpy_atan2(c11, c12, c22):
    """(r + (pi - theta) c12) / (2 pi), r = sqrt(c11 c22 - c12**2),
    theta = atan2(r, c12)."""
    r = np.sqrt(np.maximum(c11 * c22 - c12 * c12, 0.0))
    theta = np.arctan2(r, c12)
    return (r + (np.pi - theta) * c12) / TWO_PI


def relu_numpy_arccos(c11, c12, c22):
    """sqrt(c11 c22) / (2 pi) (sin theta + (pi - theta) cos theta),
    theta = arccos(c12 / sqrt(c11 c22))."""
    s = np.sqrt(c11 * c22)
    theta = np.arccos(np.clip(c12 / s, -1.0, 1.0))
    return s / TWO_PI * (np.sin(theta) + (np.pi - theta) * np.cos(theta))


def erf_numpy(c11, c12, c22):
    """(2/pi) arcsin(c12 / sqrt((1 + c11)(1 + c22)))."""
    return (2.0 / np.pi) * np.arcsin(c12 / np.sqrt((1.0 + c11) * (1.0 + c22)))


def best_time(function, repeat: int) -> float:
    return min(timeit.repeat(function, number=1, repeat=repeat))


def max_ulp_error(act, inputs, values, indices) -> float:
    """Largest distance in ulp of ``values`` from mpmath on the given inputs."""
    c11, c12, c22 = inputs
    worst = 0.0
    for i in indices:
        reference = act.pair_mp(c11[i], c12[i], c22[i], dps=50)
        value = float(values[i])
        if reference == 0:
            error = 0.0 if value == 0 else math.inf
        else:
            spacing = np.spacing(abs(float(reference)))
            error = float(abs(mpmath.mpf(value) - reference) / spacing)
        worst = max(worst, error)
    return worst


def careful_share(act, inputs, sample: int = 20000) -> float:
    """Share of the first ``sample`` covariances outside the fast region."""
    outside = [
        math.isnan(_kernels.fast_pair(act._kind, a, c, b))
        for a, c, b in zip(*(x[:sample] for x in inputs))
    ]
    return sum(outside) / len(outside)


def scalar_call_time(function, *args) -> float:
    number = 20000
    times = timeit.repeat(lambda: function(*args), number=number, repeat=5)
    return min(times) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="covariances")
    parser.add_argument("--repeat", type=int, default=7, help="timing runs")
    parser.add_argument(
        "--check",
        type=int,
        default=20000,
        help="inputs checked against mpmath (0 skips the check)",
    )
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()

    inputs = random_covariances(args.n, args.seed)
    c11, c12, c22 = inputs
    out = np.empty(args.n)
    rng = np.random.default_rng(args.seed + 1)
    indices = rng.choice(args.n, size=min(args.check, args.n), replace=False)
    per = 1e9 / args.n

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"numpy {np.__version__}, loops: {_kernels.instruction_set()}, "
        f"threads: {os.environ.get('RELUSPEC_NUM_THREADS', os.cpu_count())}"
    )
    print(
        f"n = {args.n} covariances, best of {args.repeat} runs, "
        f"ulp checked on {len(indices)} of them\n"
    )

    erf_ratio = c12 / np.sqrt((1.0 + c11) * (1.0 + c22))
    cases = [
        (
            ReLU(),
            [("atan2 form", relu_numpy_atan2), ("arccos form", relu_numpy_arccos)],
            lambda: (np.sqrt(c11, out=out), np.arctan2(c12, c22, out=out)),
        ),
        (
            Erf(),
            [("arcsin form", erf_numpy)],
            lambda: (np.sqrt(c11, out=out), np.arcsin(erf_ratio, out=out)),
        ),
    ]
    for act, numpy_forms, floor in cases:
        single = best_time(
            lambda act=act: _kernels.pair(act._kind, c11, c12, c22, out), args.repeat
        )
        public = best_time(lambda act=act: act.pair(c11, c12, c22), args.repeat)
        bottom = best_time(floor, args.repeat)
        gradient = best_time(
            lambda act=act: act.pair_gradient(c11, c12, c22), args.repeat
        )
        hessian = best_time(
            lambda act=act: act.pair_hessian(c11, c12, c22), args.repeat
        )
        values = act.pair(c11, c12, c22)
        kernel_ulp = max_ulp_error(act, inputs, values, indices)
        careful = careful_share(act, inputs)
        print(
            f"{act.name}: kernel 1 thread {single * per:.1f} ns, pair "
            f"{public * per:.1f} ns, gradient {gradient * per:.1f} ns, hessian "
            f"{hessian * per:.1f} ns, max error {kernel_ulp:.2f} ulp, "
            f"careful path {100 * careful:.2f} %"
        )
        print(
            f"  floor (numpy sqrt + inverse trig) {bottom * per:.1f} ns: "
            f"kernel 1 thread = {single / bottom:.1f} x floor, "
            f"pair = {public / bottom:.1f} x floor"
        )
        for label, form in numpy_forms:
            plain = best_time(lambda form=form: form(c11, c12, c22), args.repeat)
            with np.errstate(all="ignore"):
                numpy_ulp = max_ulp_error(act, inputs, form(c11, c12, c22), indices)
            print(
                f"  numpy {label} {plain * per:.1f} ns, max error "
                f"{numpy_ulp:.3g} ulp: pair is {plain / public:.2f} x as fast, "
                f"kernel 1 thread {plain / single:.2f} x"
            )

    print("\nscalar call from Python (one covariance), microseconds:")
    for act in (ReLU(), Erf()):
        pair = scalar_call_time(act.pair, 1.0, 0.3, 2.0)
        slope = scalar_call_time(act.unit_pair_derivative, 0.3, 1)
        hessian = scalar_call_time(act.pair_hessian, 1.0, 0.3, 2.0)
        print(
            f"  {act.name:<5} pair {pair * 1e6:.2f}, unit_pair_derivative "
            f"{slope * 1e6:.2f}, pair_hessian {hessian * 1e6:.2f}"
        )
    array_one = scalar_call_time(ReLU().pair, np.array([1.0]), 0.3, 2.0)
    print(f"  relu  pair on 1-element arrays {array_one * 1e6:.2f}")


if __name__ == "__main__":
    main()

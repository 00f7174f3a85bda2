"""An independent mpmath implementation of the site-symmetric free energy.

Written from the closed forms alone, without the library's kernels or theory
modules, so that tests can check critical points located by the library
against roots of the defining equations found here with mpmath.findroot.

Closed forms (unit variances, correlation rho):

* ReLU: I(rho) = (sqrt(1 - rho^2) + (pi - arccos rho) rho) / (2 pi),
  I'(rho) = (pi - arccos rho) / (2 pi), I''(rho) = 1 / (2 pi sqrt(1 - rho^2)).
* erf(x / sqrt 2): I(rho) = (2 / pi) arcsin(rho / 2),
  I'(rho) = (2 / pi) / sqrt(4 - rho^2), I''(rho) = (2 / pi) rho (4 - rho^2)^(-3/2).
"""

from __future__ import annotations

import mpmath as mp


def pair(name, rho, order=0):
    rho = mp.mpf(rho)
    if name == "relu":
        if order == 0:
            return (mp.sqrt(1 - rho**2) + (mp.pi - mp.acos(rho)) * rho) / (2 * mp.pi)
        if order == 1:
            return (mp.pi - mp.acos(rho)) / (2 * mp.pi)
        return 1 / (2 * mp.pi * mp.sqrt(1 - rho**2))
    if name == "erf":
        if order == 0:
            return 2 / mp.pi * mp.asin(rho / 2)
        if order == 1:
            return 2 / mp.pi / mp.sqrt(4 - rho**2)
        return 2 / mp.pi * rho * (4 - rho**2) ** mp.mpf(-1.5)
    raise ValueError(name)


def free_energy(name, K, R, S, C, alpha):
    """F = K alpha eps_g - s in the site-symmetric ansatz."""
    eps = pair(name, 1) - pair(name, R) + mp.mpf(K - 1) / 2 * (
        pair(name, C) - 2 * pair(name, S) + pair(name, 0)
    )
    A = 1 - C - (R - S) ** 2
    B = 1 + (K - 1) * C - (R + (K - 1) * S) ** 2
    s = mp.mpf(K - 1) / 2 * mp.log(A) + mp.log(B) / 2
    return K * alpha * eps - s


def gradient(name, K, R, S, C, alpha):
    """Gradient of F in (R, S, C) from the closed forms."""
    A = 1 - C - (R - S) ** 2
    B = 1 + (K - 1) * C - (R + (K - 1) * S) ** 2
    m = R + (K - 1) * S
    d = R - S
    dR = -K * alpha * pair(name, R, 1) + (K - 1) * d / A + m / B
    dS = -K * alpha * (K - 1) * pair(name, S, 1) - (K - 1) * d / A + (K - 1) * m / B
    dC = (
        K * alpha * mp.mpf(K - 1) / 2 * pair(name, C, 1)
        + mp.mpf(K - 1) / 2 / A
        - mp.mpf(K - 1) / 2 / B
    )
    return [dR, dS, dC]


def hessian(name, K, R, S, C, alpha):
    """Hessian of F in (R, S, C) from the closed forms."""
    A = 1 - C - (R - S) ** 2
    B = 1 + (K - 1) * C - (R + (K - 1) * S) ** 2
    m = R + (K - 1) * S
    d = R - S
    k1 = K - 1
    # Derivatives of A and B with respect to (R, S, C).
    dA = [-2 * d, 2 * d, -1]
    dB = [-2 * m, -2 * k1 * m, k1]
    d2A = [[-2, 2, 0], [2, -2, 0], [0, 0, 0]]
    d2B = [[-2, -2 * k1, 0], [-2 * k1, -2 * k1**2, 0], [0, 0, 0]]
    H = mp.matrix(3, 3)
    for i in range(3):
        for j in range(3):
            entropy = mp.mpf(k1) / 2 * (d2A[i][j] / A - dA[i] * dA[j] / A**2) + (
                d2B[i][j] / B - dB[i] * dB[j] / B**2
            ) / 2
            H[i, j] = -entropy
    H[0, 0] += -K * alpha * pair(name, R, 2)
    H[1, 1] += -K * alpha * k1 * pair(name, S, 2)
    H[2, 2] += K * alpha * mp.mpf(k1) / 2 * pair(name, C, 2)
    return H


def e_d(K):
    return [1 - mp.mpf(1) / K, -mp.mpf(1) / K, mp.mpf(0)]


def branch_point(name, K, m0, C0, alpha0, dps=40):
    """Root (m, C, alpha) of: stationary along e_m and e_C at R = S = m / K,
    and zero curvature e_d^T H e_d."""
    with mp.workdps(dps):
        ed = e_d(K)

        def equations(m, C, alpha):
            R = S = m / K
            g = gradient(name, K, R, S, C, alpha)
            H = hessian(name, K, R, S, C, alpha)
            curvature = sum(ed[i] * H[i, j] * ed[j] for i in range(3) for j in range(3))
            return [(g[0] + g[1]) / K, g[2], curvature]

        return mp.findroot(equations, (mp.mpf(m0), mp.mpf(C0), mp.mpf(alpha0)))


def fold(name, K, R0, S0, C0, alpha0, dps=40):
    """Root (R, S, C, alpha) of: grad F = 0 and det H = 0."""
    with mp.workdps(dps):

        def equations(R, S, C, alpha):
            g = gradient(name, K, R, S, C, alpha)
            return g + [mp.det(hessian(name, K, R, S, C, alpha))]

        return mp.findroot(
            equations, tuple(mp.mpf(x) for x in (R0, S0, C0, alpha0))
        )


def equal_free_energy(name, K, u1, u2, alpha0, dps=40):
    """Root (u1, u2, alpha) of: both states stationary, equal F."""
    with mp.workdps(dps):

        def equations(R1, S1, C1, R2, S2, C2, alpha):
            return (
                gradient(name, K, R1, S1, C1, alpha)
                + gradient(name, K, R2, S2, C2, alpha)
                + [
                    free_energy(name, K, R1, S1, C1, alpha)
                    - free_energy(name, K, R2, S2, C2, alpha)
                ]
            )

        start = tuple(mp.mpf(x) for x in (*u1, *u2, alpha0))
        return mp.findroot(equations, start)

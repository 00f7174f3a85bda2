# cython: language_level=3
"""Closed-form Gaussian integrals of ReLU and erf(x/sqrt(2)) units.

For zero-mean jointly Gaussian ``(u, v)`` with variances ``c11``, ``c22`` and
covariance ``c12`` the kernels evaluate the pair correlation
``I(c11, c12, c22) = <g(u) g(v)>``, its first and second derivatives with
respect to the three covariance entries, the mean ``<g(u)>`` and the
unit-variance functions of the correlation used by the site-symmetric theory.

Sources: the ReLU pair correlation is the degree-1 arc-cosine kernel of
Y. Cho and L. K. Saul, NIPS 22 (2009); the erf pair correlation is the one of
D. Saad and S. A. Solla, Phys. Rev. E 52, 4225 (1995), here for
g(x) = erf(x / sqrt(2)).

Accuracy
--------
Target: at most 4 ulp from the exact value at the given double inputs, over
the whole domain. Pair correlations take a fast path over most of the domain
and the careful path described here elsewhere (see "Fast path" below).
Measured against mpmath at 50 digits (tests/test_kernels.py and
tests/test_activations.py): pair correlations, first and second derivatives
and the unit-variance functions within 1.2 ulp, the parts beyond linear order
in the correlation within 3 ulp. Where precision would be lost, and what the
careful path does:

* Determinant. ``D = c11 c22 - c12**2`` cancels completely at correlation
  +-1. It is formed as a double-double from error-free products (``fma``), so
  it is exact to about 2**-106 relative to ``c11 c22``; ``sqrt(D)`` carries a
  low-order correction ``r_lo``.
* Angle. ``arccos(rho)`` loses half of the digits near rho = +-1. The angle
  is ``atan2(sqrt(D), -c12)``, well conditioned everywhere, evaluated by
  ``_atan2_dd`` as a double-double accurate to about 2**-60 (table of
  ``atan(k/8)`` and a short Taylor series), not by the C library.
* ReLU at negative correlation. ``I = (sqrt(D) - |c12| phi) / (2 pi)`` with
  ``tan(phi) = t = sqrt(D) / |c12|`` cancels like ``t**2`` as rho -> -1. For
  ``x = t**2 > 1/4`` the cancellation factor is below 13, which the
  double-double angle absorbs. For ``x <= 1/4`` the kernel evaluates
  ``I = |c12| x**1.5 G(x)`` with ``G(x) = (t - atan t) / (2 pi t**3)`` from
  a polynomial in the exactly known ``x = D / c12**2`` (Chebyshev
  interpolant, truncation error below 0.02 ulp, leading coefficient in
  double-double) and propagates the low-order parts of ``x``, ``sqrt(x)``
  and the products to first order.
* Derivatives. Chains of products and quotients carry their rounding errors,
  recovered with ``fma``, and are rounded once at the end (``_tmul``,
  ``_tdiv``); the ReLU ``I_11_11`` numerator ``c11 c22 / 2 - D``, which
  vanishes at rho**2 = 1/2, is a double-double.
* Constants ``1/(2 pi)``, ``1/sqrt(2 pi)``, ``pi`` and ``sqrt(3)`` are applied
  in double-double.
* Scale. The ReLU integrals are homogeneous, ``I(l**2 c11, l m c12, m**2
  c22) = l m I(c11, c12, c22)``. Variances outside [2**-400, 2**400] are
  rescaled by exact powers of 4 before the determinant is formed, so that
  no product over- or underflows, and results are scaled back with
  ``ldexp``. The erf integrals are not homogeneous. There the sum ``E``
  below is formed with the same rescaling when a variance exceeds 2**400,
  and all formulas use ``sqrt(E)`` and bounded ratios only.
* erf. ``I = (2/pi) asin(c12 / sqrt((1 + c11)(1 + c22)))`` is evaluated as
  ``(2/pi) atan2(c12, sqrt(E))`` with ``E = 1 + c11 + c22 + D``, a sum of
  non-negative terms, so that an argument of asin close to 1 (huge
  variances) loses nothing.
* Correlation +-1. A covariance with ``|rho| <= 1 + 8 * 2**-52`` is treated
  as ``|rho| = 1`` (``D`` clamped to 0, ``c12`` replaced by
  ``sign(c12) sqrt(c11 c22)``), and a larger ``|rho|`` is invalid input.
  First derivatives there are finite with the limiting value. Second
  derivatives of the ReLU correlation diverge like ``1/sqrt(D)`` and are
  returned as signed infinities.

The C library is used for ``sqrt``, ``fma``, ``ldexp`` and ``frexp``, which
are exact or correctly rounded, and for ``asin`` in two places: the erf
deficit beyond ``delta = 1`` and ``asin(x) - x`` for ``|x| > 1/2`` in the
ReLU part beyond linear order, both measured within 3 ulp.

Fast path
---------
Pair correlations (``pair``, ``pair_scalar`` and ``I(1, rho, 1)``) are
evaluated by a branch-free formula wherever it is valid, written so that GCC
compiles the array loop to SIMD code, and by the careful path elsewhere. The
region of the fast path: for ReLU both variances in [2**-300, 2**300] and
D >= 0 as computed exactly, for erf both variances in [2**-120, 2**60],
D >= -0.9 times the tolerance of the clamp below (``|rho| > 1`` by rounding,
clamped the same way) and ``c12 = 0`` or ``|c12| >= 2**-900``. Zero, tiny or
huge variances, ReLU with ``|rho| > 1`` by rounding and covariances near the
edge of the tolerance take the careful path. Inside the region no
intermediate result that matters over- or underflows, and the
single-precision seeds below stay in range. With u = 2**-53, and a relative
error e adding at most e / u ulp:

1. ReLU: D = dh + dl from products split with ``fma`` and exact two-sums,
   renormalised. The two rounded remainders cost at most 8 u**2 D.
2. erf: E = 1 + c11 + c22 + D from D by Kahan's fma algorithm (relative
   error at most 2 u: C.-P. Jeannerod, N. Louvet and J.-M. Muller, Math.
   Comp. 82, 2245 (2013)) and two sums of non-negative terms, so that E has
   a relative error e_E < 3 u. E enters only through sqrt(E), and the angle
   depends on it with a weight of at most 1/2: at most 1.5 u in I. A D < 0
   (from rounding, so that -D / c12**2 < 2**-47) is clamped to 0, and
   |c12| is replaced by sqrt(c11 c22) = |c12| + D / (2 |c12|) to first order,
   carried as a low part (second-order error below 2**-96).
3. The ratio v = n / d in [0, 1] of min and max of (r, |c12|), r = sqrt(D)
   (ReLU), or of (|c12|, sqrt(E)) (erf), as vh + vl with |vl| <= ulp(vh)/2.
   ReLU takes both reciprocals from one division (relative error below 3 u
   each). erf starts 1/sqrt(E) and 1/|c12| in single precision, four times
   faster on the divider, and takes one Newton step (error below 2**-44).
   The exact residual n - vh d corrects the quotient, and the low part of
   the square root, from its exact residual, enters to first order, so that
   vh + vl is accurate to about 2**-85 (relative to the computed D or E).
4. t(v) = 1 - atan(v) / v = z H(z), z = v**2, H(z) = (sqrt(z) -
   atan(sqrt(z))) / z**1.5 in [1 - pi/4, 1/3]. H is a polynomial of degree 21
   in y = 2 z - 1, the Chebyshev interpolant, whose truncation error is
   2**-56.2 relative with the coefficients rounded to double. Horner's scheme
   covers the three leading terms, which carry the rounding error, and
   Estrin's scheme the rest, for a short dependency chain. ReLU keeps the
   constant term as a double-double and carries the low parts of z and y
   through a four-term dH/dy (absolute error below 0.0023), so that t has a
   relative error e_t <= 0.5 u (0.34 u measured). erf evaluates H in double,
   e_t <= 3.6 u (2.1 u measured): the final rounding of H (1 u), its dropped
   low constant (0.35 u), the rounding of z (1 u through z H'/H <= 0.34) and
   the rest (below 1.3 u).
5. The result comes from double-double terms carried to first order and is
   rounded once (1/(2 pi), 2/pi and the multiples of pi/2 are double-doubles):

   * ReLU, c12 < 0 and r <= |c12|: 2 pi I = |c12| v t(v), free of
     cancellation. Error <= 0.5 ulp + e_t.
   * ReLU, c12 >= 0: 2 pi I = r + c12 phi, phi = atan2(r, -c12) = pi - atan(v)
     or pi/2 + atan(v) >= pi/2, a sum of non-negative terms, and atan(v) = v
     (1 - t) has an absolute error <= 0.22 e_t. Error <= 0.5 ulp + 0.14 e_t.
   * ReLU, c12 < 0 and r > |c12|: 2 pi I = r f(s), f(s) = 1 - s (pi/2 -
     atan(s)), s = v = |c12| / r, where the terms cancel by up to a factor
     1 / f(1) = 4.7. The error of atan(s) enters with the weight s**2 t(s) /
     f(s) <= 1. Error <= 0.5 ulp + e_t.
   * erf: I = sign(c12) (2/pi) atan(v), or sign(c12) (1 - (2/pi) atan(v))
     when |c12| > sqrt(E). The error of t enters with the weight t / (1 - t)
     <= 0.273. Error <= 0.5 ulp + 0.273 e_t + e_E / 2.

Bounds: 1.0 ulp (ReLU) and 3.0 ulp (erf; 1.5 ulp of it from E, which spends
accuracy for speed), plus second-order terms below 2**-40 ulp. The largest
errors measured are 0.8 and 1.4 ulp. tests/test_kernels.py checks the
bounds against mpmath on dense sweeps and random covariances of the region,
checks e_t, and checks that scalar calls, array loops and every instruction
set return the same bits.

Speed
-----
The array loop works on blocks of 128 covariances, one stage of the fast
path at a time over the block (D or E, ratio, t, result), so that each
compiled loop is short and its SIMD iterations overlap instead of waiting on
one long dependency chain. The loops are compiled three times, and the
variant is chosen at import (``instruction_set()``): for processors with
AVX-512 and for processors with AVX2 and FMA, both with every call inlined
so that fma() is one instruction, and for the baseline. The baseline takes
the fast path only where the compiler defines ``__FP_FAST_FMA`` (fma() is
one instruction there, as on AArch64), which baseline x86-64 does not, so
that processors without AVX2 and FMA run the careful path alone. Single
calls from Python run the same code through a one-element loop. Figures are
in benchmarks/README.md.

Kernels never raise inside their ``nogil`` loops. Each array entry point
returns the index of the first invalid element (or -1), and the Python layer
turns that into a ``ValueError`` naming the value.
"""

from libc.math cimport (
    INFINITY,
    NAN,
    asin,
    copysign,
    cos,
    exp,
    fabs,
    floor,
    fma,
    fmax,
    fmin,
    frexp,
    hypot,
    isfinite,
    isnan,
    ldexp,
    log,
    signbit,
    sqrt,
    sqrtf,
)

cdef extern from *:
    """
    /* The explicit fma() calls carry the error-free transformations; no
       other multiply-add may be fused, so that results do not depend on the
       instruction set. */
    #if defined(__clang__)
    #pragma STDC FP_CONTRACT OFF
    #elif defined(__GNUC__)
    #pragma GCC optimize ("fp-contract=off")
    #endif

    /* A function marked RELUSPEC_FMA_CLONE is compiled for processors with
       FMA, with every call inlined into it; reluspec_cpu_has_fma() tells at
       run time whether it may be called. */
    #if defined(__GNUC__) && defined(__x86_64__)
    #define RELUSPEC_FMA_CLONE __attribute__((target("avx2,fma"), flatten))
    #define RELUSPEC_AVX512_CLONE __attribute__((                            \
        target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma"), flatten))
    static int reluspec_cpu_has_fma(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2");
    }
    static int reluspec_cpu_has_avx512(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2")
            && __builtin_cpu_supports("avx512f")
            && __builtin_cpu_supports("avx512dq")
            && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512bw");
    }
    #else
    #define RELUSPEC_FMA_CLONE
    #define RELUSPEC_AVX512_CLONE
    static int reluspec_cpu_has_fma(void) { return 0; }
    static int reluspec_cpu_has_avx512(void) { return 0; }
    #endif

    /* Whether fma() is one instruction in code built for the baseline. */
    #if defined(__FP_FAST_FMA)
    #define RELUSPEC_BASELINE_FMA 1
    #else
    #define RELUSPEC_BASELINE_FMA 0
    #endif
    """
    ctypedef void _fma_clone_void "RELUSPEC_FMA_CLONE void"
    ctypedef void _avx512_clone_void "RELUSPEC_AVX512_CLONE void"
    int reluspec_cpu_has_fma() nogil
    int reluspec_cpu_has_avx512() nogil
    const int RELUSPEC_BASELINE_FMA

#: Largest excess of ``|rho|`` over 1 that is treated as rounding.
CORRELATION_TOLERANCE = 8 * 2.0**-52

cdef double _RHO_TOL = 8 * 2.0**-52
# c12**2 <= (1 + tol)**2 c11 c22  <=>  D >= -(2 tol + tol**2) c11 c22
cdef double _DET_TOL = 2 * _RHO_TOL + _RHO_TOL * _RHO_TOL
# Variances inside [2**-400, 2**400] need no rescaling.
cdef double _SCALE_LO = 2.0**-400
cdef double _SCALE_HI = 2.0**400

# 1/(2 pi), 1/sqrt(2 pi) and sqrt(3) as double-double (hi + lo).
cdef double _INV2PI_HI = 0.15915494309189535
cdef double _INV2PI_LO = -9.839338337591243e-18
cdef double _INVSQRT2PI_HI = 0.3989422804014327
cdef double _INVSQRT2PI_LO = -2.49232720227773e-17
cdef double _SQRT3_HI = 1.7320508075688772
cdef double _SQRT3_LO = 1.0035084221806903e-16
cdef double _INV2PI_REL = _INV2PI_LO / _INV2PI_HI
cdef double _PI_HI = 3.141592653589793
cdef double _PI_LO = 1.2246467991473532e-16
cdef double _PIO2_HI = 1.5707963267948966
cdef double _PIO2_LO = 6.123233995736766e-17

# Status codes of the element kernels (0 = valid).
cdef enum:
    _NONFINITE = 1
    _NEGATIVE_VARIANCE = 2
    _CORRELATION = 3
    _ZERO_VARIANCE = 4
    _OUT_OF_RANGE = 5


# -- polynomial tables ---------------------------------------------------------

# G(x) = (t - atan t) / (2 pi t**3) with x = t**2, for 0 <= x <= 1/4, as
# (centre, 1/half_width, c0_hi, c0_lo, (c1, ..., cn)): the polynomial
# c0 + c1 y + ... + cn y**n in y = (x - centre) / half_width interpolates G at
# the n + 1 Chebyshev points of [0, 1/4] (computed with mpmath at 60 digits).
# Truncation error: below 0.02 ulp of G (checked in tests/test_kernels.py).
_G_PIECE = (0.125, 8.0, 0.04939668707935839, -1.6093180206258146e-18, (
    -0.003359500355972988, 0.00026962376368486895, -2.346834050039323e-05,
    2.1441566352804726e-06, -2.0232994969194602e-07, 1.9538709460744353e-08,
    -1.919848725189754e-09, 1.912090392065709e-10, -1.9251104048599235e-11,
    1.955484813765083e-12, -1.9997422034631524e-13, 2.0592431229124806e-14,
    -2.222563136553907e-15, 2.3125769605249497e-16,
))

# atan(k/8) for k = 0, ..., 8 as double-double (mpmath at 50 digits).
_ATAN_EIGHTHS = (
    (0.0, 0.0),
    (0.12435499454676144, -3.1253241424539383e-18),
    (0.24497866312686414, 1.0698755618734451e-17),
    (0.35877067027057225, -2.4623815582638635e-17),
    (0.4636476090008061, 2.2698777452961687e-17),
    (0.5585993153435624, -5.4556305485916264e-18),
    (0.6435011087932844, 1.5834785051444286e-17),
    (0.7188299996216245, -2.1478388444456983e-17),
    (0.7853981633974483, 3.061616997868383e-17),
)

cdef enum:
    _G_DEGREE = 14
    _ASIN_NTERM = 28
cdef double _G_CENTRE, _G_INV_HW, _G_C0_HI, _G_C0_LO
cdef double _G_TAIL[_G_DEGREE]
cdef double _ATAN_HI[9]
cdef double _ATAN_LO[9]
# atan2 = offset + sign * atan(min/max) in the four cases (|y| > |x|) + 2 (x < 0).
cdef double _OCTANT_HI[4]
cdef double _OCTANT_LO[4]
cdef double _OCTANT_SIGN[4]
_OCTANT_HI[:] = [0.0, 1.5707963267948966, 3.141592653589793, 1.5707963267948966]
_OCTANT_LO[:] = [
    0.0, 6.123233995736766e-17, 1.2246467991473532e-16, 6.123233995736766e-17
]
_OCTANT_SIGN[:] = [1.0, -1.0, -1.0, 1.0]

# asin(x) - x = x**3 * sum_{n>=0} _ASIN_SERIES[n] x**(2n), for |x| <= 1/2.
cdef double _ASIN_SERIES[_ASIN_NTERM]


cdef _load_tables():
    global _G_CENTRE, _G_INV_HW, _G_C0_HI, _G_C0_LO
    cdef int i
    _G_CENTRE, _G_INV_HW, _G_C0_HI, _G_C0_LO, tail = _G_PIECE
    for i in range(_G_DEGREE):
        _G_TAIL[i] = tail[i]
    for i in range(9):
        _ATAN_HI[i], _ATAN_LO[i] = _ATAN_EIGHTHS[i]
    # Taylor coefficients (2n)! / (4**n (n!)**2 (2n + 1)), n >= 1, by recurrence
    # in exact rational arithmetic, rounded once.
    from fractions import Fraction
    coef = Fraction(1, 6)
    for i in range(_ASIN_NTERM):
        _ASIN_SERIES[i] = float(coef)
        n = i + 2
        coef = coef * (2 * n - 1) ** 2 / (2 * n * (2 * n + 1))


_load_tables()


# -- error-free transformations ------------------------------------------------


cdef inline void _two_sum(double a, double b, double* s, double* e) noexcept nogil:
    # s + e = a + b exactly (Knuth).
    cdef double z = a + b
    cdef double bb = z - a
    s[0] = z
    e[0] = (a - (z - bb)) + (b - bb)


cdef inline double _mul_dd(
    double x_hi, double x_lo, double k_hi, double k_lo
) noexcept nogil:
    # (x_hi + x_lo) * (k_hi + k_lo) to first order in the low parts, one rounding.
    return fma(x_hi, k_hi, fma(x_hi, k_lo, x_lo * k_hi))


# Tracked arithmetic: a value v with relative error rel stands for the exact
# quantity v (1 + rel) to first order. Each operation adds its own rounding
# error, recovered exactly with fma, so that a chain of products and quotients
# ends with one rounding in _tfinish.


cdef inline double _tmul(double x, double y, double* rel) noexcept nogil:
    cdef double m = x * y
    if m != 0.0 and isfinite(m):
        rel[0] += fma(x, y, -m) / m
    return m


cdef inline double _tdiv(double x, double y, double* rel) noexcept nogil:
    cdef double q = x / y
    if x != 0.0 and isfinite(q):
        rel[0] += fma(-q, y, x) / x
    return q


cdef inline double _tfinish(double v, double rel) noexcept nogil:
    return fma(v, rel, v)


cdef inline double _atan2_dd(double y, double x, double* lo) noexcept nogil:
    # atan2(y, x) = return value + lo[0], to about 2**-60 relative, for finite
    # x and y. The ratio u = min/max(|x|, |y|) in [0, 1] is reduced with
    # atan(u) = atan(k/8) + atan(v), v = (u - k/8) / (1 + u k/8), |v| <= 1/16,
    # and atan(v) = v + v**3 Q(v**2) by its Taylor series; u and v carry their
    # rounding errors as low parts. The octant is applied without branches.
    cdef double ax = fabs(x), ay = fabs(y), num, den, rden, u, u_lo, u0, n
    cdef double p, p_lo, d, d_lo, rd, v, v_lo, z, z2, q, t, t_lo, hi, e, sign
    cdef int k, octant
    if ax == 0.0 and ay == 0.0:
        lo[0] = 0.0
        if signbit(x):
            return copysign(_PI_HI, y)
        return y
    num = fmin(ax, ay)
    den = fmax(ax, ay)
    rden = 1.0 / den
    u = num * rden
    u_lo = fma(-u, den, num) * rden

    k = <int>(u * 8.0 + 0.5)
    u0 = 0.125 * k
    n = u - u0  # exact: u lies within 1/16 of u0 (Sterbenz)
    p = u * u0
    p_lo = fma(u, u0, -p) + u_lo * u0
    _two_sum(1.0, p, &d, &d_lo)
    d_lo = d_lo + p_lo
    rd = 1.0 / d
    v = n * rd
    v_lo = (fma(-v, d, n) + u_lo - v * d_lo) * rd

    # Q(z) = -1/3 + z/5 - z**2/7 + ... - z**6/15 (Estrin's scheme), truncated
    # where z**7 / 17 < 2**-60.
    z = v * v
    z2 = z * z
    q = fma(z, fma(z, -1.0 / 15.0, 1.0 / 13.0), -1.0 / 11.0)
    q = fma(z2, q, fma(z, 1.0 / 9.0, -1.0 / 7.0))
    q = fma(z2, q, fma(z, 1.0 / 5.0, -1.0 / 3.0))
    _two_sum(_ATAN_HI[k], v, &t, &e)
    t_lo = e + _ATAN_LO[k] + v_lo + v * z * q

    # Octant: atan(u), pi/2 - atan(u), pi - atan(u) or pi/2 + atan(u).
    octant = (ay > ax) + 2 * (signbit(x) != 0)
    sign = _OCTANT_SIGN[octant]
    _two_sum(_OCTANT_HI[octant], sign * t, &hi, &e)
    e = e + _OCTANT_LO[octant] + sign * t_lo
    # Renormalise so that the return value is hi + lo rounded; odd in y.
    t = hi + e
    e = e - (t - hi)
    sign = copysign(1.0, y)
    lo[0] = sign * e
    return sign * t


cdef inline double _asin_minus_x(double x) noexcept nogil:
    # asin(x) - x without cancellation for |x| <= 1/2 (Taylor series).
    cdef double x2, acc
    cdef int i
    if fabs(x) > 0.5:
        return asin(x) - x
    x2 = x * x
    acc = _ASIN_SERIES[_ASIN_NTERM - 1]
    for i in range(_ASIN_NTERM - 2, -1, -1):
        acc = fma(acc, x2, _ASIN_SERIES[i])
    return x * x2 * acc


# -- covariance preparation ------------------------------------------------------


cdef struct _Cov:
    double a, b, c      # variances and covariance after rescaling
    double p, pe        # a * b = p + pe exactly
    double dh, dl       # D = a b - c**2 = dh + dl, clamped at 0
    double r, r_lo      # sqrt(D) = r + r_lo to first order
    int ka, kb          # input variances are 4**ka * a and 4**kb * b


cdef inline int _rescale_exponent(double v) noexcept nogil:
    # Half the binary exponent of v, so that v * 4**-k lies in [1/4, 2).
    cdef int e
    if v == 0.0 or (_SCALE_LO <= v <= _SCALE_HI):
        return 0
    frexp(v, &e)
    return e // 2


cdef inline int _prepare(double a, double c, double b, _Cov* s) noexcept nogil:
    # Validate one covariance and form its exact determinant.
    cdef double w, we, d0, d0e
    if not (isfinite(a) and isfinite(b) and isfinite(c)):
        return _NONFINITE
    if a < 0.0 or b < 0.0:
        return _NEGATIVE_VARIANCE
    if (a == 0.0 or b == 0.0) and c != 0.0:
        # A zero variance forces a zero covariance (c**2 might underflow below).
        return _CORRELATION

    # Rescale by powers of 4 (exact) so that no product below over- or
    # underflows.
    s.ka = _rescale_exponent(a)
    s.kb = _rescale_exponent(b)
    if s.ka != 0 or s.kb != 0:
        a = ldexp(a, -2 * s.ka)
        b = ldexp(b, -2 * s.kb)
        c = ldexp(c, -(s.ka + s.kb))

    # D = a b - c**2 as a double-double: both products are split error-free,
    # and near |rho| = 1 the difference of the high parts is exact (Sterbenz).
    s.p = a * b
    s.pe = fma(a, b, -s.p)
    w = c * c
    we = fma(c, c, -w)
    _two_sum(s.p, -w, &d0, &d0e)
    _two_sum(d0, (s.pe - we) + d0e, &s.dh, &s.dl)

    # |rho| > 1: rounding (clamped to |rho| = 1) or invalid input. The tests
    # are written so that a NaN from an overflowing c**2 counts as invalid.
    if not (s.dh > 0.0 or (s.dh == 0.0 and s.dl >= 0.0)):
        if not (s.dh + s.dl >= -_DET_TOL * s.p):
            return _CORRELATION
        s.dh = 0.0
        s.dl = 0.0
        c = copysign(sqrt(s.p), c)

    s.a = a
    s.b = b
    s.c = c
    s.r = sqrt(s.dh)
    if s.r > 0.0:
        s.r_lo = (fma(-s.r, s.r, s.dh) + s.dl) / (2.0 * s.r)
    else:
        s.r_lo = 0.0
    return 0


# -- fast path ----------------------------------------------------------------------
#
# Branch-free kernels for most of the domain, analysed under "Fast path" in
# the module docstring (u = 2**-53). Each kernel is a chain of stages. The
# array loop runs one stage over a block of covariances before the next, so
# that every compiled loop is short and compiles to SIMD code whose
# iterations overlap. A scalar call composes the same stages and gets the
# same bits. The first stage returns NaN outside the region of the fast path,
# the NaN propagates to the result, and the caller then takes the careful
# path.

cdef enum:
    # Covariances per block of the array loop. The intermediate arrays of a
    # block stay in the L1 cache between stages.
    _BLOCK = 128


cdef inline double _reciprocals(double n, double d, double* invn) noexcept nogil:
    # 1/d as the return value and 1/n in invn[0], for 0 <= n <= d, from one
    # division (relative error below 3 u each). For n < d 2**-300, invn[0]
    # is 2**300 / d instead, finite.
    cdef double nn = d * 4.909093465297727e-91
    nn = n if n > nn else nn
    cdef double q = 1.0 / (nn * d)
    invn[0] = d * q
    return nn * q


cdef inline double _quotient(
    double n, double nl, double d, double dl, double invd, double* vl
) noexcept nogil:
    # v = (n + nl) / (d + dl) as the return value plus vl[0], to first order
    # in the low parts, given invd close to 1/d: the residual n - vh d is
    # exact, and it corrects vh = n invd.
    cdef double vh = n * invd
    vl[0] = (fma(-vh, d, n) + nl - vh * dl) * invd
    return vh


cdef inline double _tail_polynomial(double y) noexcept nogil:
    # T(y) with H = c0 + y T(y) (see _atan_tail): Horner's scheme for the
    # three leading terms, which carry the rounding error, and Estrin's
    # scheme for the rest, which keeps the dependency chain short.
    cdef double y2, y4, y8, y16, r
    cdef double e00, e01, e02, e03, e04, e05, e06, e07, e08
    cdef double e10, e11, e12, e13, e20, e21, e30, e40
    y2 = y * y
    y4 = y2 * y2
    y8 = y4 * y4
    y16 = y8 * y8
    e00 = fma(-0.00028884675704871077, y, 0.0010108109314024341)
    e01 = fma(-2.4993555626424342e-05, y, 8.429363463557342e-05)
    e02 = fma(-2.275521105219912e-06, y, 7.5036797718505425e-06)
    e03 = fma(-2.1422940788826402e-07, y, 6.957850342587517e-07)
    e04 = fma(-2.0656998014874478e-08, y, 6.635925859584864e-08)
    e05 = fma(-2.021722843433526e-09, y, 6.4414326843930385e-09)
    e06 = fma(-2.0781282766855566e-10, y, 6.575144855297555e-10)
    e07 = fma(-1.595606341282397e-11, y, 5.036950542983335e-11)
    e08 = fma(-3.703891911644897e-12, y, 1.1588867170793638e-11)
    e10 = fma(e01, y2, e00)
    e11 = fma(e03, y2, e02)
    e12 = fma(e05, y2, e04)
    e13 = fma(e07, y2, e06)
    e20 = fma(e11, y4, e10)
    e21 = fma(e13, y4, e12)
    e30 = fma(e21, y8, e20)
    e40 = fma(e08, y16, e30)
    r = e40
    r = fma(r, y, -0.003641982830651862)
    r = fma(r, y, 0.013703710151140651)
    return fma(r, y, -0.05540741256535708)


cdef inline double _atan_tail(double vh, double vl, double* tl) noexcept nogil:
    # t = 1 - atan(v) / v = z H(z), z = v**2, at v = vh + vl in [0, 1], as the
    # return value plus tl[0], relative error below 0.5 u. H(z) = (sqrt(z) -
    # atan(sqrt(z))) / z**1.5 is the polynomial c0 + y T(y) in y = 2 z - 1,
    # the Chebyshev interpolant of degree 21 (truncation error 2**-56.2
    # relative with the coefficients rounded), c0 in double-double. The low
    # parts of z and y enter through dH/dy.
    cdef double z, zl, y, yl, T, slope, m, me, hh, hl, th
    z = vh * vh
    zl = fma(vh, vh, -z) + 2.0 * vh * vl
    y = 2.0 * z - 1.0
    yl = ((-1.0 - y) + 2.0 * z) + 2.0 * zl  # 2 z - 1 - y is exact
    T = _tail_polynomial(y)
    # dH/dy from the first four coefficients, absolute error below 0.0023.
    slope = fma(fma(fma(0.0040432437256097364, y, -0.010925948491955586),
                    y, 0.027407420302281302), y, -0.05540741256535708)
    m = y * T
    me = fma(y, T, -m)
    hh = 0.2591604972657936 + m  # |c0| > |y T|: the error of the sum is exact
    hl = ((0.2591604972657936 - hh) + m) + (
        6.598433622349642e-18 + me + slope * yl)
    th = z * hh
    tl[0] = fma(z, hh, -th) + (z * hl + zl * hh)
    return th


cdef inline double _erf_atan_tail(double vh, double vl, double* tl) noexcept nogil:
    # t as in _atan_tail, for v = vh + vl of either sign and |vl| <= ulp/2,
    # with H in double precision: relative error below 3.6 u, which enters
    # the erf result with a weight t / (1 - t) <= 0.273.
    cdef double z, y, H
    z = vh * vh
    y = 2.0 * z - 1.0
    H = fma(y, _tail_polynomial(y), 0.2591604972657936)
    tl[0] = (fma(vh, vh, -z) + 2.0 * vh * vl) * H
    return z * H


# ReLU: determinant, ratio, t, result.


cdef inline double _relu_determinant(
    double a, double c, double b, double* dl
) noexcept nogil:
    # D = a b - c**2 as the return value plus dl[0], accurate to 8 u**2 D:
    # both products split with fma, every sum an exact two-sum, renormalised.
    # NaN outside the region: variances in [2**-300, 2**300] and D >= 0.
    cdef double p, pe, w, we, d0, e0, t1, t1e, bb, dh, lo, s
    cdef bint ok = ((a >= 4.909093465297727e-91) & (a <= 2.037035976334486e+90)
                    & (b >= 4.909093465297727e-91) & (b <= 2.037035976334486e+90))
    p = a * b
    pe = fma(a, b, -p)
    w = c * c
    we = fma(c, c, -w)
    d0 = p - w
    e0 = (p - d0) - w  # exact: d0 is exact unless w < p / 2
    t1 = pe - we
    bb = t1 - pe
    t1e = (pe - (t1 - bb)) + (-we - bb)
    dh = d0 + t1
    bb = dh - d0
    lo = ((d0 - (dh - bb)) + (t1 - bb)) + (t1e + e0)
    s = dh + lo
    dl[0] = lo - (s - dh)
    return s if ok & (s >= 0.0) else NAN


cdef inline double _relu_ratio(
    double c, double dh, double dl, double* r, double* rl, double* vl
) noexcept nogil:
    # r[0] + rl[0] = sqrt(D), and v = min(r, |c|) / max(r, |c|) as the return
    # value plus vl[0].
    cdef double root, ac, n, d, invn, invd, low, vh, lo, s
    cdef bint rsmall
    root = sqrt(dh)
    ac = fabs(c)
    rsmall = root <= ac
    n = root if rsmall else ac
    d = ac if rsmall else root
    invd = _reciprocals(n, d, &invn)
    # sqrt(D) = root + (D - root**2) / (2 root), the residual exact.
    low = (fma(-root, root, dh) + dl) * (0.5 * (invn if rsmall else invd))
    r[0] = root
    rl[0] = low
    # Renormalised, |vl| <= ulp(vh) / 2, as _atan_tail needs.
    vh = _quotient(n, low if rsmall else 0.0, d, 0.0 if rsmall else low, invd, &lo)
    s = vh + lo
    vl[0] = lo - (s - vh)
    return s


cdef inline double _relu_result(
    double c, double r, double rl, double vh, double vl, double th, double tl
) noexcept nogil:
    # I = (r + c phi) / (2 pi), phi = atan2(r, -c), from r = sqrt(D), the
    # ratio v and t(v).
    cdef double ac, gh, gl, mh, ml, ah, al, off_hi, off_lo, sgn, fh, fl
    cdef double ph, pl, sh, sl, bb, xh, xl
    cdef bint rsmall, neg, cubic
    ac = fabs(c)
    rsmall = r <= ac
    neg = c < 0.0
    cubic = neg & rsmall
    # g(v) = v - atan(v) = v t as gh + gl.
    gh = vh * th
    gl = fma(vh, th, -gh) + (vh * tl + vl * th)
    # c < 0 and r <= |c|: 2 pi I = |c| g(r / |c|), free of cancellation.
    mh = ac * gh
    ml = fma(ac, gh, -mh) + ac * gl
    # Otherwise 2 pi I = r + c phi with phi = off + sgn atan(v) as fh + fl:
    # pi - atan(v) (c >= 0, r <= c), pi/2 + atan(v) (c >= 0, r > c) or
    # pi/2 - atan(v) (c < 0, r > |c|).
    ah = vh - gh
    al = ((vh - ah) - gh) + (vl - gl)
    off_hi = (0.0 if neg else 3.141592653589793) if rsmall else 1.5707963267948966
    off_lo = (0.0 if neg else 1.2246467991473532e-16) if rsmall else (
        6.123233995736766e-17)
    sgn = -1.0 if rsmall ^ neg else 1.0
    fh = off_hi + sgn * ah
    fl = ((off_hi - fh) + sgn * ah) + (off_lo + sgn * al)
    ph = c * fh
    pl = fma(c, fh, -ph) + c * fl
    sh = r + ph
    bb = sh - r
    sl = ((r - (sh - bb)) + (ph - bb)) + (pl + rl)
    xh = mh if cubic else sh
    xl = ml if cubic else sl
    # (xh + xl) / (2 pi), rounded once.
    return fma(xh, 0.15915494309189535,
               fma(xh, -9.839338337591243e-18, xl * 0.15915494309189535))


cdef inline double _relu_fast(double a, double c, double b) noexcept nogil:
    # The ReLU pair correlation by the fast path, NaN outside its region.
    cdef double dh, dl, r, rl, vh, vl, th, tl
    dh = _relu_determinant(a, c, b, &dl)
    vh = _relu_ratio(c, dh, dl, &r, &rl, &vl)
    th = _atan_tail(vh, vl, &tl)
    return _relu_result(c, r, rl, vh, vl, th, tl)


# erf: E with the seeds of the reciprocals, ratio, t, result.


cdef inline double _erf_e(
    double a, double c, double b, double* rs, double* rc, double* cl
) noexcept nogil:
    # E = 1 + a + b + D, relative error below 3 u: D by Kahan's algorithm
    # (relative error below 2 u, C.-P. Jeannerod, N. Louvet and J.-M. Muller,
    # Math. Comp. 82, 2245 (2013)) and sums of non-negative terms. rs[0] and
    # rc[0] receive 1/sqrt(E) and 1/|c| in single precision, four times
    # faster on the divider. A D < 0 from rounding (|rho| - 1 below 0.9 times
    # the tolerance) is clamped like the careful path does: D = 0 and |c| =
    # sqrt(a b) = |c| + cl[0] to first order. NaN outside the region:
    # variances in [2**-120, 2**60], where the seeds are normal single-
    # precision numbers, D clamped or >= 0, and c = 0 or |c| >= 2**-900.
    cdef double w, d, dc, e, ac
    ac = fabs(c)
    cdef bint ok = ((a >= 7.52316384526264e-37) & (a <= 1.152921504606847e+18)
                    & (b >= 7.52316384526264e-37) & (b <= 1.152921504606847e+18)
                    & ((c == 0.0) | (ac >= 1.1830521861667747e-271)))
    w = c * c
    d = fma(a, b, -w) - fma(c, c, -w)
    ok = ok & (d >= -3.1974423109204537e-15 * (a * b))
    dc = d if d > 0.0 else 0.0
    e = (1.0 + (a + b)) + dc
    rs[0] = <double>((<float>1.0) / sqrtf(<float>e))
    # 1/|c| serves the clamp and |c| > sqrt(E) >= 1; elsewhere it may be inf.
    rc[0] = <double>((<float>1.0) / <float>ac)
    # sqrt(a b) - |c| = D / (2 |c|) (1 + O(D / c**2)), -D / c**2 < 2**-47.
    cl[0] = d * (0.5 * rc[0]) if d < 0.0 else 0.0
    return e if ok else NAN


cdef inline double _erf_ratio(
    double c, double cl, double e, double rs, double rc, double* vl
) noexcept nogil:
    # v = min(|c|, sqrt(E)) / max(|c|, sqrt(E)) as the return value plus
    # vl[0], both negated when |c| > sqrt(E), where |c| + cl and sqrt(E)
    # carry low parts. rs and rc are the single-precision reciprocals of
    # sqrt(E) and |c|, refined here by one Newton step each (2**-44).
    cdef double h, root, low, ac, n, d, nl, dl, invd, vh, lo, s, sgn
    cdef bint small
    h = e * rs
    rs = fma(0.5 * rs, fma(-h, rs, 1.0), rs)
    root = e * rs
    low = fma(-root, root, e) * (0.5 * rs)
    ac = fabs(c)
    rc = fma(fma(-ac, rc, 1.0), rc, rc)
    small = ac <= root
    n = ac if small else root
    d = root if small else ac
    nl = cl if small else low
    dl = low if small else cl
    invd = rs if small else rc
    sgn = 1.0 if small else -1.0
    vh = _quotient(n, nl, d, dl, invd, &lo)
    # Renormalised, |vl| <= ulp(vh) / 2, so that vh alone is accurate enough
    # as the argument of H (see _erf_atan_tail).
    s = vh + lo
    vl[0] = sgn * (lo - (s - vh))
    return sgn * s


cdef inline double _erf_result(
    double c, double vh, double vl, double th, double tl
) noexcept nogil:
    # I = sign(c) (2/pi) atan2(|c|, sqrt(E)) from the signed ratio v and
    # t(v): v >= 0 when |c| <= sqrt(E).
    cdef double gh, ge, ah, al, kh, kl, oh, ol, xh, xl
    cdef bint small = vh >= 0.0
    # atan(v) = v - v t as ah + al, and (2/pi) atan(v) as kh + kl.
    gh = vh * th
    ge = fma(vh, th, -gh)
    ah = vh - gh
    al = (((vh - ah) - gh) - ge) + (vl - (vh * tl + vl * th))
    kh = 0.6366197723675814 * ah
    kl = fma(0.6366197723675814, ah, -kh) + (
        -3.935735335036497e-17 * ah + 0.6366197723675814 * al)
    # |c| > sqrt(E): (2/pi) (pi/2 - atan(|v|)) = 1 + (2/pi) atan(v), v < 0.
    oh = 1.0 + kh
    ol = ((1.0 - oh) + kh) + kl
    xh = kh if small else oh
    xl = kl if small else ol
    return copysign(xh + xl, c)


cdef inline double _erf_fast(double a, double c, double b) noexcept nogil:
    # The erf pair correlation by the fast path, NaN outside its region.
    cdef double e, rs, rc, cl, vh, vl, th, tl
    e = _erf_e(a, c, b, &rs, &rc, &cl)
    vh = _erf_ratio(c, cl, e, rs, rc, &vl)
    th = _erf_atan_tail(vh, vl, &tl)
    return _erf_result(c, vh, vl, th, tl)


cdef inline Py_ssize_t _pair_fast_block(
    int kind, const double* a, const double* c, const double* b, double* out,
    Py_ssize_t n
) noexcept nogil:
    # The fast path on n <= _BLOCK contiguous covariances, stage by stage.
    # Every loop is free of branches and compiles to SIMD code.
    cdef double hi[_BLOCK]       # D (ReLU) or E (erf)
    cdef double lo[_BLOCK]       # low part of D, or the seed of 1/sqrt(E)
    cdef double root[_BLOCK]     # sqrt(D), or the clamp correction of |c|
    cdef double root_lo[_BLOCK]  # low part of sqrt(D), or the seed of 1/|c|
    cdef double vh[_BLOCK]
    cdef double vl[_BLOCK]
    cdef double th[_BLOCK]
    cdef double tl[_BLOCK]
    cdef Py_ssize_t i, bad = 0
    if kind == _RELU:
        for i in range(n):
            hi[i] = _relu_determinant(a[i], c[i], b[i], &lo[i])
        for i in range(n):
            vh[i] = _relu_ratio(c[i], hi[i], lo[i], &root[i], &root_lo[i], &vl[i])
        for i in range(n):
            th[i] = _atan_tail(vh[i], vl[i], &tl[i])
        for i in range(n):
            out[i] = _relu_result(c[i], root[i], root_lo[i], vh[i], vl[i], th[i], tl[i])
            bad += isnan(out[i])
    else:
        for i in range(n):
            hi[i] = _erf_e(a[i], c[i], b[i], &lo[i], &root_lo[i], &root[i])
        for i in range(n):
            vh[i] = _erf_ratio(c[i], root[i], hi[i], lo[i], root_lo[i], &vl[i])
        for i in range(n):
            th[i] = _erf_atan_tail(vh[i], vl[i], &tl[i])
        for i in range(n):
            out[i] = _erf_result(c[i], vh[i], vl[i], th[i], tl[i])
            bad += isnan(out[i])
    return bad


# -- ReLU --------------------------------------------------------------------------


cdef inline double _relu_cubic(
    double ac, double ac_lo, double x, double x_lo
) noexcept nogil:
    # ac * x**1.5 * G(x) for 0 < x <= 1/4, where ac + ac_lo and x + x_lo carry
    # more than double precision; the low parts enter to first order.
    cdef int j
    cdef double y, tail, slope, yt, yte, g, ge, g_lo, sq, dsq, m1, e1, m2, e2, rel

    # G = c0 + y * tail(y), Horner with fma; c0 + y * tail kept as double-double.
    y = (x - _G_CENTRE) * _G_INV_HW
    tail = _G_TAIL[_G_DEGREE - 1]
    for j in range(_G_DEGREE - 2, -1, -1):
        tail = fma(tail, y, _G_TAIL[j])
    slope = fma(2.0 * y, _G_TAIL[1], _G_TAIL[0])
    yt = y * tail
    yte = fma(y, tail, -yt)
    _two_sum(_G_C0_HI, yt, &g, &ge)
    g_lo = ge + yte + _G_C0_LO + slope * _G_INV_HW * x_lo

    # ac * x * sqrt(x) with the rounding error of each step tracked relatively.
    sq = sqrt(x)
    m1 = x * sq
    m2 = m1 * ac
    if m2 < 1e-280:
        # The correction would underflow, and so does the result to 1 ulp.
        return m2 * g
    dsq = (fma(-sq, sq, x) + x_lo) / (2.0 * x)
    e1 = fma(x, sq, -m1)
    e2 = fma(m1, ac, -m2)
    rel = x_lo / x + dsq + e1 / m1 + e2 / m2 + g_lo / g + ac_lo / ac
    return fma(m2, g, (m2 * g) * rel)


cdef inline double _relu_value(_Cov* s) noexcept nogil:
    # I / 2**(ka + kb) for a prepared covariance with positive variances:
    # I = (r + phi c) / (2 pi) with phi = pi - theta = atan2(r, -c).
    cdef double phi, phi_lo, big, big_e, tot, tot_e, w, we, x, x_lo
    if s.c < 0.0:
        # Negative correlation: r + phi c cancels like x = D / c**2 as
        # rho -> -1. For x <= 1/4 the polynomial form avoids the
        # cancellation; above, it amplifies the error of the double-double
        # phi by at most 13.
        w = s.c * s.c
        x = s.dh / w
        if x <= 0.25:
            we = fma(s.c, s.c, -w)
            x_lo = (fma(-x, w, s.dh) + s.dl - x * we) / w
            return _relu_cubic(-s.c, 0.0, x, x_lo)
    phi = _atan2_dd(s.r, -s.c, &phi_lo)
    phi_lo = phi_lo - s.c * s.r_lo / s.p
    big = phi * s.c
    big_e = fma(phi, s.c, -big)
    _two_sum(s.r, big, &tot, &tot_e)
    return _mul_dd(tot, tot_e + big_e + s.r_lo + phi_lo * s.c, _INV2PI_HI, _INV2PI_LO)


cdef inline int _relu_pair_careful(
    double a, double c, double b, double* out
) noexcept nogil:
    cdef _Cov s
    cdef int status = _prepare(a, c, b, &s)
    if status:
        return status
    if s.a == 0.0 or s.b == 0.0:
        out[0] = 0.0
        return 0
    out[0] = _relu_value(&s)
    if s.ka != 0 or s.kb != 0:
        out[0] = ldexp(out[0], s.ka + s.kb)
    return 0


cdef inline int _relu_pair(double a, double c, double b, double* out) noexcept nogil:
    # The fast path where it applies, else the careful one.
    cdef double value = _relu_fast(a, c, b) if _fast_path else NAN
    if isnan(value):
        return _relu_pair_careful(a, c, b, out)
    out[0] = value
    return 0



cdef inline double _relu_slope(_Cov* s) noexcept nogil:
    # dI/dc12 = (pi - theta) / (2 pi) = phi / (2 pi), phi = atan2(r, -c).
    cdef double phi_lo
    cdef double phi = _atan2_dd(s.r, -s.c, &phi_lo)
    return _mul_dd(phi, phi_lo - s.c * s.r_lo / s.p, _INV2PI_HI, _INV2PI_LO)


cdef inline int _relu_gradient(
    double a, double c, double b, double* ga, double* gc, double* gb
) noexcept nogil:
    cdef _Cov s
    cdef double q, q_lo
    cdef int status = _prepare(a, c, b, &s)
    if status:
        return status
    if s.a == 0.0 or s.b == 0.0:
        return _ZERO_VARIANCE
    gc[0] = _relu_slope(&s)

    # dI/dc11 = r / (4 pi c11), dI/dc22 = r / (4 pi c22).
    q = s.r / s.a
    q_lo = (fma(-q, s.a, s.r) + s.r_lo) / s.a
    ga[0] = _mul_dd(q, q_lo, 0.5 * _INV2PI_HI, 0.5 * _INV2PI_LO)
    q = s.r / s.b
    q_lo = (fma(-q, s.b, s.r) + s.r_lo) / s.b
    gb[0] = _mul_dd(q, q_lo, 0.5 * _INV2PI_HI, 0.5 * _INV2PI_LO)
    if s.ka != 0 or s.kb != 0:
        ga[0] = ldexp(ga[0], s.kb - s.ka)
        gb[0] = ldexp(gb[0], s.ka - s.kb)
    return 0


cdef inline int _relu_hessian(
    double a, double c, double b, double* h
) noexcept nogil:
    # h = (I_11_11, I_11_12, I_11_22, I_12_12, I_12_22, I_22_22).
    cdef _Cov s
    cdef double hcc, rel_cc, n, ne, q, rel, v
    cdef int status = _prepare(a, c, b, &s)
    if status:
        return status
    if s.a == 0.0 or s.b == 0.0:
        return _ZERO_VARIANCE
    if s.r == 0.0:
        # |rho| = 1: the second derivatives diverge like 1 / sqrt(D).
        h[0] = INFINITY
        h[1] = -copysign(INFINITY, s.c)
        h[2] = INFINITY
        h[3] = INFINITY
        h[4] = -copysign(INFINITY, s.c)
        h[5] = INFINITY
        return 0

    # I_12_12 = 1 / (2 pi r) and I_11_22 = I_12_12 / 4.
    rel_cc = _INV2PI_REL - s.r_lo / s.r
    hcc = _tdiv(_INV2PI_HI, s.r, &rel_cc)
    h[3] = _tfinish(hcc, rel_cc)
    h[2] = 0.25 * h[3]

    # I_11_12 = -c / (2 a) I_12_12, I_12_22 = -c / (2 b) I_12_12.
    rel = rel_cc
    q = _tdiv(s.c, s.a, &rel)
    v = _tmul(q, hcc, &rel)
    h[1] = -0.5 * _tfinish(v, rel)
    rel = rel_cc
    q = _tdiv(s.c, s.b, &rel)
    v = _tmul(q, hcc, &rel)
    h[4] = -0.5 * _tfinish(v, rel)

    # I_11_11 = (a b / 2 - D) / (2 a**2) I_12_12; the numerator vanishes at
    # rho**2 = 1/2 and is formed as a double-double.
    _two_sum(0.5 * s.p, -s.dh, &n, &ne)
    ne = ne + 0.5 * s.pe - s.dl
    if n == 0.0:
        n = ne
        ne = 0.0
    rel = rel_cc + (ne / n if n != 0.0 else 0.0)
    q = _tdiv(n, s.a, &rel)
    q = _tdiv(q, s.a, &rel)
    v = _tmul(q, hcc, &rel)
    h[0] = 0.5 * _tfinish(v, rel)
    rel = rel_cc + (ne / n if n != 0.0 else 0.0)
    q = _tdiv(n, s.b, &rel)
    q = _tdiv(q, s.b, &rel)
    v = _tmul(q, hcc, &rel)
    h[5] = 0.5 * _tfinish(v, rel)

    if s.ka != 0 or s.kb != 0:
        h[0] = ldexp(h[0], s.kb - 3 * s.ka)
        h[1] = ldexp(h[1], -2 * s.ka)
        h[2] = ldexp(h[2], -(s.ka + s.kb))
        h[3] = ldexp(h[3], -(s.ka + s.kb))
        h[4] = ldexp(h[4], -2 * s.kb)
        h[5] = ldexp(h[5], s.ka - 3 * s.kb)
    return 0


cdef inline int _relu_mean(double a, double* out) noexcept nogil:
    # <g(u)> = sqrt(c11 / (2 pi)).
    cdef double sq
    if not isfinite(a):
        return _NONFINITE
    if a < 0.0:
        return _NEGATIVE_VARIANCE
    sq = sqrt(a)
    if sq == 0.0:
        out[0] = 0.0
        return 0
    out[0] = _mul_dd(
        sq, fma(-sq, sq, a) / (2.0 * sq), _INVSQRT2PI_HI, _INVSQRT2PI_LO
    )
    return 0


cdef inline int _relu_mean_derivative(double a, double* out) noexcept nogil:
    # d<g(u)>/dc11 = 1 / sqrt(8 pi c11), +inf at c11 = 0.
    cdef double sq, v
    if not isfinite(a):
        return _NONFINITE
    if a < 0.0:
        return _NEGATIVE_VARIANCE
    sq = sqrt(a)
    if sq == 0.0:
        out[0] = INFINITY
        return 0
    v = 0.5 * _INVSQRT2PI_HI / sq
    out[0] = fma(v, -fma(-sq, sq, a) / (2.0 * a), v)
    return 0


cdef inline int _relu_unit_derivative(
    double rho, int order, double* out
) noexcept nogil:
    # d^order I(1, rho, 1) / d rho^order for order 1, 2, 3.
    cdef _Cov s
    cdef double v, rel
    cdef int status = _prepare(1.0, rho, 1.0, &s)
    if status:
        return status
    if order == 1:
        out[0] = _relu_slope(&s)
    elif s.r == 0.0:
        out[0] = INFINITY if order == 2 else copysign(INFINITY, s.c)
    elif order == 2:
        # 1 / (2 pi sqrt(1 - rho**2))
        rel = _INV2PI_REL - s.r_lo / s.r
        v = _tdiv(_INV2PI_HI, s.r, &rel)
        out[0] = _tfinish(v, rel)
    else:
        # rho / (2 pi (1 - rho**2)**1.5)
        rel = _INV2PI_REL - s.dl / s.dh - s.r_lo / s.r
        v = _tmul(s.c, _INV2PI_HI, &rel)
        v = _tdiv(v, s.dh, &rel)
        v = _tdiv(v, s.r, &rel)
        out[0] = _tfinish(v, rel)
    return 0


cdef inline int _check_delta(double* delta) noexcept nogil:
    # 0 <= delta = 1 - rho <= 2, with rounding of a few ulp clamped.
    if not isfinite(delta[0]):
        return _NONFINITE
    if delta[0] < -_RHO_TOL or delta[0] > 2.0 + 2.0 * _RHO_TOL:
        return _OUT_OF_RANGE
    if delta[0] < 0.0:
        delta[0] = 0.0
    elif delta[0] > 2.0:
        delta[0] = 2.0
    return 0


cdef inline int _relu_deficit(double delta, double* out) noexcept nogil:
    # I(1, 1, 1) - I(1, 1 - delta, 1) = delta / 2 - f(theta) / (2 pi) with
    # cos(theta) = 1 - delta and f = sin(theta) - theta cos(theta).
    cdef _Cov s
    cdef double o, o_lo, m, m_lo, nn, nn_lo, dd, dd_lo, x, x_lo
    cdef double sn, sn_lo, theta, theta_lo, big, big_e, f, f_lo
    cdef int status = _check_delta(&delta)
    if status:
        return status
    if delta == 0.0:
        out[0] = 0.0
        return 0
    if delta > 1.0:
        # rho = 1 - delta < 0 is exact (Sterbenz), and I(rho) <= I(0) < 1/6.
        status = _prepare(1.0, 1.0 - delta, 1.0, &s)
        if status == 0:
            out[0] = 0.5 - _relu_value(&s)
        return status

    # rho = 1 - delta and sin(theta)**2 = delta (2 - delta) as double-doubles.
    _two_sum(1.0, -delta, &o, &o_lo)
    _two_sum(2.0, -delta, &m, &m_lo)
    nn = delta * m
    nn_lo = fma(delta, m, -nn) + delta * m_lo
    if delta <= 0.1:
        # f = rho x**1.5 G(x) with x = tan(theta)**2 = delta (2 - delta) / rho**2
        # <= 1/4.
        dd = o * o
        dd_lo = fma(o, o, -dd) + 2.0 * o * o_lo
        x = nn / dd
        x_lo = (fma(-x, dd, nn) + nn_lo - x * dd_lo) / dd
        out[0] = 0.5 * delta - _relu_cubic(o, o_lo, x, x_lo)
        return 0

    # f = sin(theta) - theta rho with theta from the double-double atan2; the
    # difference cancels by at most a factor 13 here.
    sn = sqrt(nn)
    sn_lo = (fma(-sn, sn, nn) + nn_lo) / (2.0 * sn)
    theta = _atan2_dd(sn, o, &theta_lo)
    theta_lo = theta_lo + o * sn_lo - sn * o_lo  # sin**2 + cos**2 = 1
    big = theta * o
    big_e = fma(theta, o, -big)
    _two_sum(sn, -big, &f, &f_lo)
    f_lo = f_lo + sn_lo - big_e - theta_lo * o - theta * o_lo
    out[0] = 0.5 * delta - _mul_dd(f, f_lo, _INV2PI_HI, _INV2PI_LO)
    return 0


cdef inline int _relu_nonlinear(double rho, double* out) noexcept nogil:
    # I(rho) - I(0) - rho / 4 = (rho (asin rho - rho) + rho**2 s / (1 + s)) / (2 pi)
    # with s = sqrt(1 - rho**2); both terms are >= 0.
    cdef _Cov s
    cdef double sq, v
    cdef int status = _prepare(1.0, rho, 1.0, &s)
    if status:
        return status
    rho = s.c
    sq = s.r
    v = rho * _asin_minus_x(rho) + rho * rho * (sq / (1.0 + sq))
    out[0] = _mul_dd(v, 0.0, _INV2PI_HI, _INV2PI_LO)
    return 0


# -- erf(x / sqrt(2)) ----------------------------------------------------------
#
# All formulas use E = (1 + a)(1 + b) - c**2 only through sqrt(E) <= sqrt(AB),
# which is representable although E itself may overflow, and through ratios
# that are bounded (|c| / E <= 1/2, (1 + b) / E <= 1), so no intermediate
# result over- or underflows before the final value does.


cdef struct _ErfCov:
    double c            # covariance, clamped to |rho| <= 1
    double aa, aa_lo    # A = 1 + c11 as a double-double
    double bb, bb_lo    # B = 1 + c22
    double se, se_lo    # sqrt(E)


cdef inline int _erf_prepare(double a, double c, double b, _ErfCov* t) noexcept nogil:
    cdef _Cov s
    cdef double one, ta, tb, dh, dl, x, xe, y, ye, z, ze, e_lo, se
    cdef int k, m, status = _prepare(a, c, b, &s)
    if status:
        return status
    k = s.ka + s.kb
    # The rescaled c12 carries the clamp to |rho| = 1.
    t.c = ldexp(s.c, k) if k != 0 else s.c
    _two_sum(1.0, a, &t.aa, &t.aa_lo)
    _two_sum(1.0, b, &t.bb, &t.bb_lo)

    # E 4**-m = (1 + a + b + D) 4**-m: a sum of non-negative terms, kept as a
    # double-double. m > 0 only for variances above 2**400, where a b could
    # overflow; for small variances E >= 1 and an underflowing D is harmless.
    m = (s.ka if s.ka > 0 else 0) + (s.kb if s.kb > 0 else 0)
    if m == 0:
        one = 1.0
        ta = a
        tb = b
    else:
        one = ldexp(1.0, -2 * m)
        ta = ldexp(a, -2 * m)
        tb = ldexp(b, -2 * m)
    if k != m:
        dh = ldexp(s.dh, 2 * (k - m))
        dl = ldexp(s.dl, 2 * (k - m))
    else:
        dh = s.dh
        dl = s.dl
    _two_sum(one, ta, &x, &xe)
    _two_sum(x, tb, &y, &ye)
    _two_sum(y, dh, &z, &ze)
    e_lo = xe + ye + ze + dl
    se = sqrt(z)
    t.se_lo = (fma(-se, se, z) + e_lo) / (2.0 * se)
    t.se = se
    if m != 0:
        t.se = ldexp(se, m)
        t.se_lo = ldexp(t.se_lo, m)
    return 0


cdef inline int _erf_pair_careful(
    double a, double c, double b, double* out
) noexcept nogil:
    # I = (2/pi) asin(c / sqrt(A B)) = (2/pi) atan2(c, sqrt(E)); the low part
    # of sqrt(E) enters through d atan2(c, x) / dx = -c / (c**2 + x**2) with
    # c**2 + E = A B.
    cdef _ErfCov t
    cdef double theta, theta_lo
    cdef int status = _erf_prepare(a, c, b, &t)
    if status:
        return status
    theta = _atan2_dd(t.c, t.se, &theta_lo)
    theta_lo = theta_lo - (t.c / t.aa) * (t.se_lo / t.bb)
    out[0] = _mul_dd(theta, theta_lo, 4.0 * _INV2PI_HI, 4.0 * _INV2PI_LO)
    return 0



cdef inline int _erf_pair(double a, double c, double b, double* out) noexcept nogil:
    # The fast path where it applies, else the careful one.
    cdef double value = _erf_fast(a, c, b) if _fast_path else NAN
    if isnan(value):
        return _erf_pair_careful(a, c, b, out)
    out[0] = value
    return 0

cdef inline double _erf_slope(_ErfCov* t) noexcept nogil:
    # dI/dc12 = (2/pi) / sqrt(E).
    cdef double rel = _INV2PI_REL - t.se_lo / t.se
    cdef double v = _tdiv(4.0 * _INV2PI_HI, t.se, &rel)
    return _tfinish(v, rel)


cdef inline double _erf_u(_ErfCov* t, double* rel) noexcept nogil:
    # u = c / sqrt(E), with its relative error in rel.
    rel[0] = -t.se_lo / t.se
    return _tdiv(t.c, t.se, rel)


cdef inline double _erf_u_over(
    double u, double rel_u, double aa, double aa_lo, double* rel
) noexcept nogil:
    # u / A, |u / A| <= 1/2, with its relative error in rel.
    rel[0] = rel_u - aa_lo / aa
    return _tdiv(u, aa, rel)


cdef inline int _erf_gradient(
    double a, double c, double b, double* ga, double* gc, double* gb
) noexcept nogil:
    # dI/dc12 = (2/pi) / sqrt(E), dI/dc11 = -u / (pi A), u = c / sqrt(E).
    cdef _ErfCov t
    cdef double u, rel_u, rel, v
    cdef int status = _erf_prepare(a, c, b, &t)
    if status:
        return status
    gc[0] = _erf_slope(&t)
    u = _erf_u(&t, &rel_u)
    v = _erf_u_over(u, rel_u, t.aa, t.aa_lo, &rel)
    rel += _INV2PI_REL
    v = _tmul(v, 2.0 * _INV2PI_HI, &rel)
    ga[0] = -_tfinish(v, rel)
    v = _erf_u_over(u, rel_u, t.bb, t.bb_lo, &rel)
    rel += _INV2PI_REL
    v = _tmul(v, 2.0 * _INV2PI_HI, &rel)
    gb[0] = -_tfinish(v, rel)
    return 0


cdef inline double _erf_hessian_diagonal(
    _ErfCov* t, double u, double rel_u, double aa, double aa_lo
) noexcept nogil:
    # I_11_11 = (u / A) (1 / A + B / (2E)) / pi = (u / A) (ratio / A) / pi with
    # ratio = 1 + A B / (2E); with a and b exchanged for I_22_22.
    cdef double x, rel_x, half, ratio, ratio_lo, rel, rel_f, v, f
    rel_x = t.aa_lo / t.aa + t.bb_lo / t.bb - 2.0 * t.se_lo / t.se
    x = _tdiv(t.aa, t.se, &rel_x)
    x = _tmul(x, _tdiv(t.bb, t.se, &rel_x), &rel_x)
    half = 0.5 * x
    _two_sum(1.0, half, &ratio, &ratio_lo)
    rel_f = (ratio_lo + half * rel_x) / ratio - aa_lo / aa
    f = _tdiv(ratio, aa, &rel_f)
    v = _erf_u_over(u, rel_u, aa, aa_lo, &rel)
    rel += rel_f + _INV2PI_REL
    v = _tmul(v, f, &rel)
    v = _tmul(v, 2.0 * _INV2PI_HI, &rel)
    return _tfinish(v, rel)


cdef inline double _erf_hessian_mixed(
    _ErfCov* t, double bb, double bb_lo
) noexcept nogil:
    # I_11_12 = -B / (pi E**1.5), or I_12_22 with A for B.
    cdef double rel = bb_lo / bb - 3.0 * t.se_lo / t.se + _INV2PI_REL
    cdef double v = _tdiv(bb, t.se, &rel)
    v = _tdiv(v, t.se, &rel)
    v = _tdiv(v, t.se, &rel)
    v = _tmul(v, 2.0 * _INV2PI_HI, &rel)
    return -_tfinish(v, rel)


cdef inline int _erf_hessian(double a, double c, double b, double* h) noexcept nogil:
    # h = (I_11_11, I_11_12, I_11_22, I_12_12, I_12_22, I_22_22), with
    # u = c / sqrt(E): I_12_12 = (2/pi) u / E and I_11_22 = I_12_12 / 4.
    cdef _ErfCov t
    cdef double u, rel_u, rel, v
    cdef int status = _erf_prepare(a, c, b, &t)
    if status:
        return status
    u = _erf_u(&t, &rel_u)
    rel = rel_u - 2.0 * t.se_lo / t.se + _INV2PI_REL
    v = _tdiv(u, t.se, &rel)
    v = _tdiv(v, t.se, &rel)
    v = _tmul(v, 4.0 * _INV2PI_HI, &rel)
    h[3] = _tfinish(v, rel)
    h[2] = 0.25 * h[3]
    h[1] = _erf_hessian_mixed(&t, t.bb, t.bb_lo)
    h[4] = _erf_hessian_mixed(&t, t.aa, t.aa_lo)
    h[0] = _erf_hessian_diagonal(&t, u, rel_u, t.aa, t.aa_lo)
    h[5] = _erf_hessian_diagonal(&t, u, rel_u, t.bb, t.bb_lo)
    return 0


cdef inline int _erf_unit_derivative(
    double rho, int order, double* out
) noexcept nogil:
    # With E = 4 - rho**2: J' = (2/pi) / sqrt(E), J'' = (2/pi) rho / E**1.5,
    # and the third derivative (2/pi) (4 + 2 rho**2) / E**2.5.
    cdef _ErfCov t
    cdef double v, rel, w, nh, nl
    cdef int i, status = _erf_prepare(1.0, rho, 1.0, &t)
    if status:
        return status
    if order == 1:
        out[0] = _erf_slope(&t)
        return 0
    if order == 2:
        rel = _INV2PI_REL - 3.0 * t.se_lo / t.se
        v = _tdiv(t.c, t.se, &rel)
        v = _tdiv(v, t.se, &rel)
        v = _tdiv(v, t.se, &rel)
    else:
        w = t.c * t.c
        _two_sum(4.0, 2.0 * w, &nh, &nl)
        nl = nl + 2.0 * fma(t.c, t.c, -w)
        rel = _INV2PI_REL + nl / nh - 5.0 * t.se_lo / t.se
        v = nh
        for i in range(5):
            v = _tdiv(v, t.se, &rel)
    v = _tmul(v, 4.0 * _INV2PI_HI, &rel)
    out[0] = _tfinish(v, rel)
    return 0


cdef inline int _erf_deficit(double delta, double* out) noexcept nogil:
    # I(1, 1, 1) - I(1, 1 - delta, 1) = (2/pi) (asin(1/2) - asin((1 - delta)/2)).
    cdef double m, m_lo, o, o_lo, pm, pm_lo, p, p_lo, sp, sp_lo
    cdef double x, x_lo, d1, d1_lo, rel, num, num_lo, den, den_lo, theta, theta_lo
    cdef int status = _check_delta(&delta)
    if status:
        return status
    if delta == 0.0:
        out[0] = 0.0
        return 0
    if delta > 1.0:
        # asin of a positive argument: no cancellation.
        out[0] = 1.0 / 3.0 + 4.0 * _INV2PI_HI * asin(0.5 * (delta - 1.0))
        return 0

    # Difference of the two angles as atan2(sin, cos) of the difference. With
    # P = (1 + delta)(3 - delta) = 3 + delta (2 - delta) the sine is
    # 4 delta (2 - delta) / (sqrt(P) + sqrt(3) (1 - delta)) and the cosine
    # sqrt(3 P) + 1 - delta, up to a common factor 1/4; for delta <= 1 both
    # are sums of non-negative terms. Low parts are carried to first order.
    _two_sum(2.0, -delta, &m, &m_lo)
    _two_sum(1.0, -delta, &o, &o_lo)
    pm = delta * m
    pm_lo = fma(delta, m, -pm) + delta * m_lo
    _two_sum(3.0, pm, &p, &p_lo)
    p_lo = p_lo + pm_lo
    sp = sqrt(p)
    sp_lo = (fma(-sp, sp, p) + p_lo) / (2.0 * sp)

    # sqrt(P) + sqrt(3) (1 - delta)
    x = _SQRT3_HI * o
    x_lo = fma(_SQRT3_HI, o, -x) + _SQRT3_LO * o + _SQRT3_HI * o_lo
    _two_sum(sp, x, &d1, &d1_lo)
    d1_lo = d1_lo + x_lo + sp_lo
    rel = m_lo / m - d1_lo / d1
    num = _tmul(delta, m, &rel)
    num = 4.0 * _tdiv(num, d1, &rel)
    num_lo = num * rel

    # sqrt(3) sqrt(P) + 1 - delta
    x = _SQRT3_HI * sp
    x_lo = fma(_SQRT3_HI, sp, -x) + _SQRT3_LO * sp + _SQRT3_HI * sp_lo
    _two_sum(x, o, &den, &den_lo)
    den_lo = den_lo + x_lo + o_lo

    theta = _atan2_dd(num, den, &theta_lo)
    out[0] = _mul_dd(
        theta,
        theta_lo + (den * num_lo - num * den_lo) / (num * num + den * den),
        4.0 * _INV2PI_HI,
        4.0 * _INV2PI_LO,
    )
    return 0


cdef inline int _erf_nonlinear(double rho, double* out) noexcept nogil:
    # I(rho) - I(0) - rho / pi = (2/pi) (asin(rho / 2) - rho / 2).
    cdef _Cov s
    cdef int status = _prepare(1.0, rho, 1.0, &s)
    if status:
        return status
    out[0] = _mul_dd(
        _asin_minus_x(0.5 * s.c), 0.0, 4.0 * _INV2PI_HI, 4.0 * _INV2PI_LO
    )
    return 0


# -- Python entry points -------------------------------------------------------------
#
# kind selects the activation: 0 = ReLU, 1 = erf(x / sqrt(2)). Array entry
# points take equally long 1-D views (any strides, read-only allowed), write
# the outputs in place and return the index of the first invalid element, or
# -1 when all are valid; entries after an invalid one are left unwritten.
# Scalar entry points return NaN (or None for tuples) on invalid input, which
# a valid input never produces.

cdef enum:
    _RELU = 0
    _ERF = 1

RELU = _RELU
ERF = _ERF

# Status codes returned by covariance_status and unit_status.
STATUS_VALID = 0
STATUS_NONFINITE = _NONFINITE
STATUS_NEGATIVE_VARIANCE = _NEGATIVE_VARIANCE
STATUS_CORRELATION = _CORRELATION
STATUS_ZERO_VARIANCE = _ZERO_VARIANCE
STATUS_OUT_OF_RANGE = _OUT_OF_RANGE


def covariance_status(int kind, double c11, double c12, double c22, bint derivative):
    """Return the status code of one covariance (0 when valid)."""
    cdef _Cov s
    cdef int status = _prepare(c11, c12, c22, &s)
    if status == 0 and derivative and kind == _RELU and (s.a == 0.0 or s.b == 0.0):
        status = _ZERO_VARIANCE
    return status


# -- array loops ---------------------------------------------------------------------
#
# One loop function serves all entry points. It is compiled twice: for the
# baseline instruction set, and as a clone for processors with FMA, in which
# every kernel is inlined so that fma() becomes one instruction instead of a
# call into libm (about 2 ns each). The clone is chosen once at import.

cdef enum:
    _OP_PAIR = 0
    _OP_GRADIENT = 1
    _OP_HESSIAN = 2
    _OP_MEAN = 3
    _OP_MEAN_DERIVATIVE = 4
    _OP_UNIT = 5


cdef struct _Job:
    int op, kind, what, order
    Py_ssize_t n
    const double* x[3]      # inputs
    Py_ssize_t xs[3]        # their strides, in elements
    double* y[6]            # outputs
    Py_ssize_t ys[6]


cdef inline int _unit(
    int kind, int what, int order, double x, double* out
) noexcept nogil:
    # what: 0 = I(1, x, 1), 1 = derivative of given order, 2 = deficit at
    # delta = x, 3 = nonlinear part.
    if what == 0:
        return _relu_pair(1.0, x, 1.0, out) if kind == _RELU else _erf_pair(
            1.0, x, 1.0, out
        )
    if what == 1:
        if kind == _RELU:
            return _relu_unit_derivative(x, order, out)
        return _erf_unit_derivative(x, order, out)
    if what == 2:
        return _relu_deficit(x, out) if kind == _RELU else _erf_deficit(x, out)
    return _relu_nonlinear(x, out) if kind == _RELU else _erf_nonlinear(x, out)


cdef inline int _erf_mean(double a, double* out) noexcept nogil:
    # erf is odd: the mean and its derivative vanish.
    if not isfinite(a):
        return _NONFINITE
    if a < 0.0:
        return _NEGATIVE_VARIANCE
    out[0] = 0.0
    return 0


cdef inline Py_ssize_t _run_pair(_Job* job) noexcept nogil:
    # Pair correlations block by block: the fast path over the whole block,
    # then the careful path for the entries where it returned NaN (all of
    # them when the fast path is off). Strided inputs and outputs go through
    # contiguous buffers. Return the index of the first invalid element, or
    # -1.
    cdef double buffers[4][_BLOCK]
    cdef const double* x[3]
    cdef double* y
    cdef Py_ssize_t block, start, i, j, m, bad, n = job.n
    cdef int k, status = 0
    for block in range((n + _BLOCK - 1) // _BLOCK):
        start = block * _BLOCK
        m = n - start if n - start < _BLOCK else _BLOCK
        for k in range(3):
            if job.xs[k] == 1:
                x[k] = job.x[k] + start
            else:
                for i in range(m):
                    buffers[k][i] = job.x[k][(start + i) * job.xs[k]]
                x[k] = buffers[k]
        y = job.y[0] + start if job.ys[0] == 1 else buffers[3]
        if _fast_path:
            bad = _pair_fast_block(job.kind, x[0], x[1], x[2], y, m)
        else:
            for i in range(m):
                y[i] = NAN
            bad = m
        i = 0
        while bad:
            if isnan(y[i]):
                bad -= 1
                if job.kind == _RELU:
                    status = _relu_pair_careful(x[0][i], x[1][i], x[2][i], &y[i])
                else:
                    status = _erf_pair_careful(x[0][i], x[1][i], x[2][i], &y[i])
                if status:
                    m = i
                    break
            i += 1
        if job.ys[0] != 1:
            for j in range(m):
                job.y[0][(start + j) * job.ys[0]] = y[j]
        if status:
            return start + m
    return -1


cdef inline Py_ssize_t _run_job(_Job* job) noexcept nogil:
    # Return the index of the first invalid element, or -1.
    cdef Py_ssize_t i, n = job.n
    cdef const double* x0 = job.x[0]
    cdef const double* x1 = job.x[1]
    cdef const double* x2 = job.x[2]
    cdef Py_ssize_t s0 = job.xs[0], s1 = job.xs[1], s2 = job.xs[2]
    cdef double* y0 = job.y[0]
    cdef double* y1 = job.y[1]
    cdef double* y2 = job.y[2]
    cdef Py_ssize_t t0 = job.ys[0], t1 = job.ys[1], t2 = job.ys[2]
    cdef double h[6]
    cdef double one = 1.0
    cdef _Job unit_pair
    cdef int j
    if job.op == _OP_UNIT and job.what == 0:
        unit_pair = job[0]
        unit_pair.op = _OP_PAIR
        unit_pair.x[0] = &one
        unit_pair.x[1] = job.x[0]
        unit_pair.x[2] = &one
        unit_pair.xs[0] = 0
        unit_pair.xs[1] = job.xs[0]
        unit_pair.xs[2] = 0
    if job.op == _OP_PAIR:
        return _run_pair(job)
    elif job.op == _OP_GRADIENT:
        for i in range(n):
            if job.kind == _RELU:
                if _relu_gradient(x0[i * s0], x1[i * s1], x2[i * s2],
                                  &y0[i * t0], &y1[i * t1], &y2[i * t2]):
                    return i
            elif _erf_gradient(x0[i * s0], x1[i * s1], x2[i * s2],
                               &y0[i * t0], &y1[i * t1], &y2[i * t2]):
                return i
    elif job.op == _OP_HESSIAN:
        for i in range(n):
            if job.kind == _RELU:
                if _relu_hessian(x0[i * s0], x1[i * s1], x2[i * s2], h):
                    return i
            elif _erf_hessian(x0[i * s0], x1[i * s1], x2[i * s2], h):
                return i
            for j in range(6):
                job.y[j][i * job.ys[j]] = h[j]
    elif job.op == _OP_MEAN or job.op == _OP_MEAN_DERIVATIVE:
        for i in range(n):
            if job.kind == _ERF:
                if _erf_mean(x0[i * s0], &y0[i * t0]):
                    return i
            elif job.op == _OP_MEAN:
                if _relu_mean(x0[i * s0], &y0[i * t0]):
                    return i
            elif _relu_mean_derivative(x0[i * s0], &y0[i * t0]):
                return i
    elif job.what == 0:
        # I(1, rho, 1) by the pair loop, with unit variances broadcast.
        return _run_pair(&unit_pair)
    else:
        for i in range(n):
            if _unit(job.kind, job.what, job.order, x0[i * s0], &y0[i * t0]):
                return i
    return -1


cdef Py_ssize_t _run_baseline(_Job* job) noexcept nogil:
    return _run_job(job)


cdef _fma_clone_void _run_fma_clone(_Job* job, Py_ssize_t* bad) noexcept nogil:
    bad[0] = _run_job(job)


cdef _avx512_clone_void _run_avx512_clone(_Job* job, Py_ssize_t* bad) noexcept nogil:
    bad[0] = _run_job(job)


cdef bint _HAS_FMA_CLONE = reluspec_cpu_has_fma()
cdef bint _HAS_AVX512_CLONE = reluspec_cpu_has_avx512()
cdef bint _USE_FMA_CLONE = _HAS_FMA_CLONE
cdef bint _USE_AVX512_CLONE = _HAS_AVX512_CLONE
# The fast path needs fma() as one instruction, and the careful path is faster
# without it. Scalar and array calls take the same decision, so that they
# return the same bits.
cdef bint _fast_path = _USE_FMA_CLONE or _USE_AVX512_CLONE or RELUSPEC_BASELINE_FMA


cdef Py_ssize_t _run(_Job* job) noexcept nogil:
    cdef Py_ssize_t bad
    if _USE_AVX512_CLONE:
        _run_avx512_clone(job, &bad)
        return bad
    if _USE_FMA_CLONE:
        _run_fma_clone(job, &bad)
        return bad
    return _run_baseline(job)


def instruction_set():
    """Return the code the array loops run: ``"avx512"``, ``"avx2"`` (both
    with FMA) or ``"baseline"``, and whether it takes the fast path."""
    if _USE_AVX512_CLONE:
        name = "avx512"
    elif _USE_FMA_CLONE:
        name = "avx2"
    else:
        name = "baseline"
    return name, bool(_fast_path)


def available_instruction_sets():
    """Return the names of the compiled loop variants this processor runs."""
    available = ["baseline"]
    if _HAS_FMA_CLONE:
        available.append("avx2")
    if _HAS_AVX512_CLONE:
        available.append("avx512")
    return available


def _select_instruction_set(str name):
    """Run the loops with the code for ``name`` (see :func:`instruction_set`)
    from now on, for tests that compare the variants on one machine.

    ``"baseline"`` takes the fast path only where fma() is one instruction in
    baseline code. Raises ValueError when the processor lacks ``name``.
    """
    global _USE_FMA_CLONE, _USE_AVX512_CLONE, _fast_path
    available = available_instruction_sets()
    if name not in available:
        raise ValueError(
            f"instruction set {name!r} is not available on this processor, "
            f"which runs: {', '.join(available)}"
        )
    _USE_AVX512_CLONE = name == "avx512"
    _USE_FMA_CLONE = name == "avx2"
    _fast_path = _USE_FMA_CLONE or _USE_AVX512_CLONE or RELUSPEC_BASELINE_FMA


cdef void _set_input(_Job* job, int k, const double[:] values):
    job.xs[k] = values.strides[0] // <Py_ssize_t>sizeof(double)
    job.x[k] = &values[0] if values.shape[0] > 0 else NULL


cdef void _set_output(_Job* job, int k, double[:] values):
    job.ys[k] = values.strides[0] // <Py_ssize_t>sizeof(double)
    job.y[k] = &values[0] if values.shape[0] > 0 else NULL


cdef _Job _new_job(int op, int kind, Py_ssize_t n):
    cdef _Job job
    job.op = op
    job.kind = kind
    job.what = 0
    job.order = 1
    job.n = n
    return job


def pair(int kind, const double[:] c11, const double[:] c12, const double[:] c22,
         double[:] out):
    """Pair correlation ``I(c11, c12, c22)``; ``out`` receives the values."""
    cdef _Job job = _new_job(_OP_PAIR, kind, out.shape[0])
    cdef Py_ssize_t bad
    _set_input(&job, 0, c11)
    _set_input(&job, 1, c12)
    _set_input(&job, 2, c22)
    _set_output(&job, 0, out)
    with nogil:
        bad = _run(&job)
    return bad


def pair_gradient(int kind, const double[:] c11, const double[:] c12,
                  const double[:] c22, double[:] g11, double[:] g12, double[:] g22):
    """First derivatives ``dI/dc11``, ``dI/dc12``, ``dI/dc22``."""
    cdef _Job job = _new_job(_OP_GRADIENT, kind, g11.shape[0])
    cdef Py_ssize_t bad
    _set_input(&job, 0, c11)
    _set_input(&job, 1, c12)
    _set_input(&job, 2, c22)
    _set_output(&job, 0, g11)
    _set_output(&job, 1, g12)
    _set_output(&job, 2, g22)
    with nogil:
        bad = _run(&job)
    return bad


def pair_hessian(int kind, const double[:] c11, const double[:] c12,
                 const double[:] c22, double[:] h11_11, double[:] h11_12,
                 double[:] h11_22, double[:] h12_12, double[:] h12_22,
                 double[:] h22_22):
    """Second derivatives ``I_11_11, I_11_12, I_11_22, I_12_12, I_12_22,
    I_22_22`` into the six outputs."""
    cdef _Job job = _new_job(_OP_HESSIAN, kind, h11_11.shape[0])
    cdef Py_ssize_t bad
    _set_input(&job, 0, c11)
    _set_input(&job, 1, c12)
    _set_input(&job, 2, c22)
    for k, out in enumerate((h11_11, h11_12, h11_22, h12_12, h12_22, h22_22)):
        _set_output(&job, k, out)
    with nogil:
        bad = _run(&job)
    return bad


def mean(int kind, const double[:] c11, double[:] out, bint derivative):
    """Mean ``<g(u)>`` or, with ``derivative``, its derivative in ``c11``."""
    cdef _Job job = _new_job(
        _OP_MEAN_DERIVATIVE if derivative else _OP_MEAN, kind, out.shape[0]
    )
    cdef Py_ssize_t bad
    _set_input(&job, 0, c11)
    _set_output(&job, 0, out)
    with nogil:
        bad = _run(&job)
    return bad


def unit(int kind, int what, int order, const double[:] x, double[:] out):
    """Unit-variance functions of the correlation (see ``_unit``)."""
    cdef _Job job = _new_job(_OP_UNIT, kind, out.shape[0])
    cdef Py_ssize_t bad
    job.what = what
    job.order = order
    _set_input(&job, 0, x)
    _set_output(&job, 0, out)
    with nogil:
        bad = _run(&job)
    return bad


def unit_scalar(int kind, int what, int order, double x):
    """Scalar version of :func:`unit`; NaN on invalid input."""
    cdef double out
    cdef Py_ssize_t bad
    # Through the same code as the array loops, so that the bits agree.
    cdef _Job job = _new_job(_OP_UNIT, kind, 1)
    job.what = what
    job.order = order
    job.x[0] = &x
    job.xs[0] = 1
    job.y[0] = &out
    job.ys[0] = 1
    bad = _run(&job)
    return NAN if bad >= 0 else out


def unit_status(int kind, int what, double x):
    """Status code of one input of :func:`unit` (0 when valid)."""
    cdef double out
    return _unit(kind, what, 1, x, &out)


def pair_scalar(int kind, double c11, double c12, double c22):
    """Scalar version of :func:`pair`; NaN on invalid input."""
    cdef double out
    cdef Py_ssize_t bad
    # Through the same code as the array loops, so that the bits agree.
    cdef _Job job = _new_job(_OP_PAIR, kind, 1)
    job.x[0] = &c11
    job.x[1] = &c12
    job.x[2] = &c22
    job.xs[0] = job.xs[1] = job.xs[2] = 1
    job.y[0] = &out
    job.ys[0] = 1
    bad = _run(&job)
    return NAN if bad >= 0 else out


def pair_gradient_scalar(int kind, double c11, double c12, double c22):
    """Scalar version of :func:`pair_gradient`; None on invalid input."""
    cdef double g11, g12, g22
    cdef int status
    if kind == _RELU:
        status = _relu_gradient(c11, c12, c22, &g11, &g12, &g22)
    else:
        status = _erf_gradient(c11, c12, c22, &g11, &g12, &g22)
    if status:
        return None
    return (g11, g12, g22)


def pair_hessian_scalar(int kind, double c11, double c12, double c22):
    """Scalar version of :func:`pair_hessian`; None on invalid input."""
    cdef double h[6]
    cdef int status
    if kind == _RELU:
        status = _relu_hessian(c11, c12, c22, h)
    else:
        status = _erf_hessian(c11, c12, c22, h)
    if status:
        return None
    return (h[0], h[1], h[2], h[3], h[4], h[5])


def polynomial_table():
    """Return the polynomial of the ReLU cancellation function ``G`` on
    [0, 1/4] as ``(centre, 1/half_width, c0_hi, c0_lo, (c1, ..., cn))``."""
    return _G_PIECE



def fast_pair(int kind, double c11, double c12, double c22):
    """Pair correlation by the fast path alone, NaN outside its region.

    Compiled for the baseline instruction set; its bits equal those of the
    SIMD loops, which run the same operations.
    """
    if kind == _RELU:
        return _relu_fast(c11, c12, c22)
    return _erf_fast(c11, c12, c22)


def atan_tail(int kind, double v):
    """Return ``(t, t_lo)`` with ``t + t_lo`` approximating ``1 - atan(v) / v``
    for ``0 <= v <= 1``, as the fast path of ``kind`` evaluates it."""
    cdef double lo
    cdef double t = _atan_tail(v, 0.0, &lo) if kind == _RELU else _erf_atan_tail(
        v, 0.0, &lo
    )
    return t, lo


# -- site-symmetric free energy ------------------------------------------------
#
# F(R, S, C) = K alpha eps_g - s for the site-symmetric ansatz, with the same
# operations, in the same order, as reluspec.theory.free_energy and
# reluspec.theory.entropy, so that both return the same bits. The pair
# correlations go through _run like the scalar entry points above. These
# functions validate nothing beyond what they need to compute: a status other
# than 0 tells the caller to take the Python path, which raises the error.

cdef inline void _log_argument(
    double x, double one_minus_x, double one_plus_x, double offset,
    double* argument, double* argument_minus_one
) noexcept nogil:
    # (1 - x**2 + offset, offset - x**2) without cancellation in 1 - x**2.
    argument_minus_one[0] = offset - x * x
    if fabs(x) >= 0.5:
        argument[0] = one_minus_x * one_plus_x + offset
    else:
        argument[0] = (1.0 + offset) - x * x


cdef inline double _log1p_minus_identity(double x, double one_plus_x) noexcept nogil:
    # ln(1 + x) - x by the series in t = x / (2 + x) for |x| <= 1/2.
    cdef double t, t_squared, power, series, term
    cdef int n
    if fabs(x) > 0.5:
        return log(one_plus_x) - x
    t = x / (2.0 + x)
    t_squared = t * t
    power = t * t_squared
    series = 0.0
    n = 3
    while power != 0.0:
        term = power / n
        series += term
        if fabs(term) <= 1e-17 * fabs(series):
            break
        power *= t_squared
        n += 2
    return (-x) * x / (2.0 + x) + 2.0 * series


cdef inline int _symmetric_arguments(
    double R, double S, double C, double K, double* k, double* d, double* u,
    double* A, double* A1, double* B, double* B1
) noexcept nogil:
    cdef double one_minus_R, one_plus_R
    if not (isfinite(R) and isfinite(S) and isfinite(C) and isfinite(K)):
        return 1
    if not (K >= 1.0 and fabs(R) <= 1.0 and fabs(S) <= 1.0 and fabs(C) <= 1.0):
        return 1
    k[0] = K - 1.0
    one_minus_R = 1.0 - R
    one_plus_R = 1.0 + R
    d[0] = R - S
    u[0] = R + k[0] * S
    _log_argument(d[0], one_minus_R + S, one_plus_R - S, -C, A, A1)
    _log_argument(
        u[0], one_minus_R - k[0] * S, one_plus_R + k[0] * S, k[0] * C, B, B1
    )
    if (k[0] > 0.0 and not A[0] > 0.0) or not B[0] > 0.0:
        return 1
    return 0


cdef inline int _unit_run(
    int kind, int what, int order, double* x, double* y, Py_ssize_t n
) noexcept:
    cdef _Job job = _new_job(_OP_UNIT, kind, n)
    job.what = what
    job.order = order
    job.x[0] = x
    job.xs[0] = 1
    job.y[0] = y
    job.ys[0] = 1
    return 1 if _run(&job) >= 0 else 0


def symmetric_free_energy(
    int kind, double R, double S, double C, double alpha, double K
):
    """Return ``F = K alpha eps_g - s`` of the site-symmetric ansatz, or NaN
    where the inputs need the validating Python path."""
    return _symmetric_free_energy(kind, R, S, C, alpha, K, NULL)


cdef double _symmetric_free_energy(
    int kind, double R, double S, double C, double alpha, double K,
    double* error_out
) noexcept:
    # F, and eps_g into error_out unless it is NULL.
    cdef double k, d, u, A, A1, B, B1, entropy, error, coupling
    cdef double x[3]
    cdef double y[3]
    cdef double slope
    if not (isfinite(alpha) and alpha >= 0.0):
        return NAN
    if _symmetric_arguments(R, S, C, K, &k, &d, &u, &A, &A1, &B, &B1):
        return NAN
    entropy = -(k * d * d + u * u) / 2.0
    entropy += _log1p_minus_identity(B1, B) / 2.0
    if k > 0.0:
        entropy += k * _log1p_minus_identity(A1, A) / 2.0
    x[0] = 1.0 - R
    if _unit_run(kind, 2, 1, x, y, 1):
        return NAN
    error = y[0]
    if K != 1.0:
        x[0] = 0.0
        x[1] = C
        x[2] = S
        if _unit_run(kind, 1, 1, x, y, 1):
            return NAN
        slope = y[0]
        if _unit_run(kind, 3, 1, x, y, 3):
            return NAN
        coupling = slope * (C - 2.0 * S) + (y[1] - 2.0 * y[2])
        error = error + 0.5 * (K - 1.0) * coupling
    if error_out != NULL:
        error_out[0] = error
    return K * alpha * error - entropy


def symmetric_free_energy_derivatives(
    int kind, double R, double S, double C, double alpha, double K, double[::1] out
):
    """Write the gradient (3), Hessian (9, row-major) and eps_g gradient (3)
    of the site-symmetric free energy into ``out[:15]``; return 0, or 1 where
    the inputs need the validating Python path."""
    if out.shape[0] < 15:
        raise ValueError(f"out has {out.shape[0]} elements; it needs 15")
    return _symmetric_derivatives(kind, R, S, C, alpha, K, &out[0])


cdef int _symmetric_derivatives(
    int kind, double R, double S, double C, double alpha, double K, double* out
) noexcept:
    cdef double k, d, u, A, A1, B, B1, ka, half_k, AA, BB
    cdef double x[3]
    cdef double slope[3]
    cdef double curvature[3]
    cdef double weight[3]
    cdef double a[3]
    cdef double b[3]
    cdef double ha[9]
    cdef double hb[9]
    cdef int i, j
    if not (isfinite(alpha) and alpha >= 0.0):
        return 1
    if _symmetric_arguments(R, S, C, K, &k, &d, &u, &A, &A1, &B, &B1):
        return 1
    x[0] = R
    x[1] = S
    x[2] = C
    if _unit_run(kind, 1, 1, x, slope, 3) or _unit_run(kind, 1, 2, x, curvature, 3):
        return 1
    weight[0] = -1.0
    weight[1] = -(K - 1.0)
    weight[2] = 0.5 * (K - 1.0)
    a[0] = -2.0 * d
    a[1] = 2.0 * d
    a[2] = -1.0
    b[0] = -2.0 * u
    b[1] = -2.0 * k * u
    b[2] = k
    for i in range(9):
        ha[i] = 0.0
        hb[i] = 0.0
    ha[0] = -2.0
    ha[1] = 2.0
    ha[3] = 2.0
    ha[4] = -2.0
    hb[0] = -2.0
    hb[1] = -2.0 * k
    hb[3] = -2.0 * k
    hb[4] = -2.0 * k * k
    ka = K * alpha
    half_k = 0.5 * k
    AA = A * A
    BB = B * B
    for i in range(3):
        out[12 + i] = weight[i] * slope[i]
        out[i] = ka * out[12 + i] - (half_k * a[i] / A + 0.5 * b[i] / B)
        for j in range(3):
            out[3 + 3 * i + j] = ka * (weight[i] * curvature[i] if i == j else 0.0) - (
                half_k * (ha[3 * i + j] / A - a[i] * a[j] / AA)
                + 0.5 * (hb[3 * i + j] / B - b[i] * b[j] / BB)
            )
    return 0


cdef inline bint _symmetric_valid(double R, double S, double C, double K) noexcept nogil:
    # Finite correlations with both entropy arguments positive, as
    # SpecializationProblem.is_valid tests them.
    cdef double k = K - 1.0
    cdef double d = R - S
    cdef double m = R + k * S
    if not (isfinite(R) and isfinite(S) and isfinite(C)):
        return False
    if fabs(R) > 1.0 or fabs(S) > 1.0 or fabs(C) > 1.0:
        return False
    return 1.0 - C - d * d > 0.0 and 1.0 + k * C - m * m > 0.0


cdef inline int _solve_small(double* M, double* rhs, int n) noexcept nogil:
    # Solve M x = rhs in place (x in rhs) for n <= 3 by Gaussian elimination
    # with partial pivoting; M is row-major n x n and is overwritten.
    cdef int i, j, r, p
    cdef double big, f, t
    for i in range(n):
        p = i
        big = fabs(M[i * n + i])
        for r in range(i + 1, n):
            if fabs(M[r * n + i]) > big:
                big = fabs(M[r * n + i])
                p = r
        if not big > 0.0 or not isfinite(big):
            return 1
        if p != i:
            for j in range(n):
                t = M[i * n + j]
                M[i * n + j] = M[p * n + j]
                M[p * n + j] = t
            t = rhs[i]
            rhs[i] = rhs[p]
            rhs[p] = t
        for r in range(i + 1, n):
            f = M[r * n + i] / M[i * n + i]
            for j in range(i, n):
                M[r * n + j] -= f * M[i * n + j]
            rhs[r] -= f * rhs[i]
    for i in range(n - 1, -1, -1):
        t = rhs[i]
        for j in range(i + 1, n):
            t -= M[i * n + j] * rhs[j]
        rhs[i] = t / M[i * n + i]
    return 0


cdef double _DOUBLE_EPS = 2.220446049250313e-16


cdef inline bint _gradient_at_rounding(
    double ka, double* derivatives, bint unspecialized
) noexcept nogil:
    # True when every gradient component is below 64 ulp of the sizes of
    # its two parts, K alpha grad eps_g and grad s: no step can then reduce
    # it reliably. Near a branch point at large K the Hessian is nearly
    # singular and Newton's steps on such a gradient do not shrink.
    cdef double size[3]
    cdef double error_part
    cdef int i
    for i in range(3):
        error_part = ka * derivatives[12 + i]
        size[i] = fabs(error_part) + fabs(error_part - derivatives[i])
    if unspecialized:
        return (
            fabs(derivatives[0] + derivatives[1])
            <= 64.0 * _DOUBLE_EPS * (size[0] + size[1])
            and fabs(derivatives[2]) <= 64.0 * _DOUBLE_EPS * size[2]
        )
    for i in range(3):
        if not fabs(derivatives[i]) <= 64.0 * _DOUBLE_EPS * size[i]:
            return False
    return True


def symmetric_newton(
    int kind, double K, double alpha, double[::1] u, double tol, int max_iter,
    bint unspecialized, double[::1] info
):
    """Newton's method for ``grad F = 0`` of the site-symmetric free energy.

    ``u`` holds the start ``(R, S, C)`` and receives the last iterate. With
    ``unspecialized`` the iteration runs in ``(m, C)`` on ``R = S = m / K``
    from the projection of the start. Full steps are halved (down to 1e-8)
    until they stay inside the domain; the iteration stops when a full step
    is at most ``tol`` times ``max(1, |u|)``, or when the gradient is at the
    level of its rounding error (64 ulp of the sizes of its two parts).
    Returns 0 on convergence, 1 for a start outside the domain, 2 where the
    Hessian is singular, a derivative fails or no halved step stays in the
    domain, 3 after ``max_iter`` steps. ``info`` receives the
    max-norm of the last gradient and the number of steps.
    """
    if u.shape[0] != 3 or info.shape[0] < 2:
        raise ValueError("u needs 3 elements and info 2")
    return _symmetric_newton(
        kind, K, alpha, &u[0], tol, max_iter, unspecialized, &info[0]
    )


cdef int _symmetric_newton(
    int kind, double K, double alpha, double* u, double tol, int max_iter,
    bint unspecialized, double* info
) noexcept:
    # The iteration of symmetric_newton on u[0:3], info[0:2].
    cdef double buffer[15]
    cdef double M[9]
    cdef double step[3]
    cdef double trial[3]
    cdef double y[2]
    cdef double t, norm, size, largest, inv_k = 1.0 / K
    cdef int i, j, iteration, n = 2 if unspecialized else 3
    info[0] = INFINITY
    info[1] = 0.0
    if unspecialized:
        # m = R + (K - 1) S of the start, and C.
        y[0] = u[0] + (K - 1.0) * u[1]
        y[1] = u[2]
        u[0] = y[0] * inv_k
        u[1] = y[0] * inv_k
    if not _symmetric_valid(u[0], u[1], u[2], K):
        return 1
    for iteration in range(max_iter):
        info[1] = iteration + 1
        if _symmetric_derivatives(kind, u[0], u[1], u[2], alpha, K, buffer):
            return 2
        norm = fmax(fabs(buffer[0]), fmax(fabs(buffer[1]), fabs(buffer[2])))
        info[0] = norm
        if _gradient_at_rounding(alpha * K, buffer, unspecialized):
            return 0
        if unspecialized:
            # Project onto e_m = (1/K, 1/K, 0) and e_C = (0, 0, 1).
            M[0] = (buffer[3] + buffer[4] + buffer[6] + buffer[7]) * inv_k * inv_k
            M[1] = (buffer[5] + buffer[8]) * inv_k
            M[2] = M[1]
            M[3] = buffer[11]
            step[0] = -(buffer[0] + buffer[1]) * inv_k
            step[1] = -buffer[2]
        else:
            for i in range(9):
                M[i] = buffer[3 + i]
            for i in range(3):
                step[i] = -buffer[i]
        if _solve_small(M, step, n):
            return 2
        if unspecialized:
            y[0] += step[0]
            y[1] += step[1]
            u[0] = y[0] * inv_k
            u[1] = y[0] * inv_k
            u[2] = y[1]
            if not _symmetric_valid(u[0], u[1], u[2], K):
                return 2
            size = fmax(1.0, fmax(fabs(y[0]), fabs(y[1])))
            if fmax(fabs(step[0]), fabs(step[1])) <= tol * size:
                return 0
            continue
        t = 1.0
        while True:
            for i in range(3):
                trial[i] = u[i] + t * step[i]
            if _symmetric_valid(trial[0], trial[1], trial[2], K):
                break
            if not t > 1e-8:
                # No step along the Newton direction stays in the domain.
                return 2
            t *= 0.5
        largest = 0.0
        for i in range(3):
            u[i] = trial[i]
            largest = fmax(largest, fabs(step[i]))
        size = fmax(1.0, fmax(fabs(u[0]), fmax(fabs(u[1]), fabs(u[2]))))
        # Only a full step that is small shows convergence; a halved one
        # is small because it was halved. NOTE: the test is absolute, so at
        # large K, where C can be 1e-15, it can accept a C that is off by
        # its own size while R and S are accurate.
        if t == 1.0 and largest <= tol * size:
            return 0
    return 3


def symmetric_newton_many(
    int kind, double K, double[::1] alphas, double[:, ::1] u, double tol,
    int max_iter, bint unspecialized, double[::1] status
):
    """Run :func:`symmetric_newton` from each row of ``u`` (shape (n, 3), in
    place) at the matching entry of ``alphas``; ``status`` receives each
    return code."""
    cdef double info[2]
    cdef Py_ssize_t i, n = alphas.shape[0]
    if u.shape[0] != n or u.shape[1] != 3 or status.shape[0] != n:
        raise ValueError("u needs shape (n, 3) and status n entries for n alphas")
    for i in range(n):
        status[i] = _symmetric_newton(
            kind, K, alphas[i], &u[i, 0], tol, max_iter, unspecialized, info
        )


# -- full-space Hessian blocks at a site-symmetric state ----------------------
#
# The block matrices of reluspec.analysis.stability._block_matrices, formed
# with the same operations in the same order (the pragma at the top of this
# file keeps the compiler from fusing multiply-adds), so that their entries
# and term scales have the same bits as the Python ones. Their eigenvalues come from cyclic Jacobi
# rotations (_jacobi_eigenvalues). As in the section above, a status other
# than 0 tells the caller to take the validating Python path.

cdef enum:
    # Entries of the output of symmetric_block_spectrum: the eigenvalues of
    # the trivial, standard, [K-2,2] and [K-2,1,1] blocks from these offsets,
    # then the four term scales.
    _TRIVIAL_VALUES = 0
    _STANDARD_VALUES = 3
    _TWO_ROW_VALUES = 7
    _HOOK_VALUE = 9
    _TERM_SCALES = 10
    _SPECTRUM_SIZE = 14
    # Entries of the output of symmetric_block_matrices, row-major.
    _MATRICES_SIZE = 30
    # Sweeps after which _jacobi_eigenvalues gives up. On the blocks of 4200
    # random site-symmetric states (ReLU and erf, K = 2 to 1e5) it stopped
    # after at most 6 sweeps, the last one without a rotation.
    _JACOBI_MAX_SWEEPS = 50

BLOCK_SPECTRUM_SIZE = _SPECTRUM_SIZE
BLOCK_MATRICES_SIZE = _MATRICES_SIZE


cdef struct _Blocks:
    int n_standard          # size of the standard block: 2 at K = 2, else 4
    bint has_two_row        # K >= 4
    bint has_hook           # K >= 3
    double trivial[9]
    double standard[16]     # leading n_standard x n_standard, row-major
    double two_row[4]
    double hook
    double scale[4]         # term scales: largest |term| summed into an entry


cdef inline double _max_abs(double* a, int n) noexcept nogil:
    cdef double largest = 0.0
    cdef int i
    for i in range(n):
        largest = fmax(largest, fabs(a[i]))
    return largest


cdef inline bint _all_finite(double* a, int n) noexcept nogil:
    cdef int i
    for i in range(n):
        if not isfinite(a[i]):
            return False
    return True


cdef int _symmetric_blocks(
    int kind, double R, double S, double C, double alpha, double K, _Blocks* b
) noexcept:
    # Return 0, or 1 for inputs the Python path validates or rejects (alpha
    # or K invalid, a state outside the domain, an infinite curvature, a
    # matrix entry that is not finite).
    cdef double k, d, m, A, A1, B, B1
    cdef double w_S, w_1, g_S, g_1, b_S, b_1, e_d, e_o, q, delta
    cdef double c, root, r, coupling, beta_ij
    cdef double x[3]
    cdef double curvature[3]
    cdef double beta[4]
    cdef int i, j, n
    if not (isfinite(alpha) and alpha >= 0.0):
        return 1
    if not (isfinite(K) and K >= 2.0 and K == floor(K)):
        return 1
    if _symmetric_arguments(R, S, C, K, &k, &d, &m, &A, &A1, &B, &B1):
        return 1
    x[0] = R
    x[1] = S
    x[2] = C
    if _unit_run(kind, 1, 2, x, curvature, 3):
        return 1
    if not _all_finite(curvature, 3):
        return 1

    w_S = 1.0 / A
    w_1 = 1.0 / B
    g_S = d / A
    g_1 = m / B
    b_S = 1.0 + d * g_S
    b_1 = 1.0 + m * g_1
    e_d = -alpha * curvature[0]
    e_o = -alpha * curvature[1]
    q = alpha * curvature[2]
    delta = e_d - e_o

    # trivial
    c = sqrt(2.0 / (K * (K - 1.0)))
    root = sqrt(K - 1.0)
    b.trivial[0] = w_1 * b_1 + g_1 * g_1 + e_o + delta / K
    b.trivial[4] = w_S * b_S + g_S * g_S + e_o + delta * (K - 1.0) / K
    b.trivial[8] = q + w_1 * w_1 * (K - 1.0) / K + w_S * w_S / K
    b.trivial[1] = delta * root / K
    b.trivial[2] = -c * (K - 1.0) * w_1 * g_1
    b.trivial[5] = c * root * w_S * g_S
    b.trivial[3] = b.trivial[1]
    b.trivial[6] = b.trivial[2]
    b.trivial[7] = b.trivial[5]
    b.scale[0] = _max_abs(b.trivial, 9)

    # standard, plus delta beta beta^T with beta the diagonal of R
    if K == 2.0:
        n = 2
        beta[0] = 1.0 / sqrt(2.0)
        beta[1] = beta[0]
        b.standard[0] = w_1 * b_S + e_o
        b.standard[3] = w_S * b_1 + e_o
        b.standard[1] = g_1 * g_S
        b.standard[2] = b.standard[1]
    else:
        n = 4
        r = sqrt((K - 2.0) / K)
        beta[0] = 1.0 / sqrt(K)
        beta[1] = 1.0 / sqrt(K)
        beta[2] = r
        beta[3] = 0.0
        for i in range(16):
            b.standard[i] = 0.0
        b.standard[0] = w_1 * b_S + e_o
        b.standard[5] = w_S * b_1 + e_o
        b.standard[10] = w_S * b_S + g_S * g_S + e_o
        b.standard[15] = q + w_1 * w_S - 2.0 * w_S * (w_1 - w_S) / K
        b.standard[1] = g_1 * g_S
        b.standard[3] = -w_1 * g_S * r
        b.standard[7] = -w_S * g_1 * r
        b.standard[11] = 2.0 * w_S * g_S / sqrt(K)
        for i in range(4):
            for j in range(i):
                b.standard[4 * i + j] = b.standard[4 * j + i]
    for i in range(n):
        for j in range(n):
            beta_ij = beta[i] * beta[j]
            b.standard[n * i + j] = b.standard[n * i + j] + delta * beta_ij
    b.n_standard = n
    b.scale[1] = _max_abs(b.standard, n * n)

    b.has_two_row = K >= 4.0
    if b.has_two_row:
        coupling = -sqrt(2.0) * w_S * g_S
        b.two_row[0] = w_S * b_S + g_S * g_S + e_o
        b.two_row[1] = coupling
        b.two_row[2] = coupling
        b.two_row[3] = q + w_S * w_S
        b.scale[2] = _max_abs(b.two_row, 4)
    else:
        b.scale[2] = NAN

    # w_S b_S - g_S^2 = w_S, as in the Python expression.
    b.has_hook = K >= 3.0
    b.hook = w_S + e_o
    b.scale[3] = fmax(fabs(w_S), fabs(e_o)) if b.has_hook else NAN

    if not (
        _all_finite(b.trivial, 9)
        and _all_finite(b.standard, n * n)
        and _all_finite(b.scale, 2)
        and (not b.has_two_row or _all_finite(b.two_row, 4) and isfinite(b.scale[2]))
        and (not b.has_hook or isfinite(b.hook) and isfinite(b.scale[3]))
    ):
        return 1
    return 0


cdef int _jacobi_eigenvalues(double* a, int n, double* values) noexcept nogil:
    # Write the eigenvalues of the symmetric n x n matrix a (row-major,
    # overwritten; n <= 4) into values in ascending order. Return 0, or 1 if
    # the rotations did not converge.
    #
    # Cyclic Jacobi method: each rotation in the plane (p, q) sets a[p, q] to
    # zero and leaves the sum of squares of all entries unchanged, so that
    # the off-diagonal sum of squares falls by 2 a[p, q]**2 each time, and
    # quadratically per sweep once it is small. An entry with
    # |a[p, q]| <= eps/2 sqrt(|a[p, p]| |a[q, q]|) is set to zero instead;
    # that changes the eigenvalues by far less than an ulp of the diagonal.
    # Accuracy: a rotation with the computed cosine and sine is an exact
    # orthogonal similarity of a matrix within a few eps * ||a||_F of the
    # one it is applied to, so that, by Weyl's inequality, the eigenvalues
    # are those of a matrix within (number of rotations) * O(eps) * ||a||_F
    # of a. Measured against mpmath eigenvalues (60 digits) of the 15200
    # blocks of size 2 to 4 at 5600 random site-symmetric states (ReLU and
    # erf, K = 2 to 1e5), the error stays below 2.1 eps * ||a||_F, where
    # numpy.linalg.eigvalsh (LAPACK) reaches 7 eps * ||a||_F.
    # tests/test_stability.py checks 4 eps * ||a||_F.
    cdef int sweep, p, q, r, i, j
    cdef bint rotated
    cdef double apq, tau, t, cosine, sine, arp, arq, value
    for sweep in range(_JACOBI_MAX_SWEEPS):
        rotated = False
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = a[p * n + q]
                if apq == 0.0:
                    continue
                if fabs(apq) <= 0.5 * _DOUBLE_EPS * sqrt(fabs(a[p * n + p])) * sqrt(
                    fabs(a[q * n + q])
                ):
                    a[p * n + q] = 0.0
                    a[q * n + p] = 0.0
                    continue
                rotated = True
                # t = tan(theta) is the root of smaller magnitude of
                # t**2 + 2 tau t - 1 = 0; hypot keeps tau**2 from
                # overflowing, and an infinite tau gives t = 0.
                tau = (a[q * n + q] - a[p * n + p]) / (2.0 * apq)
                t = 1.0 / (fabs(tau) + hypot(1.0, tau))
                if tau < 0.0:
                    t = -t
                cosine = 1.0 / sqrt(1.0 + t * t)
                sine = t * cosine
                a[p * n + p] -= t * apq
                a[q * n + q] += t * apq
                a[p * n + q] = 0.0
                a[q * n + p] = 0.0
                for r in range(n):
                    if r == p or r == q:
                        continue
                    arp = a[r * n + p]
                    arq = a[r * n + q]
                    a[r * n + p] = cosine * arp - sine * arq
                    a[p * n + r] = a[r * n + p]
                    a[r * n + q] = sine * arp + cosine * arq
                    a[q * n + r] = a[r * n + q]
        if not rotated:
            break
    else:
        return 1
    # Insertion sort of the diagonal.
    for i in range(n):
        value = a[i * n + i]
        j = i
        while j > 0 and values[j - 1] > value:
            values[j] = values[j - 1]
            j -= 1
        values[j] = value
    return 0


cdef int _block_spectrum(
    int kind, double R, double S, double C, double alpha, double K, double* out
) noexcept:
    # Fill out[:_SPECTRUM_SIZE] as symmetric_block_spectrum documents it.
    cdef _Blocks b
    cdef int i
    if _symmetric_blocks(kind, R, S, C, alpha, K, &b):
        return 1
    for i in range(_SPECTRUM_SIZE):
        out[i] = NAN
    if _jacobi_eigenvalues(b.trivial, 3, out + _TRIVIAL_VALUES):
        return 1
    if _jacobi_eigenvalues(b.standard, b.n_standard, out + _STANDARD_VALUES):
        return 1
    if b.has_two_row and _jacobi_eigenvalues(b.two_row, 2, out + _TWO_ROW_VALUES):
        return 1
    if b.has_hook:
        out[_HOOK_VALUE] = b.hook
    for i in range(4):
        out[_TERM_SCALES + i] = b.scale[i]
    return 0


def symmetric_block_spectrum(
    int kind, double R, double S, double C, double alpha, double K, double[::1] out
):
    """Write the eigenvalues and term scales of the full-space Hessian blocks.

    At the site-symmetric state ``(R, S, C)`` with integer ``K >= 2``, the
    blocks are those of ``reluspec.analysis.stability._block_matrices``.
    ``out[:14]`` receives the eigenvalues in ascending order of the trivial
    block at 0-2, the standard block at 3-6 (3-4 at K = 2), the [K-2,2]
    block at 7-8 (K >= 4) and the [K-2,1,1] block at 9 (K >= 3), then the
    term scales of the four blocks at 10-13; entries of absent blocks are
    NaN. Returns 0, or 1 where the inputs need the validating Python path.
    """
    if out.shape[0] < _SPECTRUM_SIZE:
        raise ValueError(
            f"out has {out.shape[0]} elements; it needs {_SPECTRUM_SIZE}"
        )
    return _block_spectrum(kind, R, S, C, alpha, K, &out[0])


def symmetric_block_matrices(
    int kind, double R, double S, double C, double alpha, double K, double[::1] out
):
    """Write the block matrices of :func:`symmetric_block_spectrum` row-major.

    ``out[:30]`` receives the trivial block at 0-8, the standard block at
    9-24 (9-12 at K = 2), the [K-2,2] block at 25-28 and the [K-2,1,1]
    block at 29; entries of absent blocks are NaN. Returns 0, or 1 where the
    inputs need the validating Python path.
    """
    cdef _Blocks b
    cdef int i, size
    if out.shape[0] < _MATRICES_SIZE:
        raise ValueError(
            f"out has {out.shape[0]} elements; it needs {_MATRICES_SIZE}"
        )
    if _symmetric_blocks(kind, R, S, C, alpha, K, &b):
        return 1
    for i in range(_MATRICES_SIZE):
        out[i] = NAN
    for i in range(9):
        out[i] = b.trivial[i]
    size = b.n_standard * b.n_standard
    for i in range(size):
        out[9 + i] = b.standard[i]
    if b.has_two_row:
        for i in range(4):
            out[25 + i] = b.two_row[i]
    if b.has_hook:
        out[29] = b.hook
    return 0


cdef inline int _count_below_threshold(
    double* values, int n, double term_scale, double rtol
) noexcept nogil:
    # The rule of reluspec.analysis.stability._stability_from_blocks:
    # eigenvalues below -(rtol max|value| + 64 eps term_scale) are negative.
    cdef double floor_ = 64.0 * _DOUBLE_EPS * term_scale
    cdef double threshold = -(rtol * _max_abs(values, n) + floor_)
    cdef int i, count = 0
    for i in range(n):
        if values[i] < threshold:
            count += 1
    return count


def symmetric_block_counts(
    int kind, double R, double S, double C, double alpha, double K, double rtol
):
    """Count the negative eigenvalues of each full-space Hessian block.

    Returns ``(trivial, standard, [K-2,2], [K-2,1,1])``, each the number of
    eigenvalues of one copy of the block below its threshold (0 for absent
    blocks), or None where the inputs need the validating Python path. The
    threshold is that of ``reluspec.analysis.stability.full_space_stability``
    with the relative tolerance ``rtol``.
    """
    cdef double out[_SPECTRUM_SIZE]
    cdef int n_standard = 2 if K == 2.0 else 4
    cdef int trivial, standard, two_row = 0, hook = 0
    if not (0.0 <= rtol < 1.0):
        return None
    if _block_spectrum(kind, R, S, C, alpha, K, out):
        return None
    trivial = _count_below_threshold(
        out + _TRIVIAL_VALUES, 3, out[_TERM_SCALES], rtol
    )
    standard = _count_below_threshold(
        out + _STANDARD_VALUES, n_standard, out[_TERM_SCALES + 1], rtol
    )
    if K >= 4.0:
        two_row = _count_below_threshold(
            out + _TWO_ROW_VALUES, 2, out[_TERM_SCALES + 2], rtol
        )
    if K >= 3.0:
        hook = _count_below_threshold(
            out + _HOOK_VALUE, 1, out[_TERM_SCALES + 3], rtol
        )
    return (trivial, standard, two_row, hook)


def symmetric_segment_state(
    int kind, double K, double[::1] z_a, double[::1] z_b, double[::1] tau,
    double t, bint unspecialized, double[::1] out, double start=-1.0
):
    """Newton's method for a site-symmetric state on the secant between two
    states, for ``_Segment.state`` of the stability module.

    ``z`` is ``(R, S, C, ln alpha)``, or ``(R, C, ln alpha)`` with ``S = R``
    when ``unspecialized``; ``z_a``, ``z_b`` are the ends and ``tau`` their
    unit secant. The iteration solves ``grad F = 0`` (projected on the
    coordinates) and ``tau . (z - z(t)) = 0`` with ``z(t) = (1 - t) z_a +
    t z_b``, halves steps that leave the domain (down to 1e-8), and takes
    one more step after a step of at most ``1e-11 max(1, |z|)``. Writes
    ``(R, S, C, alpha)`` to ``out`` and returns 0, or returns 1 after 60
    steps or at a singular system. The iteration starts from ``z(start)``
    instead of ``z(t)`` when ``start`` lies in [0, 1].
    """
    cdef int n = 3 if unspecialized else 4
    cdef int m = n - 1
    cdef int i, j, iteration
    cdef double buffer[15]
    cdef double J[16]
    cdef double step[4]
    cdef double z[4]
    cdef double z_t[4]
    cdef double trial[4]
    cdef double u[3]
    cdef double alpha, factor, largest, size, projection
    cdef bint polished = False
    if z_a.shape[0] != n or z_b.shape[0] != n or tau.shape[0] != n:
        raise ValueError(f"z_a, z_b and tau need {n} elements")
    if out.shape[0] < 4:
        raise ValueError("out needs 4 elements")
    for i in range(n):
        z_t[i] = (1.0 - t) * z_a[i] + t * z_b[i]
        z[i] = z_t[i]
        if 0.0 <= start <= 1.0:
            z[i] = (1.0 - start) * z_a[i] + start * z_b[i]
    for iteration in range(60):
        _segment_embed(z, u, unspecialized)
        alpha = exp(z[m])
        if _symmetric_derivatives(kind, u[0], u[1], u[2], alpha, K, buffer):
            return 1
        if unspecialized:
            # E = [[1, 0], [1, 0], [0, 1]]: E^T g, E^T H E, E^T grad eps_g.
            step[0] = -(buffer[0] + buffer[1])
            step[1] = -buffer[2]
            J[0] = (buffer[3] + buffer[4]) + (buffer[6] + buffer[7])
            J[1] = buffer[5] + buffer[8]
            J[n] = buffer[9] + buffer[10]
            J[n + 1] = buffer[11]
            J[2] = alpha * K * (buffer[12] + buffer[13])
            J[n + 2] = alpha * K * buffer[14]
        else:
            for i in range(3):
                step[i] = -buffer[i]
                for j in range(3):
                    J[n * i + j] = buffer[3 + 3 * i + j]
                J[n * i + 3] = alpha * K * buffer[12 + i]
        projection = 0.0
        for i in range(n):
            J[n * m + i] = tau[i]
            projection += tau[i] * (z[i] - z_t[i])
        step[m] = -projection
        if _solve_small(J, step, n):
            return 1
        factor = 1.0
        while True:
            for i in range(n):
                trial[i] = z[i] + factor * step[i]
            _segment_embed(trial, u, unspecialized)
            if _symmetric_valid(u[0], u[1], u[2], K) or not factor > 1e-8:
                break
            factor *= 0.5
        largest = 0.0
        size = 1.0
        for i in range(n):
            z[i] = trial[i]
            largest = fmax(largest, fabs(factor * step[i]))
            size = fmax(size, fabs(z[i]))
        if polished:
            _segment_embed(z, u, unspecialized)
            out[0] = u[0]
            out[1] = u[1]
            out[2] = u[2]
            out[3] = exp(z[m])
            return 0
        # One more step after convergence reaches the rounding level.
        polished = largest <= 1e-11 * size
    return 1


cdef inline void _segment_embed(double* z, double* u, bint unspecialized) noexcept nogil:
    u[0] = z[0]
    if unspecialized:
        u[1] = z[0]
        u[2] = z[1]
    else:
        u[1] = z[1]
        u[2] = z[2]


# -- pseudo-arclength continuation of site-symmetric stationary points --------
#
# The stepping loop of reluspec.continuation.solver._Tracer.run for the
# residual of SpecializationProblem.continuation_problem, in C. It takes the
# same decisions with the same formulas (corrector with polishing, bordered
# tangent, angle test, step control, landing on a bound), so that it returns
# the points the Python loop returns, up to rounding in the linear solves.
# Events are left to the Python code, which locates them between the points
# returned here.

cdef enum:
    # Columns of a row of the points array of symmetric_palc.
    _P_Z = 0            # z = (R, S, C, ln alpha)
    _P_TANGENT = 4
    _P_PREDICTOR = 8    # predictor of the step that reached the point
    _P_EIGEN = 12       # ascending eigenvalues of the Hessian of F
    _P_ITERATIONS = 15
    _P_STEP = 16
    _P_UNSTABLE = 17
    _P_DET_SIGN = 18
    _P_ALPHA = 19
    PALC_COLUMNS = 20
    # Return codes of symmetric_palc.
    _PALC_MAX_STEPS = 0
    _PALC_BOUND = 1
    _PALC_BOUND_UNCORRECTED = 2
    _PALC_NEWTON_FAILED = 3
    _PALC_BRANCH_JUMP = 4
    _PALC_MAX_REJECTIONS = 5
    _PALC_LOOP_CANDIDATE = 6

PALC_ROW = PALC_COLUMNS


cdef int _palc_system(
    int kind, double K, double* scale, double* z, double* F, double* J, double* H
) noexcept:
    # Residual F = scale grad F / (1 + alpha^2) at z = (R, S, C, ln alpha),
    # J = [F_u, F_q] (3 x 4, row-major, F_q = alpha dF/dalpha) and the
    # Hessian H of the free energy, with the operations of
    # SpecializationProblem.continuation_problem. Return 1 outside the domain.
    cdef double buffer[15]
    cdef double alpha = exp(z[3])
    cdef double w
    cdef int i, j
    if not alpha > 0.0 or not _symmetric_valid(z[0], z[1], z[2], K):
        return 1
    if _symmetric_derivatives(kind, z[0], z[1], z[2], alpha, K, buffer):
        return 1
    w = 1.0 + alpha * alpha
    for i in range(3):
        F[i] = scale[i] * buffer[i] / w
        for j in range(3):
            H[3 * i + j] = buffer[3 + 3 * i + j]
            J[4 * i + j] = scale[i] * buffer[3 + 3 * i + j] / w
        J[4 * i + 3] = (
            scale[i] * (K * buffer[12 + i] / w - 2.0 * alpha * buffer[i] / (w * w))
        ) * alpha
    for i in range(3):
        if not isfinite(F[i]):
            return 1
    for i in range(12):
        if not isfinite(J[i]):
            return 1
    return 0


cdef inline double _max_abs_n(double* a, int n) noexcept nogil:
    cdef double largest = 0.0
    cdef int i
    for i in range(n):
        if not fabs(a[i]) <= largest:
            largest = fabs(a[i]) if isfinite(a[i]) else INFINITY
    return largest


cdef int _palc_newton(
    int kind, double K, double* scale, double* origin, double* predictor,
    double ds, double* z, double tol, int max_iter, bint fixed_q, int* iterations
) noexcept:
    # Newton's method of continuation._newton with polish=True, from z (in
    # place). With fixed_q the unknowns are u at q = z[3] (3 x 3); otherwise
    # z solves [F(z); predictor . (z - origin) - ds] = 0 (4 x 4). Return 0 on
    # convergence, 1 on failure.
    cdef double F[3]
    cdef double J[12]
    cdef double H[9]
    cdef double M[16]
    cdef double r[4]
    cdef double candidate[4]
    cdef double candidate_r[4]
    cdef double norm, candidate_norm
    cdef int n = 3 if fixed_q else 4
    cdef int iteration, i, j, k
    if _palc_residual(kind, K, scale, origin, predictor, ds, z, fixed_q, r, J, H):
        return 1
    for iteration in range(max_iter + 1):
        norm = _max_abs_n(r, n)
        if not isfinite(norm):
            return 1
        if norm <= tol:
            # Polishing: updates while each one at least halves the residual.
            for k in range(30):
                if norm == 0.0:
                    break
                _palc_matrix(J, predictor, fixed_q, M)
                for i in range(n):
                    candidate_r[i] = r[i]
                if _solve_small(M, candidate_r, n):
                    break
                for i in range(4):
                    candidate[i] = z[i]
                for i in range(n):
                    candidate[i] = z[i] - candidate_r[i]
                if not isfinite(_max_abs_n(candidate, 4)):
                    break
                if _palc_residual(
                    kind, K, scale, origin, predictor, ds, candidate, fixed_q,
                    candidate_r, J, H
                ):
                    break
                candidate_norm = _max_abs_n(candidate_r, n)
                if not candidate_norm <= 0.5 * norm:
                    break
                for i in range(4):
                    z[i] = candidate[i]
                for i in range(n):
                    r[i] = candidate_r[i]
                norm = candidate_norm
            iterations[0] = iteration
            return 0
        if iteration == max_iter:
            return 1
        _palc_matrix(J, predictor, fixed_q, M)
        if _solve_small(M, r, n):
            return 1
        if not isfinite(_max_abs_n(r, n)):
            return 1
        for i in range(n):
            z[i] = z[i] - r[i]
        if _palc_residual(kind, K, scale, origin, predictor, ds, z, fixed_q, r, J, H):
            return 1
    return 1


cdef inline int _palc_residual(
    int kind, double K, double* scale, double* origin, double* predictor,
    double ds, double* z, bint fixed_q, double* r, double* J, double* H
) noexcept:
    cdef double projection = 0.0
    cdef int i
    if _palc_system(kind, K, scale, z, r, J, H):
        return 1
    if not fixed_q:
        for i in range(4):
            projection += predictor[i] * (z[i] - origin[i])
        r[3] = projection - ds
    return 0


cdef inline void _palc_matrix(
    double* J, double* predictor, bint fixed_q, double* M
) noexcept nogil:
    cdef int i, j
    if fixed_q:
        for i in range(3):
            for j in range(3):
                M[3 * i + j] = J[4 * i + j]
        return
    for i in range(12):
        M[i] = J[i]
    for j in range(4):
        M[12 + j] = predictor[j]


cdef int _palc_tangent(double* J, double* reference, double* tangent) noexcept:
    # The bordered tangent: solve [J; reference] tangent = e_4 and normalise.
    # Where that matrix is singular (a branch point), the null vector of J
    # from its cofactors, oriented along the reference.
    cdef double M[16]
    cdef double norm = 0.0, along = 0.0
    cdef double minor[9]
    cdef int i, j, c, col
    _palc_matrix(J, reference, False, M)
    for i in range(4):
        tangent[i] = 0.0
    tangent[3] = 1.0
    if not _solve_small(M, tangent, 4):
        for i in range(4):
            norm += tangent[i] * tangent[i]
        norm = sqrt(norm)
        if isfinite(norm) and norm > 0.0:
            for i in range(4):
                tangent[i] /= norm
            return 0
    for c in range(4):
        for i in range(3):
            col = 0
            for j in range(4):
                if j != c:
                    minor[3 * i + col] = J[4 * i + j]
                    col += 1
        tangent[c] = (1.0 if c % 2 == 0 else -1.0) * _det3(minor)
    norm = 0.0
    for i in range(4):
        norm += tangent[i] * tangent[i]
        along += tangent[i] * reference[i]
    norm = sqrt(norm)
    if not (isfinite(norm) and norm > 0.0):
        for i in range(4):
            tangent[i] = reference[i]
        return 0
    if along < 0.0:
        norm = -norm
    for i in range(4):
        tangent[i] /= norm
    return 0


cdef inline double _det3(double* m) noexcept nogil:
    return (
        m[0] * (m[4] * m[8] - m[5] * m[7])
        - m[1] * (m[3] * m[8] - m[5] * m[6])
        + m[2] * (m[3] * m[7] - m[4] * m[6])
    )


cdef double _det_sign4(double* J, double* tangent) noexcept:
    # Sign of det [J; tangent] by Gaussian elimination with partial pivoting.
    cdef double M[16]
    cdef double big, f, t, sign = 1.0
    cdef int i, j, r, p
    _palc_matrix(J, tangent, False, M)
    for i in range(4):
        p = i
        big = fabs(M[4 * i + i])
        for r in range(i + 1, 4):
            if fabs(M[4 * r + i]) > big:
                big = fabs(M[4 * r + i])
                p = r
        if not big > 0.0:
            return 0.0
        if p != i:
            sign = -sign
            for j in range(4):
                t = M[4 * i + j]
                M[4 * i + j] = M[4 * p + j]
                M[4 * p + j] = t
        if M[4 * i + i] < 0.0:
            sign = -sign
        for r in range(i + 1, 4):
            f = M[4 * r + i] / M[4 * i + i]
            for j in range(i, 4):
                M[4 * r + j] -= f * M[4 * i + j]
    return sign


cdef int _palc_point(
    int kind, double K, double* scale, double* z, double* reference, double* row
) noexcept:
    # Fill a row of the points array at the corrected z: tangent, Hessian
    # eigenvalues, number of negative ones and the determinant sign.
    cdef double F[3]
    cdef double J[12]
    cdef double H[9]
    cdef double S[9]
    cdef int i, j, negative = 0
    if _palc_system(kind, K, scale, z, F, J, H):
        return 1
    for i in range(4):
        row[_P_Z + i] = z[i]
    _palc_tangent(J, reference, &row[_P_TANGENT])
    for i in range(3):
        for j in range(3):
            S[3 * i + j] = 0.5 * (H[3 * i + j] + H[3 * j + i])
    if _jacobi_eigenvalues(S, 3, &row[_P_EIGEN]):
        return 1
    for i in range(3):
        if row[_P_EIGEN + i] < 0.0:
            negative += 1
    row[_P_UNSTABLE] = negative
    row[_P_DET_SIGN] = _det_sign4(J, &row[_P_TANGENT])
    row[_P_ALPHA] = exp(z[3])
    return 0


def symmetric_palc(
    int kind, double K, double[::1] scale, double[:, ::1] points, Py_ssize_t count,
    double ds, double[::1] settings, double[::1] report
):
    """Continue the site-symmetric stationary points from the last of
    ``count`` rows of ``points`` (each ``PALC_ROW`` wide: z, tangent,
    predictor, Hessian eigenvalues, Newton iterations, step, unstable count,
    determinant sign, alpha).

    ``settings`` holds ``ds_min, ds_max, q_min, q_max, max_steps,
    newton_tol, newton_max_iter, max_rejections, angle_max,
    step_growth, step_shrink, target_newton_iterations, secant (1.0 or
    0.0)``. Accepted points are appended to ``points`` while rows last.
    ``report`` receives the number of rows, the next ds, the number of
    rejected steps and the alpha of a failure or of the bound that could
    not be landed on. Returns the reason the run
    stopped: 0 max_steps, 1 on a parameter bound, 2 a bound that could not
    be landed on, 3 corrector failure at ds_min, 4 a suspected branch jump
    at ds_min, 5 too many rejections, 6 a point that may close a loop (the
    caller checks it and may call again to continue).
    """
    cdef double ds_min = settings[0], ds_max = settings[1]
    cdef double q_min = settings[2], q_max = settings[3]
    cdef int max_steps = <int>settings[4]
    cdef double tol = settings[5]
    cdef int max_iter = <int>settings[6], max_rejections = <int>settings[7]
    cdef double cos_max = cos(settings[8]), growth = settings[9]
    cdef double shrink = settings[10]
    cdef int target = <int>settings[11]
    cdef bint secant = settings[12] != 0.0
    cdef double cos_half = cos(0.5 * settings[8])
    cdef double predictor[4]
    cdef double z[4]
    cdef double row[PALC_COLUMNS]
    cdef double* current
    cdef double* previous
    cdef double* first
    cdef double norm, cos_angle, q_bound, fraction, along, offset_norm, s0, length
    cdef double offset[4]
    cdef int step, rejections, iterations, landing_iterations, i, status, failure
    cdef Py_ssize_t capacity = points.shape[0]
    cdef int n_rejected = 0
    if points.shape[1] != PALC_COLUMNS or count < 1 or scale.shape[0] != 3:
        raise ValueError("points needs PALC_ROW columns and a start row")
    if settings.shape[0] < 13 or report.shape[0] < 4:
        raise ValueError("settings needs 13 entries and report 4")
    status = _PALC_MAX_STEPS
    report[3] = NAN
    cos_angle = 1.0
    for step in range(max_steps - (count - 1)):
        if count >= capacity:
            break
        current = &points[count - 1, 0]
        if secant and count > 1:
            previous = &points[count - 2, 0]
            norm = 0.0
            for i in range(4):
                predictor[i] = current[_P_Z + i] - previous[_P_Z + i]
                norm += predictor[i] * predictor[i]
            norm = sqrt(norm)
            for i in range(4):
                predictor[i] /= norm
        else:
            for i in range(4):
                predictor[i] = current[_P_TANGENT + i]
        rejections = 0
        while True:
            failure = 0
            for i in range(4):
                z[i] = current[_P_Z + i] + ds * predictor[i]
            if _palc_newton(
                kind, K, &scale[0], &current[_P_Z], predictor, ds, z, tol,
                max_iter, False, &iterations
            ) or _palc_point(kind, K, &scale[0], z, predictor, row):
                failure = _PALC_NEWTON_FAILED
            else:
                cos_angle = 0.0
                for i in range(4):
                    cos_angle += current[_P_TANGENT + i] * row[_P_TANGENT + i]
                if cos_angle < cos_max:
                    failure = _PALC_BRANCH_JUMP
            if failure == 0:
                break
            n_rejected += 1
            rejections += 1
            if ds <= ds_min:
                status = failure
                report[3] = exp(current[_P_Z + 3])
                break
            if rejections > max_rejections:
                status = _PALC_MAX_REJECTIONS
                report[3] = exp(current[_P_Z + 3])
                break
            ds = fmax(ds * shrink, ds_min)
        if failure:
            break

        if row[_P_Z + 3] > q_max or row[_P_Z + 3] < q_min:
            q_bound = q_max if row[_P_Z + 3] > q_max else q_min
            status = _PALC_BOUND
            report[3] = exp(q_bound)
            if fabs(q_bound - current[_P_Z + 3]) <= 1e-14 * fmax(1.0, fabs(q_bound)):
                status = _PALC_BOUND_UNCORRECTED
                break
            fraction = (q_bound - current[_P_Z + 3]) / (row[_P_Z + 3] - current[_P_Z + 3])
            for i in range(3):
                z[i] = current[_P_Z + i] + fraction * (row[_P_Z + i] - current[_P_Z + i])
            z[3] = q_bound
            # The point keeps the iteration count of the corrector step that
            # crossed the bound, as in the Python loop.
            if _palc_newton(
                kind, K, &scale[0], z, predictor, 0.0, z, tol, max_iter, True,
                &landing_iterations
            ) or _palc_point(kind, K, &scale[0], z, predictor, row):
                status = _PALC_BOUND_UNCORRECTED
                break
            along = 0.0
            for i in range(4):
                along += predictor[i] * (row[_P_Z + i] - current[_P_Z + i])
            if along <= 0.0:
                status = _PALC_BOUND_UNCORRECTED
                break

        # Accept.
        along = 0.0
        for i in range(4):
            along += predictor[i] * (row[_P_Z + i] - current[_P_Z + i])
            row[_P_PREDICTOR + i] = predictor[i]
        row[_P_ITERATIONS] = iterations
        row[_P_STEP] = along
        for i in range(PALC_COLUMNS):
            points[count, i] = row[i]
        count += 1
        if status == _PALC_BOUND:
            break

        # A return to the start point: the geometric conditions of
        # _Tracer.closes_loop; the caller corrects the point and decides.
        if count >= 5:
            first = &points[0, 0]
            previous = &points[count - 2, 0]
            s0 = 0.0
            length = 0.0
            along = 0.0
            for i in range(4):
                offset[i] = first[_P_Z + i] - previous[_P_Z + i]
                s0 += predictor[i] * offset[i]
                length += predictor[i] * (points[count - 1, _P_Z + i] - previous[_P_Z + i])
                along += first[_P_TANGENT + i] * points[count - 1, _P_TANGENT + i]
            offset_norm = 0.0
            for i in range(4):
                offset_norm += (offset[i] - s0 * predictor[i]) ** 2
            if (
                0.0 < s0 <= length
                and sqrt(offset_norm) <= 0.25 * length
                and along > 0.0
            ):
                status = _PALC_LOOP_CANDIDATE

        # Step control of _Tracer.next_step.
        if iterations <= target and cos_angle >= cos_half:
            ds *= growth
        elif iterations > 2 * target:
            ds *= shrink
        ds = fmin(fmax(ds, ds_min), ds_max)
        if status == _PALC_LOOP_CANDIDATE:
            break
    report[0] = count
    report[1] = ds
    report[2] = n_rejected
    return status


# -- local minimisation of the site-symmetric free energy --------------------


cdef int _jacobi3(double* a, double* values, double* vectors) noexcept nogil:
    # Eigen-decomposition of the symmetric 3 x 3 matrix a (row-major,
    # overwritten) by cyclic Jacobi rotations: values (unsorted) and the
    # eigenvectors as the columns of vectors (row-major). Return 1 if the
    # rotations do not converge in 50 sweeps.
    cdef int sweep, p, q, r
    cdef double off, theta, t, c, s, apq, app, aqq, x, y
    for p in range(3):
        for q in range(3):
            vectors[3 * p + q] = 1.0 if p == q else 0.0
    for sweep in range(50):
        off = fabs(a[1]) + fabs(a[2]) + fabs(a[5])
        if off == 0.0:
            break
        for p in range(2):
            for q in range(p + 1, 3):
                apq = a[3 * p + q]
                if apq == 0.0:
                    continue
                app = a[3 * p + p]
                aqq = a[3 * q + q]
                if fabs(apq) <= 1e-300 or (
                    fabs(app) + 1e18 * fabs(apq) == fabs(app)
                    and fabs(aqq) + 1e18 * fabs(apq) == fabs(aqq)
                ):
                    a[3 * p + q] = 0.0
                    a[3 * q + p] = 0.0
                    continue
                theta = (aqq - app) / (2.0 * apq)
                t = 1.0 / (fabs(theta) + sqrt(theta * theta + 1.0))
                if theta < 0.0:
                    t = -t
                c = 1.0 / sqrt(t * t + 1.0)
                s = t * c
                for r in range(3):
                    x = a[3 * r + p]
                    y = a[3 * r + q]
                    a[3 * r + p] = c * x - s * y
                    a[3 * r + q] = s * x + c * y
                for r in range(3):
                    x = a[3 * p + r]
                    y = a[3 * q + r]
                    a[3 * p + r] = c * x - s * y
                    a[3 * q + r] = s * x + c * y
                for r in range(3):
                    x = vectors[3 * r + p]
                    y = vectors[3 * r + q]
                    vectors[3 * r + p] = c * x - s * y
                    vectors[3 * r + q] = s * x + c * y
    else:
        return 1
    for p in range(3):
        values[p] = a[3 * p + p]
    return 0


def symmetric_local_minimum(
    int kind, double K, double alpha, double[::1] u, double tol, int max_iter
):
    """The damped Newton descent of ``SpecializationProblem.local_minimum``.

    From ``u`` (in place), steps ``-|H|^-1 g`` (the Hessian with absolute
    eigenvalues, floored at 1e-10 of the largest), or at a saddle a step of
    1e-3 along the direction of negative curvature, with Armijo backtracking
    inside the domain, until the gradient is at most ``tol max(1, |F|)`` with
    a positive definite Hessian (returns 0), the backtracking or the steps
    stall (returns 1; the caller polishes with Newton's method), or
    ``max_iter`` steps pass (returns 1 too). Returns 2 for a start outside
    the domain or a failed evaluation.
    """
    cdef double buffer[15]
    cdef double a[9]
    cdef double values[3]
    cdef double vectors[9]
    cdef double projected[3]
    cdef double step[3]
    cdef double trial[3]
    cdef double F0, F1 = 0.0, slope, t, largest, norm, size
    cdef int iteration, i, j, lowest
    if u.shape[0] != 3:
        raise ValueError("u needs 3 elements")
    if not _symmetric_valid(u[0], u[1], u[2], K):
        return 2
    F0 = _symmetric_free_energy(kind, u[0], u[1], u[2], alpha, K, NULL)
    if not isfinite(F0):
        return 2
    for iteration in range(max_iter):
        if _symmetric_derivatives(kind, u[0], u[1], u[2], alpha, K, buffer):
            return 2
        for i in range(9):
            a[i] = buffer[3 + i]
        if _jacobi3(a, values, vectors):
            return 2
        norm = fmax(fabs(buffer[0]), fmax(fabs(buffer[1]), fabs(buffer[2])))
        lowest = 0
        for j in range(1, 3):
            if values[j] < values[lowest]:
                lowest = j
        if norm <= tol * fmax(1.0, fabs(F0)):
            if values[lowest] > 0.0:
                return 0
            # A saddle: the gradient vanishes, so the Newton step does too.
            # Step along the direction of negative curvature instead, where F
            # falls by about |lambda| h^2 / 2 for a step of length h.
            size = fmax(1.0, fmax(fabs(u[0]), fmax(fabs(u[1]), fabs(u[2]))))
            slope = 0.0
            for i in range(3):
                step[i] = 1e-3 * size * vectors[3 * i + lowest]
                slope += buffer[i] * step[i]
            if slope > 0.0:
                for i in range(3):
                    step[i] = -step[i]
            slope = 0.0
        else:
            largest = fmax(fabs(values[0]), fmax(fabs(values[1]), fabs(values[2])))
            for j in range(3):
                values[j] = fmax(fabs(values[j]), 1e-10 * fmax(1.0, largest))
                projected[j] = 0.0
                for i in range(3):
                    projected[j] += vectors[3 * i + j] * buffer[i]
                projected[j] /= values[j]
            slope = 0.0
            for i in range(3):
                step[i] = 0.0
                for j in range(3):
                    step[i] -= vectors[3 * i + j] * projected[j]
                slope += buffer[i] * step[i]
        t = 1.0
        while t > 1e-14:
            for i in range(3):
                trial[i] = u[i] + t * step[i]
            if _symmetric_valid(trial[0], trial[1], trial[2], K):
                F1 = _symmetric_free_energy(
                    kind, trial[0], trial[1], trial[2], alpha, K, NULL
                )
                if F1 <= F0 + 1e-4 * t * slope:
                    break
            t *= 0.5
        else:
            return 1
        largest = fmax(fabs(t * step[0]), fmax(fabs(t * step[1]), fabs(t * step[2])))
        size = fmax(1.0, fmax(fabs(u[0]), fmax(fabs(u[1]), fabs(u[2]))))
        if largest <= 1e-15 * size:
            return 1
        for i in range(3):
            u[i] = trial[i]
        F0 = F1
    return 1


# -- states at fixed R - S -----------------------------------------------------


def symmetric_fixed_d(
    int kind, double K, double d, double[::1] y, double tol, int max_iter,
    double floor, double[::1] info
):
    """Newton's method for ``grad F = 0`` in ``y = (m, C, alpha)`` at fixed
    ``d = R - S``, with ``R = d (1 - 1/K) + m/K`` and ``S = -d/K + m/K``.

    The iteration of ``reluspec.analysis.locate._newton`` on the system of
    ``reluspec.analysis.solve._fixed_d_state``: it stops when the largest
    step relative to ``max(1, |y_i|)`` is at most ``tol``, or when the last
    three steps were at most ``floor`` and either ``max_iter`` steps were
    taken or those three set no new minimum (steps bouncing at rounding).
    ``y`` holds the start and receives the solution. ``info`` receives the
    last relative step, the number of steps and the largest of the last
    three alpha steps. Returns 0 on convergence, 1 without it, 2 where a
    state leaves the domain and 3 at a singular Jacobian.
    """
    cdef double J[9]
    cdef double step[3]
    cdef double history[3]
    cdef double alpha_history[3]
    cdef double size, largest, alpha_largest, recent_least
    cdef double earlier_least = INFINITY
    cdef bint stalled
    cdef int iteration, i
    if y.shape[0] != 3 or info.shape[0] < 3:
        raise ValueError("y needs 3 elements and info 3")
    for i in range(3):
        history[i] = INFINITY
        alpha_history[i] = INFINITY
    info[0] = INFINITY
    info[1] = 0.0
    info[2] = INFINITY
    for iteration in range(1, max_iter + 1):
        if _fixed_d_system(kind, K, d, &y[0], step, J):
            return 2
        for i in range(3):
            step[i] = -step[i]
        if _solve_small(J, step, 3):
            return 3
        size = 0.0
        for i in range(3):
            y[i] = y[i] + step[i]
            size = fmax(size, fabs(step[i]) / fmax(1.0, fabs(y[i])))
        if iteration > 3:
            # The step leaving the window of the last three.
            earlier_least = fmin(earlier_least, history[iteration % 3])
        history[iteration % 3] = size
        alpha_history[iteration % 3] = fabs(step[2])
        largest = fmax(history[0], fmax(history[1], history[2]))
        alpha_largest = fmax(alpha_history[0], fmax(alpha_history[1], alpha_history[2]))
        info[0] = size
        info[1] = iteration
        info[2] = alpha_largest
        recent_least = fmin(history[0], fmin(history[1], history[2]))
        stalled = iteration >= 6 and recent_least >= earlier_least
        if size <= tol or ((iteration == max_iter or stalled) and largest <= floor):
            return 0
    return 1


def symmetric_branch_values(
    int kind, double K, double[::1] alphas, double[:, ::1] u, double[::1] F,
    double[::1] error, double[:, ::1] slopes
):
    """Evaluate the free energy, the generalisation error and the slope
    ``du/d ln(alpha) = -H^-1 K alpha grad eps_g`` at traced states.

    Rows of ``slopes`` are NaN where the Hessian's condition number (largest
    over smallest absolute eigenvalue) is 1e8 or more, or an evaluation
    fails (F and error are NaN there too). Returns the number of failed
    evaluations.
    """
    cdef double buffer[15]
    cdef double a[9]
    cdef double values[3]
    cdef double rhs[3]
    cdef double big, small
    cdef Py_ssize_t i, n = alphas.shape[0]
    cdef int j, failed = 0
    if u.shape[0] != n or u.shape[1] != 3 or F.shape[0] != n or error.shape[0] != n:
        raise ValueError("u, F and error need one row per alpha")
    if slopes.shape[0] != n or slopes.shape[1] != 3:
        raise ValueError("slopes needs shape (n, 3)")
    for i in range(n):
        F[i] = _symmetric_free_energy(
            kind, u[i, 0], u[i, 1], u[i, 2], alphas[i], K, &error[i]
        )
        for j in range(3):
            slopes[i, j] = NAN
        if not isfinite(F[i]):
            error[i] = NAN
            failed += 1
            continue
        if _symmetric_derivatives(kind, u[i, 0], u[i, 1], u[i, 2], alphas[i], K, buffer):
            failed += 1
            continue
        for j in range(9):
            a[j] = buffer[3 + j]
        if _jacobi_eigenvalues(a, 3, values):
            continue
        big = fmax(fabs(values[0]), fmax(fabs(values[1]), fabs(values[2])))
        small = fmin(fabs(values[0]), fmin(fabs(values[1]), fabs(values[2])))
        if not big < 1e8 * small:
            continue
        for j in range(9):
            a[j] = buffer[3 + j]
        for j in range(3):
            rhs[j] = -K * alphas[i] * buffer[12 + j]
        if _solve_small(a, rhs, 3):
            continue
        for j in range(3):
            slopes[i, j] = rhs[j]
    return failed


def symmetric_error(int kind, double R, double S, double C, double K):
    """Return eps_g of the site-symmetric ansatz (the value that
    symmetric_free_energy uses), or NaN where the inputs need the validating
    Python path."""
    cdef double error = NAN
    if not isfinite(_symmetric_free_energy(kind, R, S, C, 0.0, K, &error)):
        return NAN
    return error


def symmetric_palc_correct(
    int kind, double K, double[::1] scale, double[::1] origin, double[::1] predictor,
    double s, double[::1] z, double tol, int max_iter
):
    """Solve the corrector system of symmetric_palc, ``F(z) = 0`` and
    ``predictor . (z - origin) = s``, by Newton's method with polishing from
    ``z`` (in place). Returns 0 on convergence and 1 otherwise."""
    cdef int iterations
    if (
        scale.shape[0] != 3 or origin.shape[0] != 4 or predictor.shape[0] != 4
        or z.shape[0] != 4
    ):
        raise ValueError("scale needs 3 elements and origin, predictor and z 4")
    return _palc_newton(
        kind, K, &scale[0], &origin[0], &predictor[0], s, &z[0], tol, max_iter,
        False, &iterations
    )


def symmetric_palc_point(
    int kind, double K, double[::1] scale, double[::1] z, double[::1] reference,
    bint given_tangent, double[::1] out
):
    """Fill ``out[:23]`` with what ``continuation.PointData`` computes at
    ``z``: the Jacobian ``[F_u, F_q]`` (12, row-major), the tangent (4; the
    bordered tangent along ``reference``, or ``reference`` itself with
    ``given_tangent``), the eigenvalues of ``F_u`` (3, ascending), those of
    the Hessian (3, ascending) and the sign of ``det [F_z; tangent]``.

    ``F_u = D H / (1 + alpha^2)`` with ``D`` the positive diagonal of the
    residual scale, so that its eigenvalues are those of the symmetric
    ``D^(1/2) H D^(1/2) / (1 + alpha^2)``, found by Jacobi rotations.
    Returns 0, or 1 outside the domain.
    """
    cdef double F[3]
    cdef double J[12]
    cdef double H[9]
    cdef double S[9]
    cdef double root[3]
    cdef double alpha, w
    cdef int i, j
    if (
        scale.shape[0] != 3 or z.shape[0] != 4 or reference.shape[0] != 4
        or out.shape[0] < 23
    ):
        raise ValueError("scale needs 3, z and reference 4 and out 23 elements")
    if _palc_system(kind, K, &scale[0], &z[0], F, J, H):
        return 1
    for i in range(12):
        out[i] = J[i]
    if given_tangent:
        for i in range(4):
            out[12 + i] = reference[i]
    else:
        _palc_tangent(J, &reference[0], &out[12])
    alpha = exp(z[3])
    w = 1.0 + alpha * alpha
    for i in range(3):
        root[i] = sqrt(scale[i])
    for i in range(3):
        for j in range(3):
            S[3 * i + j] = root[i] * (0.5 * (H[3 * i + j] + H[3 * j + i])) * root[j] / w
    if _jacobi_eigenvalues(S, 3, &out[16]):
        return 1
    for i in range(3):
        for j in range(3):
            S[3 * i + j] = 0.5 * (H[3 * i + j] + H[3 * j + i])
    if _jacobi_eigenvalues(S, 3, &out[19]):
        return 1
    out[22] = _det_sign4(J, &out[12])
    return 0


cdef int _fixed_d_system(
    int kind, double K, double d, double* y, double* r, double* J
) noexcept:
    # The residual grad F and its Jacobian in (m, C, alpha) (row-major) at
    # fixed d, with the operations of reluspec.analysis.solve._fixed_d_state.
    # Return 1 outside the domain.
    cdef double buffer[15]
    cdef double inv_k = 1.0 / K
    cdef double R, S, C
    cdef int i
    R = (d * (1.0 - inv_k) + y[0] * inv_k) + y[1] * 0.0
    S = (d * (-inv_k) + y[0] * inv_k) + y[1] * 0.0
    C = (d * 0.0 + y[0] * 0.0) + y[1]
    if not (_symmetric_valid(R, S, C, K) and y[2] > 0.0):
        return 1
    if _symmetric_derivatives(kind, R, S, C, y[2], K, buffer):
        return 1
    for i in range(3):
        J[3 * i] = (
            buffer[3 + 3 * i] * inv_k + buffer[4 + 3 * i] * inv_k
        ) + buffer[5 + 3 * i] * 0.0
        J[3 * i + 1] = (
            buffer[3 + 3 * i] * 0.0 + buffer[4 + 3 * i] * 0.0
        ) + buffer[5 + 3 * i]
        J[3 * i + 2] = K * buffer[12 + i]
        r[i] = buffer[i]
    for i in range(9):
        if not isfinite(J[i]):
            return 1
    return 0


def symmetric_fixed_d_system(
    int kind, double K, double d, double[::1] y, double[::1] out
):
    """Write the residual (3) and Jacobian (9, row-major) of the system of
    symmetric_fixed_d at ``y = (m, C, alpha)`` into ``out[:12]``; return 0,
    or 1 outside the domain."""
    if y.shape[0] != 3 or out.shape[0] < 12:
        raise ValueError("y needs 3 elements and out 12")
    return _fixed_d_system(kind, K, d, &y[0], &out[0], &out[3])


def symmetric_block_spectrum_many(
    int kind, double K, double[::1] alphas, double[:, ::1] u, double[:, ::1] out
):
    """Fill each row of ``out`` (shape (n, 14)) as symmetric_block_spectrum
    does for the matching row of ``u`` (shape (n, 3)) and entry of
    ``alphas``. Returns the number of rows that need the Python path."""
    cdef Py_ssize_t i, n = alphas.shape[0]
    cdef int failed = 0
    if u.shape[0] != n or u.shape[1] != 3:
        raise ValueError("u needs shape (n, 3) for n alphas")
    if out.shape[0] != n or out.shape[1] != _SPECTRUM_SIZE:
        raise ValueError(f"out needs shape (n, {_SPECTRUM_SIZE})")
    for i in range(n):
        if _block_spectrum(kind, u[i, 0], u[i, 1], u[i, 2], alphas[i], K, &out[i, 0]):
            failed += 1
    return failed

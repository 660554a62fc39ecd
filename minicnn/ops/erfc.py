"""The complementary error function on any array module (NumPy has none; gelu needs
it: ``Phi(x) = erfc(-x / sqrt(2)) / 2``)."""
import math

from ..backend import get_array_module

# erfc by W. J. Cody's rational Chebyshev approximations (Math. Comp. 23 (1969) 631-637;
# netlib SPECFUN, CALERF), one per range of |x|, each good to about 1e-16 relative.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERFC_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
           2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
           2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERFC_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
           1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
           3.43936767414372164e03, 1.23033935480374942e03)
_ERFC_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
           1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERFC_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
           6.05183413124413191e-2, 2.33520497626869185e-3)
_ERFC_ZERO_FROM = 26.543   # erfc(x) < 1e-308 beyond: it underflows to 0


def _rational(t, num, den):
    """Cody's nested form of P(t) / Q(t): ``num`` has one coefficient more than ``den``
    (the leading one last), and Q is monic. In place: two arrays, not two per step."""
    top, bottom = t * num[-1], t.copy()
    for a, b in zip(num[:len(den) - 1], den[:-1]):
        top += a
        top *= t
        bottom += b
        bottom *= t
    top += num[len(den) - 1]
    bottom += den[-1]
    top /= bottom
    return top


def erfc(x):
    """The complementary error function ``erfc(x) = 1 - erf(x)
    = 2/sqrt(pi) * integral from x to inf of exp(-u**2) du``, element-wise, in float64.

    NumPy has none (SciPy's is not a dependency). |x| <= 0.46875: ``1 - x R1(x**2)``;
    up to 4: ``exp(-x**2) R2(|x|)``; beyond: ``exp(-x**2)/|x| (1/sqrt(pi) - R3(1/x**2)/x**2)``
    with Cody's rational functions R; ``exp(-x**2)`` is split into two factors so that the
    rounding of ``x**2`` does not cost accuracy; ``erfc(-x) = 2 - erfc(x)``.
    """
    xp = get_array_module(x)
    z = xp.asarray(x, dtype=xp.float64)
    y = xp.abs(z)
    out = xp.full(z.shape, xp.nan)                  # NaN stays NaN
    small = y <= 0.46875
    t = z[small]
    out[small] = 1 - t * _rational(t * t, _ERF_A, _ERF_B)
    for low, high in ((0.46875, 4.0), (4.0, _ERFC_ZERO_FROM)):
        part = (y > low) & (y <= high)
        t = y[part]
        if high == 4.0:
            r = _rational(t, _ERFC_C, _ERFC_D)
        else:
            r = (1 / math.sqrt(math.pi) - _rational(1 / (t * t), _ERFC_P, _ERFC_Q) / (t * t)) / t
        head = xp.trunc(t * 16) / 16                 # exp(-t**2) = exp(-head**2) exp(-rest)
        out[part] = xp.exp(-head * head) * xp.exp(-(t - head) * (t + head)) * r
    out[y >= _ERFC_ZERO_FROM] = 0
    negative = (z < 0) & ~small
    out[negative] = 2 - out[negative]
    return out

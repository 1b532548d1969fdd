"""Coefficients of csrc/fastnn_math.h's polynomials (run once; paste the output into the header).

    pip install mpmath && python tools/fit_math_poly.py

Each is a Chebyshev fit (mpmath.chebyfit, 50 digits: within a few percent of the minimax error) of
the part of the function left after its exact leading terms, so that rounding the coefficients to
float/double perturbs only small corrections:
    expm1(r) = r + r^2 (1/2 + r Q(r)),   |r| <= ln(2)/2 + rounding slack  (exp's reduced argument)
    tanh(x)  = x + x z P(z),  z = x^2,   |x| < 9/16                      (tanh's odd part near 0)
The printed error is the fit's, as a relative error of expm1 / tanh at the end of the interval.
"""
import mpmath as mp

mp.mp.dps = 50
R_MAX = mp.mpf("0.35")       # |r| <= 0.3466 after the Cody-Waite reduction
TANH_SMALL = mp.mpf(9) / 16  # above atanh(1/2) = 0.549, so 2/(e + 1) < 1/2 in the other branch


def q_expm1(r):
    if abs(r) < mp.mpf("1e-12"):  # series: 1/6 + r/24 + r^2/120
        return mp.mpf(1) / 6 + r / 24 + r * r / 120
    return (mp.expm1(r) - r - r * r / 2) / r ** 3


def p_tanh(z):
    if z < mp.mpf("1e-24"):  # series: -1/3 + 2z/15
        return -mp.mpf(1) / 3 + 2 * z / 15
    x = mp.sqrt(z)
    return (mp.tanh(x) - x) / (x * z)


def fit(name, f, lo, hi, n, scale, ctype):
    coeffs, err = mp.chebyfit(f, [lo, hi], n, error=True)
    bits, suffix = (24, "f") if ctype == "float" else (53, "")
    vals = []
    for c in coeffs:
        with mp.workprec(bits):  # round once, to nearest, to the C type's precision
            vals.append(float(+c))
    body = ", ".join(v.hex().replace("0000000p", "p").rstrip() + suffix for v in vals)
    print(f"/* {name}: {n} terms, highest degree first; fit error {mp.nstr(err * scale, 3)} relative */")
    print(f"static const {ctype} {name}[{n}] = {{{body}}};")


if __name__ == "__main__":
    fit("fm_expm1_q_f32", q_expm1, -R_MAX, R_MAX, 5, R_MAX ** 2, "float")
    fit("fm_expm1_q_f64", q_expm1, -R_MAX, R_MAX, 10, R_MAX ** 2, "double")
    fit("fm_tanh_p_f32", p_tanh, 0, TANH_SMALL ** 2, 5, TANH_SMALL ** 2, "float")
    fit("fm_tanh_p_f64", p_tanh, 0, TANH_SMALL ** 2, 11, TANH_SMALL ** 2, "double")

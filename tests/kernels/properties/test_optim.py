"""The optimizer updates (sgd, rmsprop, adam, adadelta, adagrad, adamax, nadam, lion): compiled vs twin, in
place over the arena.

w, g and the slots carry NaN, infinities and extreme values (a NaN gradient must poison exactly the
weights it touches); g may have any layout; w and the slots are updated in place and must be
writeable and C-contiguous: anything else is refused by name.
"""
import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the property tests need hypothesis (pip install '.[test]')")
from hypothesis import example, given, strategies as st  # noqa: E402

from ._props import (DTYPES, LAYOUT, SEEDS, THREADS, arrange, assert_same, both_refuse, compiled, dim,  # noqa: E402
                     prop_settings, twin, values)

KERNELS = ("sgd_update", "rmsprop_update", "adam_update", "adadelta_update", "adagrad_update", "adamax_update",
           "nadam_update", "lion_update")
STEPPED = ("adam_update", "adamax_update", "nadam_update")  # take the 1-based `iteration`
SIZES = st.one_of(dim(70), dim(70), st.integers(8000, 20000))  # >= 8192 elements: several threads


def _hyper(kind, rng):
    lr = float(rng.choice([1e-3, 0.01, 0.1, 1.0]))
    if kind == "sgd_update":
        return dict(learning_rate=lr, momentum=float(rng.choice([0.0, 0.5, 0.9])), nesterov=bool(rng.random() < .5))
    if kind == "rmsprop_update":
        return dict(learning_rate=lr, rho=float(rng.choice([0.9, 0.5])), momentum=float(rng.choice([0.0, 0.9])),
                    epsilon=float(rng.choice([1e-7, 1e-3])), centered=bool(rng.random() < .5))
    if kind == "adam_update":
        return dict(learning_rate=lr, beta_1=float(rng.choice([0.9, 0.5])), beta_2=float(rng.choice([0.999, 0.9])),
                    epsilon=float(rng.choice([1e-7, 1e-3])), iteration=int(rng.integers(1, 1000)),
                    amsgrad=bool(rng.random() < .5))
    if kind == "adadelta_update":
        return dict(learning_rate=lr, rho=float(rng.choice([0.95, 0.5])), epsilon=float(rng.choice([1e-7, 1e-3])))
    if kind == "adagrad_update":
        return dict(learning_rate=lr, epsilon=float(rng.choice([1e-7, 1e-3])))
    if kind in ("adamax_update", "nadam_update"):
        return dict(learning_rate=lr, beta_1=float(rng.choice([0.9, 0.5])), beta_2=float(rng.choice([0.999, 0.9])),
                    epsilon=float(rng.choice([1e-7, 1e-3])), iteration=int(rng.integers(1, 1000)))
    return dict(learning_rate=lr, beta_1=float(rng.choice([0.9, 0.5, 0.0])), beta_2=float(rng.choice([0.99, 0.5])))


def _slots(kind, h):
    """(names, required) of the slot arguments after w and g."""
    if kind == "sgd_update":
        return ("m",), (h["momentum"] != 0,)
    if kind == "rmsprop_update":
        return ("v", "mom", "mg"), (True, h["momentum"] > 0, h["centered"])
    if kind == "adam_update":
        return ("m", "v", "vhat"), (True, True, h["amsgrad"])
    if kind == "adadelta_update":
        return ("accum_grad", "accum_delta"), (True, True)
    if kind == "adagrad_update":
        return ("accumulator",), (True,)
    if kind == "adamax_update":
        return ("m", "u"), (True, True)
    if kind == "nadam_update":
        return ("m", "v"), (True, True)
    return ("m",), (True,)


def _state(kind, names, n, dtype, special, rng):
    """Slot values as an optimizer leaves them (second moments are >= 0)."""
    out = []
    for name in names:
        if name in ("v", "vhat", "accum_grad", "accum_delta", "accumulator", "u"):
            out.append(np.abs(values(rng, (n,), dtype, special / 4)) * 0.1)
        else:
            out.append(values(rng, (n,), dtype, special / 4) * 0.1)
    if kind == "rmsprop_update":  # centered: v >= mg^2 as the update keeps it
        with np.errstate(all="ignore"):
            out[0] = np.maximum(out[0], out[2] * out[2])
    return out


@prop_settings()
@given(kind=st.sampled_from(KERNELS), n=SIZES, shape2d=st.booleans(), dtype=DTYPES, g_layout=LAYOUT,
       special=st.sampled_from([0.0, 0.0, 0.05, 0.5]), steps=st.integers(1, 3), seed=SEEDS, n_threads=THREADS)
@example(kind="adam_update", n=1, shape2d=False, dtype=np.float32, g_layout="C", special=0.05, steps=1, seed=0,
         n_threads=1)  # issue 15: amsgrad's max(vhat, v) dropped a NaN vhat (np.maximum keeps it)
@example(kind="lion_update", n=1, shape2d=False, dtype=np.float32, g_layout="C", special=0.5, steps=1, seed=5,
         n_threads=1)  # a NaN gradient: Keras' ops.sign(NaN) is NaN, the kernel's (s > 0) - (s < 0) gave 0
@example(kind="adamax_update", n=1, shape2d=False, dtype=np.float32, g_layout="C", special=0.5, steps=1, seed=29,
         n_threads=1)  # a NaN u: the kernel's max(b2 u, |g|) as bu > ag ? bu : ag dropped it (np.maximum keeps it)
def test_update(kind, n, shape2d, dtype, g_layout, special, steps, seed, n_threads):
    rng = np.random.default_rng(seed)
    h = _hyper(kind, rng)
    names, required = _slots(kind, h)
    shape = (n // 5, 5) if shape2d and n >= 5 else (n,)
    n = int(np.prod(shape))
    w = values(rng, shape, dtype, special)
    slots = [None if not r else s.reshape(shape) for s, r in zip(_state(kind, names, n, dtype, special, rng),
                                                                  required)]
    wc, wr = w.copy(), w.copy()
    sc = [None if s is None else s.copy() for s in slots]
    sr = [None if s is None else s.copy() for s in slots]
    for step in range(steps):
        g = arrange(values(rng, shape, dtype, special), g_layout)
        if kind in STEPPED:
            h = dict(h, iteration=h["iteration"] + step)
        with np.errstate(all="ignore"):
            twin(kind)(wr, g, *sr, **h)
        compiled(kind)(wc, g, *sc, **h, n_threads=n_threads)
    # float32 Adam/RMSprop divide by a square root: allow a few ulp beyond the elementwise tolerance
    rtol, atol = (2e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-13)
    assert_same(wc, wr, dtype, rtol=rtol, atol=atol, what=f"{kind} w")
    for a, b, name in zip(sc, sr, names):
        if a is not None:
            assert_same(a, b, dtype, rtol=rtol, atol=atol, what=f"{kind} {name}")


@prop_settings(0.5)
@given(kind=st.sampled_from(KERNELS), n=st.integers(2, 30), dtype=DTYPES,
       layout=st.sampled_from(["F", "strided", "reversed", "readonly"]), which=st.integers(0, 3), seed=SEEDS)
def test_a_buffer_updated_in_place_must_be_writeable_and_contiguous(kind, n, dtype, layout, which, seed):
    rng = np.random.default_rng(seed)
    h = _hyper(kind, rng)
    names, required = _slots(kind, h)
    args = {"w": np.zeros((n, 2), dtype)}
    args.update({name: np.zeros((n, 2), dtype) for name, r in zip(names, required) if r})
    name = list(args)[which % len(args)]
    args[name] = arrange(args[name], layout)
    if args[name].flags.c_contiguous and args[name].flags.writeable:
        return
    w = args.pop("w")
    slots = [args.get(s) for s in names]
    both_refuse(kind, name, w, np.ones((n, 2), dtype), *slots, **h)


@prop_settings(0.25)
@given(kind=st.sampled_from(("adamax_update", "nadam_update")),
       iteration=st.one_of(st.integers(-3, 0), st.sampled_from([True, 1.0, 2.5, "1", None, np.float64(3)])),
       seed=SEEDS)
def test_a_step_number_must_be_an_integer_from_one(kind, iteration, seed):
    """Adamax and Nadam take the 1-based step; the kernel and the twin refuse anything else alike (the twin
    used to compute 1 - beta_1^0 = 0 and divide by it)."""
    rng = np.random.default_rng(seed)
    h = dict(_hyper(kind, rng), iteration=iteration)
    for kernel in (compiled(kind), twin(kind)):
        args = [np.zeros(3) for _ in range(4)]
        with pytest.raises(ValueError, match=f"^{kind}: argument `iteration` must be an integer >= 1"):
            kernel(*args, **h)

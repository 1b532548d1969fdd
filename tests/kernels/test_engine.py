"""The compiled training engine against its NumPy twin, on random models (tests/kernels/_engine_models.py).

* the twin: parameters, optimizer state, loss and metric sums after a few steps, evaluate and predict,
  within float32/float64 tolerance (the two sum products in different orders);
* bitwise: the same call on 1, 2 and 3 threads, and one call against the same steps in pieces;
* evaluate/predict: each row's outputs do not depend on the other rows of the call.
"""
import numpy as np
import pytest

from fastnn._kernels import _reference_engine as RE
from fastnn._kernels import engine as CE

from ._engine_models import OPTIMIZERS, random_case

OPTIMIZER_NAMES = [name if not hyper else None for name, hyper in OPTIMIZERS]

SEEDS = range(60)


def _tol(case):
    """float64: many steps, tight. float32: two steps; an adaptive optimizer divides by the root of a
    moving mean of squares, which turns a gradient that is rounding noise (~1e-7) into a step of up to lr,
    so those compare within a fraction of lr."""
    if case.plan["dtype"] == np.float64:
        return dict(rtol=1e-7, atol=1e-9)
    kind, hyper = case.plan["optimizer"]
    adaptive = kind in ("adam", "rmsprop", "adadelta", "adagrad", "adamax", "nadam")
    if kind == "lion":  # a step is +-lr: a sum at rounding noise from 0 flips its sign
        return dict(rtol=2e-3, atol=2e-4 + 4.5 * max(case.lr, 0.01))
    return dict(rtol=2e-3, atol=2e-4 + (0.05 * case.lr if adaptive else 0)
                + (0.05 if hyper.get("schedule") else 0))


def _train(engine_cls, case, threads=None, pieces=None, capture=False):
    params, grads, slots = case.arenas()
    e = engine_cls(case.plan, params, grads, slots, case.batch_size)
    if threads is not None:
        e._force_threads = threads
    order = np.arange(case.X.shape[0])
    K = case.plan["ops"][-1][2] if case.plan["ops"][-1][0] == "dense" else case.plan["ops"][-1][1]
    cap = np.zeros((case.X.shape[0], K), case.plan["dtype"]) if capture else None
    pieces = pieces or [case.n_batches]
    total = [0.0, 0.0, 0]
    done = 0
    for k in pieces:
        bs = case.batch_size
        r0, r1 = done * bs, min((done + k) * bs, case.X.shape[0])
        loss, metrics, seen = e.train_steps(case.X, case.y, order, done, k, done, case.lr,
                                            sample_weight=case.sample_weight,
                                            uniforms=[u[r0:] for u in case.uniforms],
                                            capture=None if cap is None else cap[r0:])
        total = [total[0] + loss, total[1] + metrics, total[2] + seen]
        done += k
    return e, params, slots, total, cap


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_matches_the_twin(seed):
    case = random_case(np.random.default_rng(seed))
    if case.plan["dtype"] == np.float32:
        case.n_batches = min(case.n_batches, 2)
    ec, pc, sc, (lc, mc, nc), capc = _train(CE.Engine, case, capture=True)
    er, pr, sr, (lr, mr, nr), capr = _train(RE.Engine, case, capture=True)
    tol = _tol(case)
    rows = min(case.X.shape[0], case.n_batches * case.batch_size)
    assert nc == nr == rows
    capc, capr = capc[:rows], capr[:rows]
    np.testing.assert_allclose(pc, pr, **tol)
    for a, b in zip(sc, sr):
        np.testing.assert_allclose(a, b, **tol)
    np.testing.assert_allclose(lc, lr, rtol=tol["rtol"], atol=tol["atol"] * rows)
    np.testing.assert_allclose(mc, mr, rtol=0, atol=max(2, rows // 20))  # accuracy counts may differ on near-ties
    np.testing.assert_allclose(capc, capr, **tol)
    np.testing.assert_allclose(ec.predict(case.X), er.predict(case.X), **tol)
    (le, me), (lre, mre) = ec.evaluate(case.X, case.y, case.sample_weight), er.evaluate(case.X, case.y,
                                                                                        case.sample_weight)
    np.testing.assert_allclose(le, lre, rtol=tol["rtol"], atol=tol["atol"] * case.X.shape[0])


@pytest.mark.parametrize("seed", range(40))
def test_bitwise_on_any_thread_count_and_in_pieces(seed):
    rng = np.random.default_rng(1000 + seed)
    case = random_case(rng, rows=int(rng.integers(40, 140)), batch_size=int(rng.integers(8, 40)))
    runs = [_train(CE.Engine, case, threads=t, capture=True) for t in (1, 2, 3)]
    if case.n_batches > 2:
        cut = int(rng.integers(1, case.n_batches - 1))
        runs.append(_train(CE.Engine, case, threads=2, pieces=[cut, case.n_batches - cut], capture=True))
    e0, p0, s0, (l0, m0, n0), c0 = runs[0]
    for k, (e, p, s, (l, m, n), c) in enumerate(runs[1:]):
        assert p.tobytes() == p0.tobytes()
        assert all(a.tobytes() == b.tobytes() for a, b in zip(s, s0))
        if k < 2:  # (the pieces' sums are added here, in another order)
            assert (l, n) == (l0, n0) and np.array_equal(m, m0)
        assert c.tobytes() == c0.tobytes()
    preds, evals = [], []
    for t in (1, 2, 3):
        e0._force_threads = t
        preds.append(e0.predict(case.X))
        loss, metrics = e0.evaluate(case.X, case.y, case.sample_weight)
        evals.append((loss, metrics.tobytes()))
    assert all(p.tobytes() == preds[0].tobytes() for p in preds)
    assert evals[1] == evals[0] and evals[2] == evals[0]
    # a row's outputs do not depend on the rows around it
    assert e0.predict(case.X[5:7]).tobytes() == preds[0][5:7].tobytes()


@pytest.mark.parametrize("seed", range(10))
def test_csr_input_matches_dense_input(seed):
    rng = np.random.default_rng(2000 + seed)
    case = random_case(rng, csr=True, dtype=np.float32, bn=False)
    dense = case.X.toarray()
    a = _train(CE.Engine, case)
    case_d = random_case(np.random.default_rng(2000 + seed), csr=True, dtype=np.float32, bn=False)
    case_d.X = dense
    b = _train(CE.Engine, case_d)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5, atol=1e-6)
    r = _train(RE.Engine, case)
    np.testing.assert_allclose(a[1], r[1], **_tol(case))
    np.testing.assert_allclose(a[0].predict(case.X), a[0].predict(dense), rtol=1e-5, atol=1e-6)


# hypothesis draws the model's shape and features (loss, optimizer, dtype, CSR input, sample weights, ...);
# random_case fills in the rest from the seed. The number of examples follows the hypothesis profile
# (tests/conftest.py: "ci" by default, "long" for local fuzzing).
try:
    from hypothesis import given, settings, strategies as st
except ImportError:  # (the test extra installs it)
    given = None

LOSSES = ("softmax_xent", "sigmoid_bxent", "xent", "bxent", "mse", "mae")

if given is not None:
    from ._engine_models import OPTIMIZERS

    @settings(max_examples=max(1, settings.default.max_examples * 2 // 3))
    @given(seed=st.integers(0, 2 ** 31 - 1), dtype=st.sampled_from([np.float32, np.float64]),
           depth=st.integers(1, 4), max_width=st.integers(2, 70), batch_size=st.integers(1, 67),
           rows=st.integers(1, 120), bn=st.booleans(), dropout=st.booleans(), frozen=st.booleans(),
           regularize=st.booleans(), weights=st.booleans(), threads=st.integers(1, 3),
           loss=st.sampled_from(LOSSES), optimizer=st.integers(0, len(OPTIMIZERS) - 1), csr=st.booleans())
    def test_random_models_match_the_twin_and_are_bitwise_on_any_thread_count(
            seed, dtype, depth, max_width, batch_size, rows, bn, dropout, frozen, regularize, weights, threads,
            loss, optimizer, csr):
        if csr:  # a CSR batch feeds the first Dense layer directly: float32, no BatchNormalization before it
            dtype, bn = np.float32, False
        case = random_case(np.random.default_rng(seed), dtype=dtype, depth=depth, max_width=max_width,
                           batch_size=batch_size, rows=rows, bn=bn, dropout=dropout, frozen=frozen,
                           regularize=regularize, weights=weights, loss=loss, optimizer=optimizer, csr=csr)
        if case.plan["dtype"] == np.float32:
            case.n_batches = min(case.n_batches, 2)
        one = _train(CE.Engine, case, threads=1, capture=True)
        team = _train(CE.Engine, case, threads=threads, capture=True)
        twin = _train(RE.Engine, case, capture=True)
        assert one[1].tobytes() == team[1].tobytes() and one[3][0] == team[3][0]
        np.testing.assert_allclose(one[1], twin[1], **_tol(case))
        np.testing.assert_allclose(one[3][0], twin[3][0], rtol=_tol(case)["rtol"],
                                   atol=_tol(case)["atol"] * max(1, case.X.shape[0]))  # the loss sum


@pytest.mark.parametrize("seed", [0, 1, 2, 4, 5])  # seed 3 draws a model where the NaN reaches no other weight
@pytest.mark.parametrize("where", ["weight", "input"])
def test_lion_lets_a_nan_through_like_the_twin(seed, where):
    """Keras 3's Lion steps by ops.sign(b1 m + (1 - b1) g), and sign(NaN) is NaN: a NaN weight or input
    makes NaN gradients, and every weight they reach turns NaN in the engine as in its twin (the C loop's
    (s > 0) - (s < 0) gave a step of 0 and left those weights finite)."""
    rng = np.random.default_rng(seed)
    case = random_case(rng, optimizer=OPTIMIZER_NAMES.index("lion"), dropout=False)
    case.n_batches = 1
    if where == "weight":
        case.params0[rng.integers(case.n_params)] = np.nan
    else:
        case.X = np.array(case.X, copy=True)
        case.X[0, rng.integers(case.X.shape[1])] = np.nan
    _, pc, _, _, _ = _train(CE.Engine, case)
    _, pr, _, _, _ = _train(RE.Engine, case)
    assert np.isnan(pr).sum() > 1  # the NaN spread
    np.testing.assert_array_equal(np.isnan(pc), np.isnan(pr))

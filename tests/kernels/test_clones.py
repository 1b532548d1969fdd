"""The clones of the multiply-add kernels (csrc/fastnn_clones.h) give the same bits.

The bitmask kernels (csrc/fastnn_bitmap.h) and the CSR kernels (csrc/fastnn_csr.h) are compiled twice,
portable and AVX2+FMA, and every multiply-add in both is one fused operation, as in the GEMM. So the
portable clone, the AVX2 clone and the GEMM agree bit for bit, at any optimisation level (FASTNN_DEBUG
builds included: issue 15 found them apart when -O3's FMA contraction did the fusing). Each module has
its own copy of the kernels and its own `_fma_isa` hook.
"""
import numpy as np
import pytest
import scipy.sparse as sp

from fastnn._kernels import dense as CD
from fastnn._kernels import engine as CE
from fastnn._kernels import sparse as CS

from ._engine_models import random_case

ISAS = [isa for isa in ("portable", "avx2") if CE._fma_isa(isa) == isa]
CE._fma_isa("avx2")
both = pytest.mark.skipif(len(ISAS) < 2, reason="this CPU has no AVX2+FMA clone to compare with")


@pytest.fixture(autouse=True)
def _restore_clones():
    yield
    for module in (CE, CS, CD):
        module._fma_isa("avx2")


def test_fma_isa_hook():
    assert CE._fma_isa() in ("portable", "avx2")
    assert CE._fma_isa("portable") == "portable"
    with pytest.raises(ValueError, match="argument `level` must be 'portable', 'avx2' or None; received 'sse'"):
        CS._fma_isa("sse")


def _train(case, kernel):
    params, grads, slots = case.arenas()
    e = CE.Engine(case.plan, params, grads, slots, case.batch_size)
    e._force_threads = 2
    old = CE.TUNABLES["max_density"]
    CE.TUNABLES["max_density"] = -1.0 if kernel == "gemm" else 1.0
    try:
        loss, _, _ = e.train_steps(case.X, case.y, np.arange(case.X.shape[0]), 0, case.n_batches, 0, case.lr,
                                   sample_weight=case.sample_weight, uniforms=case.uniforms)
        predictions = e.predict(case.X)
    finally:
        CE.TUNABLES["max_density"] = old
    return params.tobytes(), loss, predictions.tobytes()


@pytest.mark.parametrize("seed", range(12))
def test_engine_bitmask_kernels_equal_the_gemm_on_either_clone(seed):
    rng = np.random.default_rng(3000 + seed)
    case = random_case(rng, dtype=np.float32, csr=seed % 3 == 0, bn=False)
    if not sp.issparse(case.X):
        case.X = np.where(rng.random(case.X.shape) < 0.7, 0, case.X).astype(np.float32)  # bitmask territory
    runs = {}
    for isa in ISAS:
        CE._fma_isa(isa)
        runs[isa, "bitmask"] = _train(case, "bitmask")
        runs[isa, "gemm"] = _train(case, "gemm")
    first = next(iter(runs.values()))
    for key, run in runs.items():
        assert run == first, key


def _csr(rng, rows, cols, density, dtype):
    X = sp.random(rows, cols, density=density, format="csr", dtype=np.float64, random_state=rng)
    return X.astype(dtype)


@both
@pytest.mark.parametrize("O", [1, 3, 7, 8, 13, 16, 70])
def test_csr_kernels_portable_equal_avx2(O):
    rng = np.random.default_rng(O)
    X = _csr(rng, 37, 150, 0.1, np.float32)
    W = rng.standard_normal((150, O)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    dZ = rng.standard_normal((37, O)).astype(np.float32)
    rows = rng.permutation(37)[:29]
    out = {}
    for isa in ISAS:
        CS._fma_isa(isa)
        y = CS.csr_dense_forward(X.indptr, X.indices, X.data, W, b, rows=rows, n_threads=2)
        dW, db = np.zeros_like(W), np.zeros_like(b)
        CS.csr_dense_backward(X.indptr, X.indices, X.data, dZ[:29], dW, db, rows=rows, n_threads=2)
        out[isa] = (y.tobytes(), dW.tobytes(), db.tobytes())
    assert out["portable"] == out["avx2"]


@both
@pytest.mark.parametrize("shape", [(5, 3), (70, 130), (129, 64)])
def test_gather_bitmaps_portable_equal_avx2(shape):
    rng = np.random.default_rng(shape[0])
    X = np.where(rng.random(shape) < 0.6, 0, rng.standard_normal(shape)).astype(np.float32)
    X[0, 0] = np.nan  # NaN is a non-zero
    rows = rng.permutation(shape[0])
    out = {}
    for isa in ISAS:
        CD._fma_isa(isa)
        out[isa] = [np.asarray(a).tobytes() if isinstance(a, np.ndarray) else a
                    for a in CD.batch_bitmaps(X, rows, n_threads=2)]
    assert out["portable"] == out["avx2"]

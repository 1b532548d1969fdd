"""Data-parallel fit over MPI (issue 16): ``mpirun -n 2`` and ``-n 3 --oversubscribe`` run the scripts beside
this file as subprocesses. Checked: every rank ends with the same bits (weights, predictions, History,
evaluate), which are single-process training's within float32 rounding (BatchNormalization's per-rank
statistics excepted: there the ranks agree with each other only); odd shard sizes (a global batch of 37
on 3 ranks, a last batch shorter than P); pre-sharded data; rank-0-only writes; clear errors for misuse; no
hang when a rank dies, hangs or raises. Skipped, with the reason, without mpi4py or mpirun."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = str(Path(__import__("fastnn").__file__).resolve().parents[1])  # the fastnn the tests import
CASES_2 = "dropout,csr,weights,sgd"
CASES_3 = "odd,rmsprop,bn,dropout"

try:
    import mpi4py  # noqa: F401
    MPIRUN = shutil.which("mpirun") or shutil.which("mpiexec")
    REASON = "mpirun (or mpiexec) not found on PATH"
except ImportError:
    MPIRUN, REASON = None, 'mpi4py is not installed (pip install ".[mpi]")'
needs_mpi = pytest.mark.skipif(MPIRUN is None, reason=REASON)


def _env():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1",
               PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe")
    return env


def _mpirun(n, *args, timeout=90, check=True):
    command = [MPIRUN, "-n", str(n), "--oversubscribe", sys.executable, *map(str, args)]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode:
        pytest.fail(f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def _load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case trained on 1 process (no mpirun), 2 and 3 processes, and pre-sharded on 3."""
    folder = tmp_path_factory.mktemp("dp")
    script = HERE / "_train_script.py"
    subprocess.run([sys.executable, str(script), folder / "p1", CASES_2 + "," + CASES_3], env=_env(), check=True,
                   timeout=120)
    _mpirun(2, script, folder / "p2", CASES_2)
    _mpirun(3, script, folder / "p3", CASES_3)
    _mpirun(3, script, folder / "p3s", "dropout", "presharded")
    return folder


def _ranks(folder, prefix, case, n):
    return [_load(folder / f"{prefix}_{case}_rank{r}.npz") for r in range(n)]


@needs_mpi
@pytest.mark.parametrize("prefix,n,case", [("p2", 2, c) for c in CASES_2.split(",")]
                         + [("p3", 3, c) for c in CASES_3.split(",")] + [("p3s", 3, "dropout")])
def test_every_rank_has_the_same_bits(runs, prefix, n, case):
    ranks = _ranks(runs, prefix, case, n)
    for other in ranks[1:]:
        for key in ("weights", "pred", "history", "evaluate"):
            assert np.array_equal(ranks[0][key], other[key]), (case, key)


@needs_mpi
@pytest.mark.parametrize("prefix,n,case", [("p2", 2, c) for c in CASES_2.split(",")]
                         + [("p3", 3, c) for c in CASES_3.split(",") if c != "bn"])
def test_matches_single_process_training(runs, prefix, n, case):
    """The same global batch on P processes: single-process weights, History and evaluate within float32
    rounding (Dropout included: each rank draws the whole global batch's numbers and keeps its rows')."""
    single = _load(runs / f"p1_{case}_rank0.npz")
    parallel = _ranks(runs, prefix, case, n)[0]
    scale = np.abs(single["weights"]).max()
    assert np.abs(parallel["weights"] - single["weights"]).max() <= 1e-5 * scale
    np.testing.assert_allclose(parallel["pred"], single["pred"], rtol=1e-4, atol=1e-5)
    h1, hp = json.loads(str(single["history"])), json.loads(str(parallel["history"]))
    assert h1.keys() == hp.keys()
    for key in h1:
        np.testing.assert_allclose(hp[key], h1[key], rtol=1e-5, atol=1e-6, err_msg=key)


@needs_mpi
def test_batch_normalization_uses_per_rank_statistics(runs):
    """Documented: each rank normalizes with its own rows' statistics (Keras, Horovod), so P ranks are not
    single-process training; they agree with each other (checked above) and still learn the same model."""
    single = _load(runs / "p1_bn_rank0.npz")
    parallel = _ranks(runs, "p3", "bn", 3)[0]
    assert not np.array_equal(parallel["weights"], single["weights"])
    assert np.abs(parallel["weights"] - single["weights"]).max() < 0.1 * np.abs(single["weights"]).max()


@needs_mpi
def test_only_rank_0_writes_and_shows_progress(tmp_path):
    done = _mpirun(2, HERE / "_misuse_script.py", "writes", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt.keras", "model_saved_by_rank0.keras", "weights_saved_by_rank0.weights.h5"]
    assert done.stdout.count("Epoch 1/2") == 1
    assert "rank 0: done" in done.stdout and "rank 1: done" in done.stdout


@needs_mpi
@pytest.mark.parametrize("case,words", [
    ("model", ["disagree on model", "rank 0: [('Dense', (None, 8))", "rank 1: [('Dense', (None, 9))"]),
    ("batch", ["global batch_size (1) must be at least the number of processes, 2"]),
    ("presharded", ["same number of steps", "rank 1: 137 rows / 10 per step = 14 steps"]),
])
def test_misuse_raises_the_same_clear_error_on_every_rank(tmp_path, case, words):
    done = _mpirun(2, HERE / "_misuse_script.py", case, tmp_path)
    for rank in (0, 1):
        line = next((s for s in done.stdout.splitlines() if s.startswith(f"rank {rank}: ERROR")), None)
        assert line is not None, done.stdout + done.stderr
        for w in words:
            assert w in line


@needs_mpi
@pytest.mark.parametrize("case,message", [
    ("hang", "rank 0 waited more than 3 s in fit's consistency check"),  # the timeout
    ("dies", ""),                                                          # mpirun ends the job
    ("raises", "a bug on rank 1 only"),                                    # the excepthook aborts it
])
def test_a_failed_rank_ends_the_job(tmp_path, case, message):
    done = _mpirun(2, HERE / "_misuse_script.py", case, tmp_path, timeout=40, check=False)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr


def test_without_mpi4py_a_distribution_is_a_clear_error_and_local_training_unchanged():
    code = """
import sys
sys.modules['mpi4py'] = None  # as if it were not installed
import numpy as np
import fastnn as keras
from fastnn import distribution
distribution.initialize()
assert (distribution.num_processes(), distribution.process_id()) == (1, 0)
m = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(1)])
m.compile(optimizer='sgd', loss='mse')
m.fit(np.ones((8, 3)), np.ones(8), verbose=0)
try:
    distribution.set_distribution(distribution.DataParallel())
except ImportError as exc:
    print(exc)
"""
    env = {k: v for k, v in _env().items() if not k.startswith(("OMPI_COMM", "PMI", "PMIX"))}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "needs mpi4py, which is not installed" in done.stdout and 'pip install "fastnn[mpi]"' in done.stdout

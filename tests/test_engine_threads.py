"""The engine's chooser (fastnn/_kernels/_engine_threads.py) on simulated timings: it measures every
candidate, follows the fastest, and spends at most ~1/PROBE_BUDGET of its time trying the others again,
however long their tries take."""
import pytest

from fastnn._kernels import _engine_threads as ET

IDLE = lambda team: False  # noqa: E731  (the load average of the machine running the tests plays no part)


def _run(chooser, team_rate, one_rate, calls, units=1, gemm_factor=1.0):
    """Drive `calls` calls of `units` units; the rates may be functions of the call index; the "gemm" kernel
    takes gemm_factor times as long."""
    spent = {1: 0.0, chooser.team: 0.0}
    for i in range(calls):
        (threads, kernel), probe = chooser.next()
        rate = (one_rate if threads == 1 else team_rate)
        rate = (rate(i) if callable(rate) else rate) * (gemm_factor if kernel == "gemm" else 1.0)
        chooser.record((threads, kernel), rate * units, units, probe)
        spent[threads] += rate * units
    return spent


def test_measures_both_then_keeps_the_faster_team():
    chooser = ET.Chooser(2, busy=IDLE)
    assert chooser.next() == ((1, "auto"), "try")
    chooser.record((1, "auto"), 1.0, 1, "try")
    assert chooser.next() == ((2, "auto"), "try")
    chooser.record((2, "auto"), 0.6, 1, "try")
    assert chooser.next() == ((2, "auto"), False)
    spent = _run(chooser, 0.6, 1.0, 100)
    assert spent[1] <= 1.0 * 100 / ET.PROBE_BUDGET + 1  # the odd try of one thread


def test_a_loaded_machine_costs_at_most_a_few_percent_of_probing():
    """A team 50x slower than one thread (a busy core makes each barrier wait): probes cost ~1/PROBE_BUDGET."""
    chooser = ET.Chooser(2, busy=IDLE)
    spent = _run(chooser, 50.0, 1.0, 20000)
    total = spent[1] + spent[2]
    assert total <= 1.0 * 20000 * (1 + 1.2 / ET.PROBE_BUDGET) + 50  # + the first try
    assert spent[2] > 0  # it does keep trying


def test_the_team_comes_back_when_the_load_goes():
    chooser = ET.Chooser(2, busy=IDLE)
    team = lambda i: 50.0 if i < 2000 else 0.6  # noqa: E731
    _run(chooser, team, 1.0, 3000)
    assert chooser.current == (2, "auto")


def test_one_thread_settings_never_probe():
    chooser = ET.Chooser(1, busy=IDLE)
    assert chooser.next() == ((1, "auto"), "try")
    chooser.record((1, "auto"), 1.0, 1, "try")
    for _ in range(5):
        assert chooser.next() == ((1, "auto"), False)
        chooser.record((1, "auto"), 1.0, 1)


@pytest.mark.parametrize("one, team, expect", [(1.0, 0.99, 1), (1.0, 0.9, 2)])
def test_the_team_must_win_by_a_margin(one, team, expect):
    chooser = ET.Chooser(2, busy=IDLE)
    _run(chooser, team, one, 10)
    assert chooser.current[0] == expect


def test_the_kernel_is_chosen_too():
    chooser = ET.Chooser(2, ("auto", "gemm"), busy=IDLE)
    _run(chooser, 0.6, 1.0, 200, gemm_factor=0.8)
    assert chooser.current == (2, "gemm")
    chooser = ET.Chooser(2, ("auto", "gemm"), busy=IDLE)
    _run(chooser, 0.6, 1.0, 200, gemm_factor=1.3)
    assert chooser.current == (2, "auto")


def test_a_busy_machine_defers_the_tries_of_the_team():
    busy = [True]
    chooser = ET.Chooser(2, busy=lambda team: busy[0])
    spent = _run(chooser, 50.0, 1.0, 1000)
    assert spent[2] == 0
    busy[0] = False
    _run(chooser, 0.6, 1.0, 100)
    assert chooser.current == (2, "auto")


def test_a_team_is_tried_with_the_kernel_that_won_on_one_thread():
    chooser = ET.Chooser(2, ("auto", "gemm"), busy=IDLE)
    tried = []
    for _ in range(3):
        candidate, probe = chooser.next()
        tried.append(candidate)
        chooser.record(candidate, {(1, "auto"): 1.0, (1, "gemm"): 0.8}.get(candidate, 0.5), 1, probe)
    assert tried == [(1, "auto"), (1, "gemm"), (2, "gemm")]


def test_a_try_that_starts_cold_is_timed_after_its_warm_up():
    """A team whose first step after one thread ran is slow (the other core's caches cold, its thread asleep)
    but whose next ones are fast: with warm-ups it is found and kept; each try is one warm call then one
    timed call, and the warm calls' time counts towards the probing budget."""
    def run(warm):
        chooser = ET.Chooser(2, busy=IDLE, warm=warm)
        last, spent, kinds = None, 0.0, []
        for _ in range(400):
            candidate, probe = chooser.next()
            kinds.append(probe)
            rate = 1.0 if candidate[0] == 1 else (3.0 if last != candidate else 0.5)
            chooser.record(candidate, rate, 1, probe)
            last, spent = candidate, spent + rate
        return chooser, spent, kinds

    cold, _, _ = run(False)
    assert cold.current == (1, "auto")  # timing the cold start alone keeps the slower one thread
    chooser, spent, kinds = run(True)
    assert chooser.current == (2, "auto")
    assert kinds[:4] == ["warm", "try", "warm", "try"]
    # a try of one thread costs its two calls and the team's cold call after it: ~5 units per budget
    assert spent <= 400 * 0.5 * (1 + 5 / ET.PROBE_BUDGET) + 10


def test_one_step_calls_are_judged_by_samples_not_single_calls():
    """Calls of ~70 us where one in 10 is interrupted (3x): the choice between two equal kernels of a team
    does not flip on single slow calls, and a try gathers MIN_SAMPLE seconds before it counts."""
    chooser = ET.Chooser(2, ("auto", "gemm"), busy=IDLE, warm=True)
    rates = {(1, "auto"): 130e-6, (1, "gemm"): 125e-6, (2, "auto"): 70e-6, (2, "gemm"): 90e-6}
    ran = []
    for i in range(20000):
        candidate, probe = chooser.next()
        seconds = rates[candidate] * (3.0 if i % 10 == 9 else 1.0)
        chooser.record(candidate, seconds, 1, probe)
        ran.append(candidate)
    assert chooser.current == (2, "auto")
    assert ran[5000:].count((2, "auto")) >= 0.9 * 15000
    assert chooser.latest[(2, "gemm")] > chooser.latest[(2, "auto")]


def test_a_team_that_slows_down_is_left_within_a_sample():
    chooser = ET.Chooser(2, busy=IDLE, min_sample=0.002, run_sample=0.01)
    _run(chooser, 0.0001, 0.0002, 200)
    assert chooser.current == (2, "auto")
    _run(chooser, 0.005, 0.0002, 3)  # a neighbour takes a core: 50x slower team steps
    assert chooser.current == (1, "auto")


def test_others_load_takes_this_process_out(monkeypatch):
    """Other processes' cores = (busy CPU seconds of the machine - this process's own) / wall seconds, over
    at least MIN_INTERVAL; this process's own busy thread does not count (the load average counted it)."""
    samples = iter([(0.0, 100.0, 10.0), (1.0, 101.0, 11.0), (2.0, 103.4, 12.0)])
    clock = iter([0.05, 1.0, 2.0, 2.01])
    monkeypatch.setattr(ET.OthersLoad, "_sample", staticmethod(lambda: next(samples)))
    monkeypatch.setattr(ET.time, "monotonic", lambda: next(clock))
    load = ET.OthersLoad()
    assert load() == 0.0            # 50 ms: too short to judge, the last verdict (none yet) stands
    assert load() == pytest.approx(0.0)   # 1 s: the machine's 1 busy core was this process
    assert load() == pytest.approx(1.4)   # another process used 1.4 cores
    assert load() == pytest.approx(1.4)   # 10 ms later: the same verdict, /proc/stat not read again
    monkeypatch.setattr(ET.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(ET, "others_load", lambda: 1.4)
    assert ET.machine_busy(2)       # a team of 2 on 2 cores: more than half a core taken
    assert not ET.machine_busy(1)   # (one thread leaves a core; 1.4 < 1 + 0.5)
    monkeypatch.setattr(ET, "others_load", lambda: 0.3)
    assert not ET.machine_busy(2)

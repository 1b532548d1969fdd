"""The engine's thread chooser (fastnn/_kernels/_engine_threads.py) on simulated timings: it measures both
candidates, follows the faster, and while one thread wins spends at most 1/PROBE_BUDGET of its time trying
the team again, however long the team's tries take."""
import pytest

from fastnn._kernels import _engine_threads as ET


def _run(chooser, team_rate, one_rate, calls, units=1):
    """Drive `calls` calls of `units` units; the rates may be functions of the call index."""
    spent = {1: 0.0, chooser.team: 0.0}
    for i in range(calls):
        threads, _ = chooser.next()
        rate = (one_rate if threads == 1 else team_rate)
        rate = rate(i) if callable(rate) else rate
        chooser.record(threads, rate * units, units)
        spent[threads] += rate * units
    return spent


def test_measures_both_then_keeps_the_faster_team():
    chooser = ET.ThreadChooser(2)
    assert chooser.next() == (1, True)
    chooser.record(1, 1.0, 1)
    assert chooser.next() == (2, True)
    chooser.record(2, 0.6, 1)
    assert chooser.next() == (2, False)
    spent = _run(chooser, 0.6, 1.0, 100)
    assert spent[1] == 0


def test_a_loaded_machine_costs_at_most_a_few_percent_of_probing():
    """A team 50x slower than one thread (a busy core makes each barrier wait): probes cost ~1/PROBE_BUDGET."""
    chooser = ET.ThreadChooser(2)
    spent = _run(chooser, 50.0, 1.0, 20000)
    total = spent[1] + spent[2]
    assert total <= 1.0 * 20000 * (1 + 1.2 / ET.PROBE_BUDGET) + 50  # + the first try
    assert spent[2] > 0  # it does keep trying


def test_the_team_comes_back_when_the_load_goes():
    chooser = ET.ThreadChooser(2)
    team = lambda i: 50.0 if i < 2000 else 0.6  # noqa: E731
    _run(chooser, team, 1.0, 3000)
    assert chooser.next() == (2, False)


def test_one_thread_settings_never_probe():
    chooser = ET.ThreadChooser(1)
    for _ in range(5):
        assert chooser.next() == (1, False)
        chooser.record(1, 1.0, 1)


@pytest.mark.parametrize("one, team, expect", [(1.0, 0.99, 1), (1.0, 0.9, 2)])
def test_the_team_must_win_by_a_margin(one, team, expect):
    chooser = ET.ThreadChooser(2)
    _run(chooser, team, one, 10)
    assert chooser.next()[0] == expect

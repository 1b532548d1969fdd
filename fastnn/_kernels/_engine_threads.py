"""How many threads an engine call runs on: chosen by measuring, per engine and per kind of call.

The engine's results do not depend on its thread count (tested bitwise), so the choice changes speed
only, and it is made by timing the candidates on the work itself rather than by a size threshold tuned
on one CPU:

* the first calls (or the first pieces of a long call) run once on one thread and once on the team;
* afterwards each call runs on whichever was faster per unit of work (a step, or a row at inference),
  comparing one thread's best with the team's latest rate: a team whose threads share their cores with
  another busy process waits at every barrier (2-60x slower steps were measured), while one thread
  does not;
* while on one thread, the team is tried again only once the time spent since its last try is
  PROBE_BUDGET times what that try cost, so a loaded machine loses at most ~1/PROBE_BUDGET of its
  time to probing, on long fits and on loops of one-step calls alike.
"""
import time

PROBE_BUDGET = 20.0      # time on one thread between two tries of the team, in units of the last try's cost
MARGIN = 0.97            # the team must beat one thread's best by 3% to be chosen
PIECE_STEPS = 128        # a long training call runs in timed pieces of this many steps
PROBE_STEPS = 8          # ... and tries the other candidate on pieces this short


class ThreadChooser:
    """Chooses between one thread and a team of `team` threads for one kind of call."""

    def __init__(self, team):
        self.team = max(1, int(team))
        self.best = {}        # candidate -> best seconds per unit seen
        self.latest = {}      # candidate -> seconds per unit of its latest run
        self.on_one = False   # the team lost its latest comparison
        self.since_probe = 0.0
        self.probe_cost = 0.0

    def next(self):
        """(threads, is_probe) for the next call or piece."""
        if self.team == 1:
            return 1, False
        if 1 not in self.best:
            return 1, True
        if self.team not in self.best:
            return self.team, True
        if self.on_one and self.since_probe >= PROBE_BUDGET * self.probe_cost:
            return self.team, True
        return (1 if self.on_one else self.team), False

    def record(self, threads, seconds, units):
        if units <= 0 or self.team == 1:
            return
        rate = seconds / units
        self.latest[threads] = rate
        self.best[threads] = min(rate, self.best.get(threads, rate))
        if threads == 1:
            self.since_probe += seconds
        else:
            self.probe_cost = seconds
            self.since_probe = 0.0
        if 1 in self.best and self.team in self.latest:
            self.on_one = not self.latest[self.team] < MARGIN * self.best[1]


def timed(fn, *args):
    """(result, seconds) of fn(*args)."""
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0

"""How an engine call runs: its thread count and its first layer's kernels, chosen by measuring.

The engine gives the same bits on any number of threads and with either first-layer kernel (bitmaps of the
non-zeros, or the GEMM), so these choices change speed only, and they are made by timing the candidates on
the work itself rather than by thresholds tuned on one CPU:

* a candidate's rate (seconds per unit of work: a step, or a row at inference) is a sample of at least
  MIN_SAMPLE seconds of its runs (a try) or RUN_SAMPLE (the running candidate), so that one-step calls
  (train_on_batch loops) are not judged by a single interrupted call (single calls of 70-80 us made the
  choice flip between kernels, 30% slower overall);
* the first calls (or the first pieces of a long call) try each candidate; a try of a training candidate
  starts with WARM_STEPS untimed steps, so that what is timed is the candidate running, not its start (the
  other core's caches cold, its thread asleep: a 2-step try of a team that then ran 70 us steps measured
  150-175 us, and one thread at 137 us kept the work);
* afterwards each call runs the candidate with the best rate; the running candidate is re-measured all
  the time, so when it slows down -- a team whose threads share their cores with another busy process waits
  at every barrier (2-60x slower steps were measured) -- another takes over within RUN_SAMPLE;
* the other candidates are tried again only once the time spent since the last try is PROBE_BUDGET times
  what that try cost, so probing costs at most ~1/PROBE_BUDGET of the time, on long fits and on loops of
  one-step calls alike, even on a loaded machine.
"""
import os
import time

PROBE_BUDGET = 20.0      # time between two tries of another candidate, in units of the last try's cost
MARGIN = 0.97            # a candidate with more threads must beat one with fewer by 3%
PIECE_STEPS = 128        # a long training call runs in timed pieces of this many steps
PROBE_STEPS = 8          # ... and tries another candidate on pieces this short (a team: TEAM_PROBE_STEPS)
TEAM_PROBE_STEPS = 2     # (on a loaded machine a team's step can take 50x one thread's: keep its tries short)
WARM_STEPS = 1           # untimed steps before a training try (its own call when calls are one step long)
MIN_SAMPLE = 0.002       # seconds of runs behind a try's rate
RUN_SAMPLE = 0.01        # ... and behind each re-measurement of the running candidate (one noisy 2 ms sample
                         # of it sent a fit to a slower candidate until that one's next try)


def _proc_stat_busy():
    """CPU seconds all processes have used since boot (/proc/stat: user to steal), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / _TICKS


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class OthersLoad:
    """How many cores other processes keep busy: /proc/stat's busy time minus this process's own CPU time,
    over at least MIN_INTERVAL seconds (the first interval starts when this module is imported). The load
    average cannot tell: it counts this process's own thread, and for a minute the processes that just
    ended (a 2-core machine read 1.5 right after another benchmark, and the team was never tried)."""

    MIN_INTERVAL = 0.1

    def __init__(self):
        self.ref = self._sample()
        self.cores = 0.0

    @staticmethod
    def _sample():
        return time.monotonic(), _proc_stat_busy(), time.process_time()

    def __call__(self):
        if time.monotonic() - self.ref[0] < self.MIN_INTERVAL:
            return self.cores  # (reading /proc/stat costs ~30 us: a loop of one-step calls asks every call)
        now = self._sample()
        if now[1] is None or self.ref[1] is None:
            return 0.0
        self.cores = max(0.0, ((now[1] - self.ref[1]) - (now[2] - self.ref[2])) / (now[0] - self.ref[0]))
        self.ref = now
        return self.cores


others_load = OthersLoad()


def machine_busy(team):
    """Whether other processes keep the cores a team would need busy: they use more than the cores the team
    leaves free plus half a core. A hint that defers tries of the team; the timings decide. False where
    /proc/stat is not there."""
    return others_load() > max(0, (os.cpu_count() or team) - team) + 0.5


class Chooser:
    """Chooses among candidates (threads, first-layer kernel) for one kind of call."""

    def __init__(self, team, kernels=("auto",), busy=machine_busy, warm=False, min_sample=MIN_SAMPLE,
                 run_sample=RUN_SAMPLE):
        self.team = max(1, int(team))
        self.busy = busy
        self.warm = warm        # tries start with an untimed warm-up (training calls)
        self.min_sample = min_sample
        self.run_sample = run_sample
        threads = (1, self.team) if self.team > 1 else (1,)
        self.candidates = [(t, k) for t in threads for k in kernels]
        self.latest = {}        # candidate -> seconds per unit of its latest sample
        self.current = None
        self.trying = None      # the candidate being tried (its warm-up done, or its sample under way)
        self.sample = [None, 0.0, 0]  # candidate, seconds, units of the sample being gathered
        self.since_probe = 0.0  # seconds run since the last try of another candidate
        self.probe_cost = 0.0
        self.turn = 0           # which other candidate the next try is for

    def _better(self, a, b):
        """Whether candidate a is better than b by their latest rates (more threads must win by MARGIN)."""
        ra, rb = self.latest[a], self.latest[b]
        return ra < (MARGIN * rb if a[0] > b[0] else rb / MARGIN if a[0] < b[0] else rb)

    def _eligible(self, c):
        """While one thread runs, a team is tried only with the kernel that wins there, and not while the
        machine is busy (self.busy); once a team runs, every candidate is."""
        if c[0] == 1 or self.current is None or self.current[0] > 1:
            return True
        return c[1] == self.current[1] and not self.busy(self.team)

    def next(self):
        """(candidate, probe) for the next call or piece: probe is False (a run of the chosen candidate),
        "warm" (the untimed start of a try) or "try" (a timed try)."""
        if self.trying is not None:
            return self.trying, "try"
        untried = [c for c in self.candidates if c not in self.latest and self._eligible(c)]
        if untried:
            return self._start(untried[0])
        if len(self.candidates) > 1 and self.since_probe >= PROBE_BUDGET * self.probe_cost:
            others = [c for c in self.candidates if c != self.current and self._eligible(c)]
            if others:
                self.turn = (self.turn + 1) % len(others)
                return self._start(others[self.turn])
            self.since_probe = 0.0  # (nothing to try now: wait another budget)
        return self.current, False

    def _start(self, candidate):
        self.probe_cost = 0.0
        self.trying = candidate
        self.sample = [candidate, 0.0, 0]
        return candidate, ("warm" if self.warm else "try")

    def record(self, candidate, seconds, units, probe=False):
        if units <= 0:
            return
        if probe:
            self.probe_cost += seconds
            self.since_probe = 0.0
            if probe == "warm":  # its rate is not the candidate's
                return
        else:
            self.since_probe += seconds
        if self.sample[0] != candidate:
            self.sample = [candidate, 0.0, 0]
        self.sample[1] += seconds
        self.sample[2] += units
        if self.sample[1] < (self.min_sample if probe else self.run_sample):
            return
        self.latest[candidate] = self.sample[1] / self.sample[2]
        self.sample = [candidate, 0.0, 0]
        if probe:
            self.trying = None
        best = None
        for c in self.candidates:
            if c in self.latest and (best is None or self._better(c, best)):
                best = c
        self.current = best


def timed(fn, *args):
    """(result, seconds) of fn(*args)."""
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0

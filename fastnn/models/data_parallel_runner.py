"""fit / evaluate / predict over the processes of a ``DataParallel`` distribution (issue 16).

It drives the model's ``Runner`` (the same engines) on this rank's rows and adds the communication
(``fastnn.distribution.collectives``):

* **training**: each global batch of B rows is cut into contiguous shares (``distribution.sharding``).
  A rank's engine computes the gradient of the mean loss over its n_r rows; the gradient hook, between the
  gradients and the update, scales it by n_r / B and sums it over the ranks in rank order, so every rank
  applies the gradient of the mean over the global batch -- the single-process gradient up to float32
  rounding -- and the same update: the weights stay the same bits on every rank. Sample weights follow
  (Keras' loss is sum(w * loss) / B), the regularization penalty's gradient is added once, by the update
  after the hook. BatchNormalization normalizes with each rank's batch statistics (as Keras and Horovod
  do); its moving statistics are averaged in the same reduction (weighted by share), so they too are the
  same on every rank.
* **Dropout**: every rank draws the uniforms of the whole global batch, exactly as one process would, and
  keeps its rows', so P ranks drop what one process drops.
* **loss, metrics**: the engine's sums of each rank are added in rank order; the metrics that are Python
  code (Precision, AUC...) are updated on every rank with every rank's outputs, in global batch order.
* **evaluate / predict**: each rank takes its contiguous share of the rows; sums, and predictions, are
  gathered on every rank.

It lives in ``fastnn.models`` because it drives a ``Runner``: ``fastnn.distribution`` knows nothing of
models, and imports go one way.
"""
import numpy as np

from fastnn.distribution.consistency import check_agree
from fastnn.distribution.distribution_lib import active_data_parallel
from fastnn.distribution.sharding import Layout, offset, share
from fastnn.models.runner import _UNIFORMS_PER_CALL, _engine_x, _kernel_metrics, _outputs, _python_metrics


NOT_DATA_PARALLEL = ("train_on_batch is not data-parallel: under a DataParallel distribution each rank would "
                     "update its own weights and the ranks would drift apart. Use fit(), whose batch_size is the "
                     "global batch, or set_distribution(None) first.")


def data_parallel_runner(runner):
    """A DataParallelRunner driving ``runner`` when a DataParallel distribution spans several processes; None
    when training is local."""
    dp = active_data_parallel()
    return None if dp is None else DataParallelRunner(runner, dp)


class DataParallelRunner:
    def __init__(self, runner, dp):
        self.runner = runner
        self.model = runner.model
        self.dp = dp
        self.coll = dp.collectives
        self.rank, self.size = self.coll.rank, self.coll.size
        self.layout = None
        self._send = None

    # ------------------------------------------------------------------ training
    def begin_fit(self, train, val, batch_size, epochs, initial_epoch, shuffle, validation_freq):
        """At the start of every fit: check that the ranks agree, give them rank 0's weights, optimizer
        state and random generators, and cut the epochs into shares; (global batch, steps per epoch)."""
        auto = self.dp.auto_shard_dataset
        fields = fit_fields(self.model, train, val, batch_size, epochs, initial_epoch, shuffle, validation_freq,
                            auto)
        rows = check_agree(self.coll, "fit", fields, local=train.n)
        total = train.n if auto else sum(rows)
        batch_size = min(batch_size, total)  # as Keras: a batch larger than the data is the data
        if batch_size < self.size:
            raise ValueError(f"fit under DataParallel: the global batch_size ({batch_size}"
                             f"{', the number of samples' if batch_size == total else ''}) must be at least the "
                             f"number of processes, {self.size}, so that every rank gets rows. Pass a larger "
                             "batch_size (it is the global batch: each rank takes batch_size / P rows per step).")
        self.layout = Layout.auto_shard(total, batch_size, self.size) if auto else Layout.pre_sharded(rows, batch_size)
        broadcast_state(self.coll, self.model)
        return batch_size, self.layout.steps

    def epoch_order(self, n, batch_size, shuffle, rng, local_order):
        """The epoch's order of this rank's rows: the global one (the same generator state on every rank
        draws the same shuffle); pre-sharded data are shuffled per rank, by a generator seeded from one
        number drawn the same way on every rank (so that the shared generator stays the same everywhere)."""
        if self.dp.auto_shard_dataset:
            return local_order(n, batch_size, shuffle, rng)
        if not shuffle:
            return np.arange(n, dtype=np.intp)
        seed = int(rng.integers(2**63))
        return np.random.default_rng([seed, self.rank]).permutation(n).astype(np.intp)

    def train(self, data, order, first, steps, batch_size):
        """Global steps ``[first, first + steps)`` of the epoch ``order``; (global loss sum, global rows).
        ``batch_size`` is the global batch (the layout's)."""
        model, layout, rank = self.model, self.layout, self.rank
        runner = self.runner
        engine, dropouts = runner.engine(layout.engine_batch(rank))
        custom = runner._custom
        width = layout.batch_size * sum(int(np.prod(layer.input_shape[1:])) for layer in dropouts)
        per_call = max(1, _UNIFORMS_PER_CALL // width) if width else steps
        python_metrics = _python_metrics(model, data)
        kernel_metrics = _kernel_metrics(model)
        sw = data.sample_weight
        x = _engine_x(data.x, model)
        opt = model.optimizer
        stats = np.zeros(2 + 2 * len(kernel_metrics))  # loss sum, rows, metric sums, metric counts
        captured = []  # (global step, capture rows, picked rows) for the Python metrics
        for start in range(first, first + steps, per_call):
            k = min(per_call, first + steps - start)
            rows, positions = self._rows(order, start, k)
            ghost = start + k == layout.steps and layout.rows(rank, layout.steps - 1) == 0
            uniforms = None
            if width:
                total = sum(layout.global_rows(t) for t in range(start, start + k))
                drawn = runner._draw(dropouts, start, k, layout.batch_size, total)
                # (a borrowed row takes any row's numbers: its results are dropped)
                picks = np.concatenate([positions, [total - 1]]) if ghost else positions
                uniforms = [np.ascontiguousarray(u[picks]) for u in drawn]
            real = k - 1 if ghost else k
            if real:
                n_real = rows.shape[0] - (1 if ghost else 0)
                capture = np.empty((n_real, _outputs(engine)), model._params.dtype) if python_metrics else None
                l_sum, m_sums, n_seen = self._steps(engine, x, data, rows[:n_real], start, real, custom,
                                                    None if uniforms is None else [u[:n_real] for u in uniforms],
                                                    capture)
                done = rows[:n_seen]
                stats[0] += l_sum
                stats[1] += n_seen
                for j, ((metric, weighted), m_sum) in enumerate(zip(kernel_metrics, m_sums)):
                    stats[2 + j] += m_sum
                    stats[2 + len(kernel_metrics) + j] += sw[done].sum() if weighted and sw is not None else n_seen
                if python_metrics:
                    captured.append((capture, rows[:n_real]))
            if ghost:
                # This rank has no rows in the epoch's last global batch (shorter than P rows): it runs the
                # step on one borrowed row, whose gradient the hook replaces by zeros and whose loss and
                # metrics are dropped, so that it takes part in the reduction and applies the same update.
                self._steps(engine, x, data, rows[-1:], start + k - 1, 1, custom,
                            None if uniforms is None else [u[-1:] for u in uniforms], None, ghost=True)
        total = self.coll.sum_rows(stats, "the loss and metric sums")
        for j, (metric, _) in enumerate(kernel_metrics):
            metric.add_sums(total[2 + j], total[2 + len(kernel_metrics) + j])
        if python_metrics:
            self._update_python_metrics(python_metrics, data, captured, first, steps)
        return float(total[0]), int(round(total[1]))

    def _rows(self, order, start, k):
        """This rank's rows of global steps [start, start + k) (row ids of its data), plus one borrowed row
        when its share of the epoch's last batch is empty; and their positions among the steps' rows."""
        layout, rank = self.layout, self.rank
        positions = layout.positions(rank, start, k)
        if self.dp.auto_shard_dataset:
            rows = order[start * layout.batch_size + positions]
            if start + k == layout.steps and layout.rows(rank, layout.steps - 1) == 0:
                rows = np.concatenate([rows, order[(layout.steps - 1) * layout.batch_size:][:1]])
        else:
            rows = order[layout.local_rows(rank, start, k)]
        return np.ascontiguousarray(rows, dtype=np.intp), positions

    def _steps(self, engine, x, data, rows, start, k, custom, uniforms, capture, ghost=False):
        """``k`` steps on this rank's ``rows`` (global steps from ``start``), the reduction in the hook."""
        opt = self.model.optimizer
        applied = engine.steps_applied
        try:
            return engine.train_steps(x, data.y, rows, 0, k, opt.iterations, opt.learning_rate,
                                      sample_weight=data.sample_weight, uniforms=uniforms, capture=capture,
                                      grad_hook=self._hook(engine, start, custom, ghost))
        finally:
            opt.iterations += engine.steps_applied - applied

    def _hook(self, engine, start, custom, ghost):
        """The gradient hook of an engine call from global step ``start``: this rank's gradient (and the
        moving statistics of its BatchNormalization layers) times its share of the global batch, summed over
        the ranks in rank order; then the custom regularizers, once."""
        model, layout, rank = self.model, self.layout, self.rank
        grads, params = model._grads, model._params
        moving = _moving_slices(engine.plan)
        n = grads.shape[0]
        size = n + sum(s.stop - s.start for s in moving)
        if self._send is None or self._send.shape[0] != size or self._send.dtype != grads.dtype:
            self._send = np.empty(size, grads.dtype)
        send = self._send

        def hook(step):
            t = start + step
            scale = 0.0 if ghost else layout.rows(rank, t) / layout.global_rows(t)
            # Frozen layers' parts of the gradient arena hold whatever was there: never used, but they
            # may overflow when scaled.
            with np.errstate(all="ignore"):
                np.multiply(grads, grads.dtype.type(scale), out=send[:n])
                at = n
                for s in moving:
                    np.multiply(params[s], params.dtype.type(scale), out=send[at:at + s.stop - s.start])
                    at += s.stop - s.start
                if ghost:
                    send[:] = 0
                self.coll.allreduce_sum(send, send)
            grads[:] = send[:n]
            at = n
            for s in moving:
                params[s] = send[at:at + s.stop - s.start]
                at += s.stop - s.start
            return sum(reg.backward(weight.value, weight.grad) for weight, reg in custom) if custom else 0.0
        return hook

    def _update_python_metrics(self, python_metrics, data, captured, first, steps):
        """Every rank's captured outputs, with their targets and weights, fed to the Python metrics on every
        rank in global batch order (as one process feeds them)."""
        layout = self.layout
        mine = [(c, [t[r] for _, t, _ in python_metrics], None if data.sample_weight is None
                 else data.sample_weight[r]) for c, r in captured]
        parts = self.coll.allgather(mine, "the metric outputs")
        per_rank = []
        for rank_parts in parts:
            if not rank_parts:
                per_rank.append(None)
                continue
            per_rank.append((np.concatenate([p[0] for p in rank_parts]),
                             [np.concatenate([p[1][i] for p in rank_parts]) for i in range(len(python_metrics))],
                             None if rank_parts[0][2] is None else np.concatenate([p[2] for p in rank_parts])))
        cursor = [0] * self.size
        for t in range(first, first + steps):
            pieces = []
            for r in range(self.size):
                n = layout.rows(r, t)
                if n and per_rank[r] is not None:
                    pieces.append((r, cursor[r], cursor[r] + n))
                    cursor[r] += n
            out = np.concatenate([per_rank[r][0][a:b] for r, a, b in pieces])
            for i, (metric, _, weighted) in enumerate(python_metrics):
                targets = np.concatenate([per_rank[r][1][i][a:b] for r, a, b in pieces])
                weights = None
                if weighted and per_rank[0][2] is not None:
                    weights = np.concatenate([per_rank[r][2][a:b] for r, a, b in pieces])
                metric.update_batch(out, targets, weights)

    # ------------------------------------------------------------------ inference
    def _my_rows(self, n):
        if not self.dp.auto_shard_dataset:
            return 0, n
        lo = offset(n, self.size, self.rank)
        return lo, lo + share(n, self.size, self.rank)

    def evaluate(self, data):
        """The mean loss (with the regularization penalty) over every rank's rows; updates the metrics."""
        model = self.model
        lo, hi = self._my_rows(data.n)
        kernel_metrics = _kernel_metrics(model)
        python_metrics = _python_metrics(model, data)
        stats = np.zeros(2 + 2 * len(kernel_metrics))
        sw = None if data.sample_weight is None else data.sample_weight[lo:hi]
        capture = None
        if hi > lo:
            engine = self.runner.any_engine(hi - lo)
            x = _engine_x(data.x[lo:hi], model)
            capture = np.empty((hi - lo, _outputs(engine)), model._params.dtype) if python_metrics else None
            loss_sum, m_sums = engine.evaluate(x, data.y[lo:hi], sample_weight=sw, capture=capture)
            stats[0], stats[1] = loss_sum, hi - lo
            for j, ((_, weighted), m_sum) in enumerate(zip(kernel_metrics, m_sums)):
                stats[2 + j] = m_sum
                stats[2 + len(kernel_metrics) + j] = sw.sum() if weighted and sw is not None else hi - lo
        total = self.coll.sum_rows(stats, "the evaluation sums")
        for j, (metric, _) in enumerate(kernel_metrics):
            metric.add_sums(total[2 + j], total[2 + len(kernel_metrics) + j])
        if python_metrics:
            mine = None if capture is None else (capture, [t[lo:hi] for _, t, _ in python_metrics], sw)
            parts = [p for p in self.coll.allgather(mine, "the evaluation outputs") if p is not None]
            out = np.concatenate([p[0] for p in parts])
            for i, (metric, _, weighted) in enumerate(python_metrics):
                weights = np.concatenate([p[2] for p in parts]) if weighted and parts[0][2] is not None else None
                metric.update_batch(out, np.concatenate([p[1][i] for p in parts]), weights)
        return total[0] / total[1] + model._regularization()

    def predict(self, x):
        """Every row's outputs on every rank (each rank computes its share). With
        ``auto_shard_dataset=False`` each rank predicts its own rows only, without communication."""
        if not self.dp.auto_shard_dataset:
            return self.runner.predict(x)
        lo, hi = self._my_rows(x.shape[0])
        shape = tuple(self.model.output_shape[1:])
        mine = self.runner.predict(x[lo:hi]) if hi > lo else np.empty((0,) + shape, self.model._params.dtype)
        return np.concatenate(self.coll.allgather(mine, "the predictions"))


def _moving_slices(plan):
    """The arena ranges of the moving statistics of the trained BatchNormalization ops."""
    slices = []
    for op in plan["ops"]:
        if op[0] == "bn" and op[9]:
            channels = op[2]
            slices += [slice(op[5], op[5] + channels), slice(op[6], op[6] + channels)]
    return slices


def fit_fields(model, train, val, batch_size, epochs, initial_epoch, shuffle, validation_freq, auto_shard):
    """What every rank's fit must agree on (``distribution.consistency.check_agree``)."""
    opt = model.optimizer
    fields = {
        "model": [(type(layer).__name__, tuple(layer.output_shape or ())) for layer in model._layers],
        "parameters": (int(model._params.shape[0]), str(model._params.dtype)),
        "trainable": (model.trainable, tuple(layer.trainable for layer in model._layers)),
        "optimizer": (type(opt).__name__, tuple(sorted((k, repr(v)) for k, v in opt.hyper().items()))),
        "loss": model.loss.name, "metrics": [m.name for m in model._compiled_metrics],
        "batch_size": batch_size, "epochs": epochs, "initial_epoch": initial_epoch, "shuffle": shuffle,
        "validation": None if val is None else (tuple(val.x.shape[1:]), tuple(val.y.shape[1:]),
                                                val.sample_weight is not None, validation_freq),
        "x": (tuple(train.x.shape[1:]), type(train.x).__name__), "y": tuple(train.y.shape[1:]),
        "sample_weight": train.sample_weight is not None,
    }
    if auto_shard:
        fields["rows"] = train.n
        fields["validation rows"] = None if val is None else val.n
    return fields


def broadcast_state(coll, model):
    """Rank 0's weights, optimizer state and random generators on every rank: the ranks start from the same
    model (each built its own, with its own random initial weights) and draw the same shuffles and dropout
    masks."""
    from fastnn.utils.rng_utils import global_rng

    opt = model.optimizer
    opt.build(model._params.shape[0], model._params.dtype)
    coll.bcast_array(model._params, "the initial weights' broadcast")
    for slot in opt.slots or ():
        if slot is not None:
            coll.bcast_array(slot, "the optimizer state's broadcast")
    generators = [global_rng()] + [layer._rng for layer in model._layers if getattr(layer, "_rng", None) is not None]
    states = coll.bcast((opt.iterations, [g.bit_generator.state for g in generators]), "the random state's broadcast")
    opt.iterations = states[0]
    for g, state in zip(generators, states[1]):
        g.bit_generator.state = state

"""The one path a compiled model's batches take: the training engine (``fastnn._kernels.Engine``, compiled, or
its NumPy twin with ``FASTNN_KERNELS=reference``), for fit, evaluate, predict, the *_on_batch methods and
model(x). The trainer keeps Keras' semantics (callbacks, history, validation); this module turns a call into
engine calls: it builds and caches the engine, draws Dropout's random numbers, and feeds the metrics that are
Python code (Precision, AUC, custom Metric subclasses) with the outputs the engine captures. A metric of
compile's ``weighted_metrics`` gets the batch's sample weights: the engine sums its per-row values times
them (the plan marks it weighted), and this module adds the weights' sum as its count.
"""
import numpy as np

from fastnn import _kernels as K
from fastnn.models.engine_plan import build_plan, plan_key
from fastnn.utils.sparse_utils import is_sparse

# Dropout's uniforms drawn for one engine call, at most (numbers): 4 MB stay in L3 between drawing and use,
# where a whole epoch's (MNIST: 24 MB) would go through DRAM twice.
_UNIFORMS_PER_CALL = 1 << 20
_ENGINES_KEPT = 3  # engines (one per batch size) a model keeps: fit's, evaluate's, model(x, training=True)'s


class Runner:
    def __init__(self, model):
        self.model = model
        self._engines = {}   # batch_size -> (key, engine, dropout layers)
        self._uniforms = None
        self._custom = []    # (weight, regularizer) pairs the engine's gradient hook applies
        self.engine_class = None  # None: fastnn._kernels.Engine (tests set the NumPy twin here)

    def invalidate(self):
        self._engines = {}

    # ------------------------------------------------------------------ engines
    def _signature(self, batch_size):
        """What the plan depends on that changes between calls without a compile: a cheap check before the
        plan is rebuilt (a layer's other settings are read at compile and the first fit, as in Keras)."""
        model = self.model
        opt = model.optimizer
        return (batch_size, id(model._params), model.trainable,
                tuple(layer.trainable for layer in model._layers), id(model.loss),
                tuple(id(m) for m in model._compiled_metrics), tuple(model._metric_weighted), id(opt),
                None if opt is None else (tuple(opt.engine_hyper(model).values()), id(opt.slots)), self.engine_class)

    def engine(self, batch_size):
        """(engine, dropout layers) for batches of at most `batch_size` rows, rebuilt when the model, its
        trainable flags, loss, metrics or optimizer changed since the last call."""
        signature = self._signature(batch_size)
        kept = self._engines.get(batch_size)
        if kept is not None and kept[4] == signature:
            self._custom = kept[3]
            return kept[1], kept[2]
        model = self.model
        opt = model.optimizer
        slots = (None, None, None)
        if opt is not None:  # (an uncompiled model predicts with a plan that never trains)
            opt.claim(model, "fit")
            opt.build(model._params.shape[0], model._params.dtype)
            slots = opt.engine_slots()
        plan, dropouts, custom = build_plan(model, model.loss, model._compiled_metrics, opt,
                                            weighted=model._metric_weighted)
        key = (plan_key(plan), id(model._params), tuple(id(s) for s in slots), id(opt), self.engine_class)
        kept = self._engines.get(batch_size)
        if kept is None or kept[0] != key:
            if len(self._engines) >= _ENGINES_KEPT:
                self._engines.pop(next(iter(self._engines)))
            engine = (self.engine_class or K.Engine)(plan, model._params, model._grads, slots, batch_size)
            kept = (key, engine, dropouts)
        self._engines[batch_size] = kept[:3] + (custom, self._signature(batch_size))
        self._custom = custom
        return kept[1], kept[2]

    def any_engine(self, rows):
        """An engine for inference: the last one built (its batch size only sizes its buffers), or a new
        one."""
        if self._engines:
            batch_size = next(reversed(self._engines))
            engine, _ = self.engine(batch_size)
            return engine
        return self.engine(max(1, min(rows, 32)))[0]

    # ------------------------------------------------------------------ training
    def train(self, data, order, first, steps, batch_size):
        """`steps` optimizer steps from batch `first` of `order`; (loss sum, rows). Updates the metrics."""
        model = self.model
        engine, dropouts = self.engine(batch_size)
        width = batch_size * sum(int(np.prod(layer.input_shape[1:])) for layer in dropouts)
        per_call = max(1, _UNIFORMS_PER_CALL // width) if width else steps
        python_metrics = _python_metrics(model, data)
        kernel_metrics = _kernel_metrics(model)
        sw = data.sample_weight
        x = _engine_x(data.x, model)
        opt = model.optimizer
        loss_sum, seen = 0.0, 0
        for start in range(first, first + steps, per_call):
            k = min(per_call, first + steps - start)
            rows = min((start + k) * batch_size, order.shape[0]) - start * batch_size
            uniforms = self._draw(dropouts, start, k, batch_size, rows) if width else None
            capture = np.empty((rows, _outputs(engine)), model._params.dtype) if python_metrics else None
            applied = engine.steps_applied
            try:
                l_sum, m_sums, n_seen = engine.train_steps(
                    x, data.y, order, start, k, opt._iterations, _rates(opt, k), sample_weight=data.sample_weight,
                    uniforms=uniforms, capture=capture, grad_hook=self._hook())
            finally:  # exact after an interrupted call too: the steps applied (a counter the kernels advance)
                opt._iterations += engine.steps_applied - applied
            done = order[start * batch_size:start * batch_size + n_seen]
            for (metric, weighted), m_sum in zip(kernel_metrics, m_sums):
                # a weighted metric's engine sum is sum(w * value): its count is the weights' sum
                metric.add_sums(m_sum, sw[done].sum() if weighted and sw is not None else n_seen)
            for metric, targets, weighted in python_metrics:
                weights = sw if weighted else None
                if metric.rows_additive:  # sums over rows: all the call's rows at once give the same state
                    picked = order[start * batch_size:start * batch_size + rows]
                    metric.update_batch(capture, targets[picked], None if weights is None else weights[picked])
                    continue
                for s in range(k):  # batch by batch, as Keras updates them
                    r0, r1 = s * batch_size, min((s + 1) * batch_size, rows)
                    picked = order[start * batch_size + r0:start * batch_size + r1]
                    metric.update_batch(capture[r0:r1], targets[picked], None if weights is None else weights[picked])
            loss_sum, seen = loss_sum + l_sum, seen + n_seen
        return loss_sum, seen

    def _hook(self):
        """The custom regularizers' penalty and gradient, added between the engine's gradients and updates
        (Keras adds a layer's regularization losses to the loss it differentiates)."""
        custom = self._custom
        if not custom:
            return None

        def hook(step):
            return sum(reg.backward(weight.value, weight.grad) for weight, reg in custom)
        return hook

    def _draw(self, dropouts, first, steps, batch_size, rows):
        """One (rows, units) array per Dropout the engine runs, holding exactly the numbers the layers draw
        for these steps: per step, ``rng.random(noise shape)`` from each Dropout's generator in layer order (a
        noise_shape draws fewer and broadcasts them). A generator used by one Dropout only is drawn from once
        for all the steps (NumPy's stream is the same however it is cut); shared ones (the global generator)
        per step, interleaved."""
        dtype = self.model._params.dtype
        generators = [layer._generator() for layer in dropouts]
        buffers = self._buffers(dropouts, rows, dtype)
        plain = all(layer.noise_shape is None for layer in dropouts)
        if plain and len({id(g) for g in generators}) == len(generators):
            if dtype == np.float32:  # NumPy's stream, drawn in C
                return [K.generator_random_f32(g, u) for g, u in zip(generators, buffers)]
            return [g.random(dtype=dtype, out=u) for g, u in zip(generators, buffers)]
        for r0 in range(0, rows, batch_size):
            n = min(batch_size, rows - r0)
            for layer, g, u in zip(dropouts, generators, buffers):
                shape = (n,) + tuple(layer.input_shape[1:])
                noise = layer._mask_shape(shape)
                if noise == shape:
                    g.random(dtype=dtype, out=u[r0:r0 + n])
                else:
                    u[r0:r0 + n] = np.broadcast_to(g.random(noise, dtype=dtype), shape).reshape(n, -1)
        return buffers

    def _buffers(self, dropouts, rows, dtype):
        """One (rows, units) array per Dropout, reused from call to call (the engine reads them during its
        call only): fresh 4 MB arrays cost ~1.5 ms of page faults each."""
        units = [int(np.prod(layer.input_shape[1:])) for layer in dropouts]
        kept = self._uniforms
        if (kept is None or [k.shape[1] for k in kept] != units or kept[0].shape[0] < rows
                or kept[0].dtype != dtype):
            kept = self._uniforms = [np.empty((rows, u), dtype) for u in units]
        return [k[:rows] for k in kept]

    # ------------------------------------------------------------------ inference
    def evaluate(self, data):
        """The mean loss (with the regularization penalty) over `data`; updates the metrics."""
        model = self.model
        engine = self.any_engine(data.n)
        x = _engine_x(data.x, model)
        python_metrics = _python_metrics(model, data)
        capture = np.empty((data.n, _outputs(engine)), model._params.dtype) if python_metrics else None
        loss_sum, metric_sums = engine.evaluate(x, data.y, sample_weight=data.sample_weight, capture=capture)
        sw = data.sample_weight
        for (metric, weighted), m_sum in zip(_kernel_metrics(model), metric_sums):
            metric.add_sums(m_sum, sw.sum() if weighted and sw is not None else data.n)
        for metric, targets, weighted in python_metrics:
            metric.update_batch(capture, targets, sw if weighted else None)
        return loss_sum / data.n + model._regularization()

    def predict(self, x):
        """The model's outputs for x (already validated), shaped like the model's output."""
        model = self.model
        engine = self.any_engine(x.shape[0])
        out = engine.predict(_engine_x(x, model))
        return out.reshape((x.shape[0],) + tuple(model.output_shape[1:]))

    def forward_train(self, x):
        """model(x, training=True): one batch of all rows in training arithmetic (BatchNormalization's batch
        statistics, updating the moving ones; dropout)."""
        model = self.model
        n = x.shape[0]
        engine, dropouts = self.engine(max(1, n))
        uniforms = self._draw(dropouts, 0, 1, max(1, n), n) if dropouts else None
        out = engine.forward_train(_engine_x(x, model), uniforms)
        return out.reshape((n,) + tuple(model.output_shape[1:]))


def _rates(opt, steps):
    """The engine's learning_rate argument: the rate, or for a schedule of your own one rate per step (a Python
    call each; a built-in schedule is in the plan and evaluated in C, so this value is not read)."""
    schedule = opt.schedule
    if schedule is None or schedule.engine_spec() is not None:
        return opt.current_learning_rate() if schedule is None else 0.0
    return np.array([opt.current_learning_rate(opt._iterations + s) for s in range(steps)], dtype=np.float64)


def _python_metrics(model, data):
    """(metric, its targets, weighted) for the metrics that are Python code: they read the outputs the engine
    captures (weighted: from compile's weighted_metrics, they read the sample weights too)."""
    return [(m, t, w) for m, t, w in zip(model._compiled_metrics, data.metric_targets, model._metric_weighted)
            if m.kernel is None]


def _kernel_metrics(model):
    """(metric, weighted) for the mean metrics the engine computes, in the plan's order."""
    return [(m, w) for m, w in zip(model._compiled_metrics, model._metric_weighted) if m.kernel is not None]


def _outputs(engine):
    from fastnn._kernels._engine_plan import op_width

    return op_width(engine.plan["ops"][-1])


def _engine_x(x, model):
    """x as the engine reads it: (rows, features) of the model's dtype, or a float32 CSR matrix (a float64
    model gets its sparse input densified: the CSR kernels are float32)."""
    if is_sparse(x):
        if model._params.dtype != np.float32:
            return np.ascontiguousarray(x.toarray(), dtype=model._params.dtype)
        return x
    return x.reshape(x.shape[0], -1)

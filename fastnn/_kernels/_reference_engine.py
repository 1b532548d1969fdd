"""NumPy twin of the training engine (``engine.pyx``): the same plan, arguments and results, written op by op
with the reference kernels of ``_reference``, so it is the oracle the compiled engine is tested against.
The plan's format is in ``_engine_plan``."""
import numpy as np

from fastnn._kernels import _engine_plan as P
from fastnn._kernels import _reference as R


def _is_csr(x):
    return type(x).__module__.startswith("scipy.sparse")


class Engine:
    """Runs a plan (``_engine_plan``) over its parameter arena: training steps, evaluation, prediction.

    Twin of the compiled ``engine.Engine``; see its docstring for the arguments.
    """

    def __init__(self, plan, params, grads, slots, batch_size, n_threads=None):
        self.plan, self.slots = P.check_plan(plan, params, grads, slots, batch_size)
        self.params, self.grads = params, grads
        self.batch_size = int(batch_size)
        self.n_threads = n_threads
        self._trained = P.trained_ranges(self.plan["ops"])
        self.steps_applied = 0  # training steps applied since the engine was made (the compiled Engine's)

    # ---------------------------------------------------------------- pieces
    def _view(self, arena, off, shape):
        return None if off < 0 else arena[off:off + int(np.prod(shape))].reshape(shape)

    def _bn(self, arena, op):
        _, _, c, g, b, mm, mv = op[:7]
        return tuple(self._view(arena, off, (c,)) for off in (g, b, mm, mv))

    def _forward(self, x, training, fold, uniforms=()):
        """(outputs of every op, their caches); outs[0] is the input batch."""
        outs, caches = [x], []
        drops = iter(uniforms)
        ops = self.plan["ops"]
        for k, op in enumerate(ops):
            h = outs[-1]
            last = k == len(ops) - 1
            kind = op[0]
            cache = None
            if kind == "dense":
                _, i, o, w_off, b_off, act, _ = op
                W, b = self._view(self.params, w_off, (i, o)), self._view(self.params, b_off, (o,))
                act = "linear" if fold and last else act
                if _is_csr(h):
                    z = R.csr_dense_forward(h.indptr, h.indices, h.data, W, b, "linear")
                else:
                    z = R.dense_forward(h, W, b, "linear")
                y = z if act == "linear" else R.activation_forward(z, act)
                cache = (act, z)
            elif kind == "act":
                act = "linear" if fold and last else op[2]
                y = R.activation_forward(h.reshape(-1, op[3]), act).reshape(h.shape) if act != "linear" else h.copy()
                cache = act
            elif kind == "bn":
                C, eps = op[2], op[8]
                gamma, beta, mm, mv = self._bn(self.params, op)
                flat = h.reshape(-1, C)
                if training and op[9]:
                    y, mean, var = R.batch_norm_forward_train(flat, gamma, beta, eps)
                    R.batch_norm_update_moving(mm, mv, mean, var, op[7])
                    cache = (flat, mean, var, True)
                else:
                    y = R.batch_norm_forward_infer(flat, mm, mv, gamma, beta, eps)
                    cache = (flat, mm.astype(np.float64), mv.astype(np.float64), False)
                y = y.reshape(h.shape)
            elif kind == "prelu":
                y = R.prelu_forward(h, self._view(self.params, op[3], (op[2],)))
            elif kind == "dropout":
                if training:
                    y, cache = R.dropout_forward(h, next(drops), op[2])
                else:
                    y = h
            else:
                y = h[:, np.asarray(op[2])]
            outs.append(y)
            caches.append(cache)
        return outs, caches

    def _backward(self, outs, caches, dy, fold):
        """Gradients of every trained op into the (zeroed) gradient arena."""
        ops = self.plan["ops"]
        lowest = next((k for k, op in enumerate(ops) if P.op_weights(op) and any(t for *_, t in P.op_weights(op))),
                      None)
        if lowest is None:
            return
        for k in range(len(ops) - 1, lowest - 1, -1):
            op, cache, x = ops[k], caches[k], outs[k]
            need_dx = k > lowest
            kind = op[0]
            if kind == "dense":
                _, i, o, w_off, b_off, act, train = op
                W = self._view(self.params, w_off, (i, o))
                if act != "linear" and not (fold and k == len(ops) - 1):
                    dy = R.activation_backward(dy, outs[k + 1], act, X=cache[1])
                dW = self._view(self.grads, w_off, (i, o)) if train else np.zeros((i, o), W.dtype)
                db = (self._view(self.grads, b_off, (o,)) if train else np.zeros(o, W.dtype)) if b_off >= 0 else None
                if _is_csr(x):
                    R.csr_dense_backward(x.indptr, x.indices, x.data, dy, dW, db)
                    dy = None
                else:
                    dy = R.dense_backward(dy, x, W, dW, db, compute_dX=need_dx)
            elif kind == "act":
                if cache != "linear":
                    g = op[3]
                    dy = R.activation_backward(dy.reshape(-1, g), outs[k + 1].reshape(-1, g), cache,
                                               X=x.reshape(-1, g)).reshape(dy.shape)
            elif kind == "prelu":
                alpha = self._view(self.params, op[3], (op[2],))
                dy = R.prelu_backward(dy, x, alpha, self._view(self.grads, op[3], (op[2],)) if op[4] else None)
            elif kind == "bn":
                flat, mean, var, training = cache
                gamma = self._bn(self.params, op)[0]
                dgamma, dbeta = self._bn(self.grads, op)[:2] if op[9] else (None, None)
                dy = R.batch_norm_backward(dy.reshape(flat.shape), flat, mean, var, gamma, op[8], dgamma, dbeta,
                                           training=training).reshape(dy.shape)
            elif kind == "dropout":
                dy = R.dropout_backward(dy, cache, op[2])
            else:
                dx = np.empty_like(dy)
                dx[:, np.asarray(op[2])] = dy
                dy = dx

    def _update(self, learning_rate, raw):
        """One optimizer step after `raw` earlier ones (Keras' _iterations): accumulation, clipping and weight
        decay as Keras 3's base optimizer, then the update (engine.pyx's order: _engine_update.update_range)."""
        kind, h = self.plan["optimizer"]
        s = self.slots
        dtype = self.params.dtype.type
        steps = h["gradient_accumulation_steps"]
        t = raw // steps + 1 if steps else raw + 1
        if h["schedule"] is not None:
            learning_rate = R.learning_rate_at(h["schedule"][0], h["schedule"][1], raw)
        ranges = [(slice(off, off + size), off) for off, size in self._trained]
        if steps:
            if (raw + 1) % steps:
                for sl, _ in ranges:
                    s[3][sl] += self.grads[sl]
                return
            for sl, _ in ranges:
                self.grads[sl] = (self.grads[sl] + s[3][sl]) / dtype(steps)
                s[3][sl] = 0
        scales = self._clip_scales(h, ranges)
        for (sl, off), scale in zip(ranges, scales):
            w, g = self.params[sl], self.grads[sl]
            if h["clipvalue"] > 0:
                np.clip(g, -dtype(h["clipvalue"]), dtype(h["clipvalue"]), out=g)
            if scale != 1.0:
                g *= dtype(scale)
            if h["weight_decay"] != 0 and off not in h["decay_excluded"]:
                w[...] = w - w * dtype(h["weight_decay"]) * dtype(learning_rate)
            m0, m1, m2 = (None if a is None else a[sl] for a in s[:3])
            if kind == "sgd":
                R.sgd_update(w, g, m0, learning_rate, h["momentum"], h["nesterov"])
            elif kind == "rmsprop":
                R.rmsprop_update(w, g, m0, m1, m2, learning_rate, h["rho"], h["momentum"], h["epsilon"], h["centered"])
            elif kind == "adam":
                R.adam_update(w, g, m0, m1, m2, learning_rate, h["beta_1"], h["beta_2"], h["epsilon"], t, h["amsgrad"])
            elif kind == "adadelta":
                R.adadelta_update(w, g, m0, m1, learning_rate, h["rho"], h["epsilon"])
            elif kind == "adagrad":
                R.adagrad_update(w, g, m0, learning_rate, h["epsilon"])
            elif kind == "adamax":
                R.adamax_update(w, g, m0, m1, learning_rate, h["beta_1"], h["beta_2"], h["epsilon"], t)
            elif kind == "nadam":
                R.nadam_update(w, g, m0, m1, learning_rate, h["beta_1"], h["beta_2"], h["epsilon"], t)
            else:
                R.lion_update(w, g, m0, learning_rate, h["beta_1"], h["beta_2"])

    def _clip_scales(self, h, ranges):
        """Each trained weight's norm-clipping factor (Keras 3: clipnorm per weight, global_clipnorm over all)."""
        if h["clipnorm"] <= 0 and h["global_clipnorm"] <= 0:
            return [1.0] * len(ranges)
        sq = [float(np.sum(np.square(self.grads[sl], dtype=np.float64))) for sl, _ in ranges]
        if h["clipnorm"] > 0:
            c = h["clipnorm"]
            return [c / max(np.sqrt(q), c) if np.sqrt(q) > c else 1.0 for q in sq]
        norm = np.sqrt(sum(sq))
        c = h["global_clipnorm"]
        with np.errstate(divide="ignore"):  # a zero norm: 1/0 = inf, so no clipping (the kernel's min())
            return [c * min(1.0 / norm, 1.0 / c) + (norm - norm)] * len(ranges)

    def _penalty(self, gradients):
        total = 0.0
        for off, size, l1, l2 in self.plan["regularizers"]:
            w = self.params[off:off + size]
            total += R.l1_l2_backward(w, l1, l2, self.grads[off:off + size]) if gradients else \
                R.l1_l2_forward(w, l1, l2)
        return total

    def _loss(self, final, y, scale, sample_weight, grad):
        name, fold = self.plan["loss"]
        if grad:
            return getattr(R, name + "_backward")(final, y, scale, sample_weight=sample_weight)
        rows = getattr(R, name + "_forward")(final, y)
        return R._loss_sum(rows, sample_weight), None

    def _outputs(self, final):
        name, fold = self.plan["loss"]
        return R.activation_forward(final, P.FUSED_ACTIVATION[name]) if fold else final

    def _check(self, owner, X, y, sample_weight):
        X = X if _is_csr(X) else P.check_dense_x(owner, X, self.plan["n_inputs"], self.plan["dtype"])
        S = X.shape[0]
        ids, Y = P.check_labels(owner, self.plan, y, S)
        return X, S, (ids if ids is not None else Y), P.check_sample_weight(owner, sample_weight, S)

    # ---------------------------------------------------------------- calls
    def train_steps(self, X, y, order, first_batch, n_batches, iterations, learning_rate, sample_weight=None,
                    uniforms=None, capture=None, grad_hook=None):
        owner = "Engine.train_steps"
        X, S, labels, sw = self._check(owner, X, y, sample_weight)
        order, first_batch, n_batches, rows_total = P.check_order(owner, order, first_batch, n_batches,
                                                                  self.batch_size, S)
        iterations = P.check_int(owner, "iterations", iterations, 0)
        learning_rate, table = P.check_learning_rate(owner, learning_rate, n_batches)
        uniforms = P.check_uniforms(owner, self.plan["ops"], uniforms, rows_total, self.plan["dtype"])
        fold = self.plan["loss"][1]
        bs = self.batch_size
        self.steps_done = 0
        loss_sum, metric_sums, seen = 0.0, np.zeros(len(self.plan["metrics"])), 0
        for step in range(n_batches):
            b = first_batch + step
            rows = order[b * bs:(b + 1) * bs]
            n = rows.shape[0]
            x = X[rows] if _is_csr(X) else X[rows]
            yb = labels[rows]
            wb = None if sw is None else sw[rows]
            outs, caches = self._forward(x, True, fold, [u[step * bs:step * bs + n] for u in uniforms])
            final = outs[-1]
            outputs = self._outputs(final)
            for k, (metric, threshold, weighted) in enumerate(self.plan["metrics"]):
                metric_sums[k] += R.metric_sum(outputs, yb, metric, threshold, wb if weighted else None)
            if capture is not None:
                capture[step * bs:step * bs + n] = outputs
            loss, dy = self._loss(final, yb, 1.0 / n, wb, True)
            self.grads[...] = 0
            penalty = self._penalty(gradients=False)
            self._backward(outs, caches, dy, fold)
            self._penalty(gradients=True)
            if grad_hook is not None:
                penalty += float(grad_hook(step))
            self._update(learning_rate if table is None else float(table[step]), iterations + step)
            self.steps_applied += 1
            self.steps_done = step + 1
            loss_sum += loss + n * penalty
            seen += n
        return loss_sum, metric_sums, seen

    def evaluate(self, X, y, sample_weight=None, capture=None):
        X, S, labels, sw = self._check("Engine.evaluate", X, y, sample_weight)
        fold = self.plan["loss"][1]
        loss_sum, metric_sums = 0.0, np.zeros(len(self.plan["metrics"]))
        for start in range(0, S, 4096):
            stop = min(start + 4096, S)
            final = self._forward(X[start:stop], False, fold)[0][-1]
            outputs = self._outputs(final)
            loss_sum += self._loss(final, labels[start:stop], 1.0, None if sw is None else sw[start:stop], False)[0]
            wb = None if sw is None else sw[start:stop]
            for k, (metric, threshold, weighted) in enumerate(self.plan["metrics"]):
                metric_sums[k] += R.metric_sum(outputs, labels[start:stop], metric, threshold,
                                               wb if weighted else None)
            if capture is not None:
                capture[start:stop] = outputs
        return loss_sum, metric_sums

    def predict(self, X, out=None):
        X = X if _is_csr(X) else P.check_dense_x("Engine.predict", X, self.plan["n_inputs"], self.plan["dtype"])
        K = P.op_width(self.plan["ops"][-1])
        out = np.empty((X.shape[0], K), self.plan["dtype"]) if out is None else out
        for start in range(0, X.shape[0], 4096):
            out[start:start + 4096] = self._forward(X[start:start + 4096], False, False)[0][-1]
        return out

    def forward_train(self, X, uniforms=None):
        X = X if _is_csr(X) else P.check_dense_x("Engine.forward_train", X, self.plan["n_inputs"],
                                                 self.plan["dtype"])
        uniforms = P.check_uniforms("Engine.forward_train", self.plan["ops"], uniforms, X.shape[0],
                                    self.plan["dtype"])
        return self._forward(X, True, False, uniforms)[0][-1].copy()

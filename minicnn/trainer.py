"""What makes a model trainable: compile, one training step, and the methods that run
the loop (``fit``, ``evaluate``, ``predict``: ``minicnn.training``).

One training step is the whole story of backprop, written out:

    out = model.forward(x, training=True)        # every node of the graph, in order
    loss, grad = loss(y, out), dL/dout
    model.backward(grad)                         # every node in reverse (minicnn.network)
    optimizer.apply(every layer's get_gradients(), every layer's trainable weights)

When the output layer ends in softmax and the loss is cross-entropy, the step
starts the backward walk at the softmax *input* with ``(p - y) / N``
(see ``minicnn.ops.losses``): simpler, and exact for any logits.
"""
import math

import numpy as np

from . import losses as losses_module, model_data, objectives as objectives_module
from . import regularizers, split_step, training
from . import optimizers as optimizers_module
from .backend import as_array, get_array_module, to_device, to_host
from .utils import global_rng


class Trainer:
    """compile, the training step and the loop's entry points, for ``Model``."""

    def compile(self, optimizer="adam", loss=None, metrics=None, loss_weights=None):
        """The optimizer, the loss and the metrics, as Keras's ``compile``; for a model
        with several outputs, ``loss``/``loss_weights``/``metrics`` per output
        (``minicnn.objectives``)."""
        if loss is None:
            raise ValueError(f"{type(self).__name__} '{self.name}': compile() needs a loss")
        self._objectives = objectives_module.resolve(self, loss, metrics, loss_weights)
        self.optimizer = optimizers_module.get(optimizer)
        losses = [o.loss for o in self._objectives]
        self.loss = losses[0] if self._single_output else losses
        self._log_names = objectives_module.log_names(self._objectives)
        self.metric_names = self._log_names[1:]

    def _as_list(self, value, single):
        return [value] if single else list(value)

    def _from_list(self, values, single):
        return values[0] if single else values

    def _fused_softmax_loss(self, index=0):
        """True when the backward walk can start output ``index``'s softmax input with
        (p - y)/N: cross-entropy on probabilities from a softmax layer whose output
        feeds nothing else in the graph, and no activity regularizer (its gradient
        joins at the softmax *output*)."""
        loss = self._objectives[index].loss
        tensor = self._graph.outputs[index] if self._graph is not None else None
        if tensor is None or tensor.node is None or tensor.node.multi:
            return False
        return (isinstance(loss, losses_module.CategoricalCrossentropy)
                and not loss.from_logits
                and getattr(tensor.node.layer, "activation", None) == "softmax"
                and getattr(tensor.node.layer, "activity_regularizer", None) is None
                and not self._graph.consumed(tensor))

    def _require_compiled(self, what):
        if self.loss is None:
            raise ValueError(f"{type(self).__name__} '{self.name}': {what} needs compile() first")

    @staticmethod
    def _weights_for(sample_weight, out):
        """One weight per sample on the backend in the output's dtype (moved there only
        if it is not already), shaped to scale a per-sample value (``(N,)``) or a
        gradient like ``out`` (``(N, 1, ...)``)."""
        w = to_device(sample_weight, dtype=out.dtype).reshape(-1)
        return w, w.reshape((-1,) + (1,) * (out.ndim - 1))

    def _loss_value(self, y, out, sample_weight=None):
        """Per-sample losses of a batch (Keras's values) and the targets, checked and cast
        where they arrived (the host) and then moved to the backend, once. A model with
        several outputs takes and gives lists (None for an output without a loss)."""
        single = self._single_output
        per_sample, targets = [], []
        for objective, yi, oi in zip(self._objectives, self._as_list(y, single),
                                     self._as_list(out, single)):
            if objective.loss is None:
                per_sample.append(None)
                targets.append(None)
                continue
            yi, oi = objective.loss.prepare(as_array(yi), oi)
            yi = to_device(yi)
            values = objective.loss.per_sample(yi, oi)
            if sample_weight is not None:  # Keras: sum(w * loss) / N over the batch
                values = values * self._weights_for(sample_weight, oi)[0]
            per_sample.append(values)
            targets.append(yi)
        return self._from_list(per_sample, single), self._from_list(targets, single)

    def _batch_logs(self, y_dev, out, per_sample, layers=None):
        """The batch's loss and metrics as Python floats, copied to the host together:
        one transfer (and on a GPU one wait) per batch. ``y_dev``: the labels as
        ``_loss_value`` returned them (on the backend). The loss includes the
        regularizers' penalties of the last forward (``minicnn.regularizers``: Keras adds
        them to the total loss, not to each output's), read from ``layers`` where given
        (substitutes of the model's layers that ran that forward: check_model's twins)."""
        single = self._single_output
        outs = self._as_list(out, single)
        xp = get_array_module(*outs)
        parts, metrics, total = [], [], None
        for objective, yi, oi, li in zip(self._objectives, self._as_list(y_dev, single), outs,
                                         self._as_list(per_sample, single)):
            if objective.loss is not None:
                mean = li.mean()
                parts.append(mean)
                term = mean * objective.weight if objective.weight != 1.0 else mean
                total = term if total is None else total + term
            metrics += [fn(yi, oi).mean() for fn in objective.metric_fns]
        penalty = regularizers.model_penalty(self, layers)
        if penalty is not None:
            total = penalty if total is None else total + penalty.astype(total.dtype)
        separate = objectives_module.separate_losses(self._objectives)
        values = [total] + (parts if separate else []) + metrics
        host = to_host(xp.stack([v.astype("float64") for v in values]))
        return dict(zip(self._log_names, host.tolist()))

    def _release_caches(self):
        """Drop what the layers kept for a backward pass once a step (or an inference
        batch) is done: the next forward replaces it anyway, and until then it would
        double the memory a step needs (on a GPU, what limits the batch size)."""
        for layer in self._layers:
            layer.release_cache()
        if self._graph is not None:
            self._graph.release()

    def _loss_gradient(self, y_dev, out, sample_weight=None):
        """Where the backward walk starts: ``(grad, from_logits)``. With softmax + cross-
        entropy that is dL/d(softmax input) = (p - y) / N (no division by p, exact for any
        logits, ``from_logits=True``); otherwise the loss's dL/d(output); each scaled by
        its loss weight. Lists for a model with several outputs (None: no loss)."""
        single = self._single_output
        grads, fused = [], []
        for i, (objective, yi, oi) in enumerate(zip(self._objectives,
                                                    self._as_list(y_dev, single),
                                                    self._as_list(out, single))):
            fused.append(objective.loss is not None and self._fused_softmax_loss(i))
            if objective.loss is None:
                grad = None
            elif fused[-1]:
                grad = (oi - objective.loss.dense_targets(yi, oi)) / len(oi)
            else:
                grad = objective.loss.prepared_gradient(yi, oi)
            if grad is not None and objective.weight != 1.0:
                grad = grad * objective.weight
            if grad is not None and sample_weight is not None:  # each sample's share
                grad = grad * self._weights_for(sample_weight, oi)[1]
            grads.append(grad)
        return self._from_list(grads, single), self._from_list(fused, single)

    @staticmethod
    def gradients_of(layers):
        """The trainable weights' gradients of the last backward through ``layers``, in
        weight order (zeros for a layer no gradient reached: one that feeds only an
        output without a loss)."""
        grads = []
        for layer in layers:
            if not layer.trainable_weights:
                continue
            if layer._grads is None:
                xp = get_array_module(*layer.trainable_weights)
                grads += [xp.zeros_like(w) for w in layer.trainable_weights]
            else:
                grads += layer._grads
        return grads

    def _train_step(self, x, y, finite_only=False, sample_weight=None):
        """One step; returns the batch's logs (pre-update, as Keras reports them).
        ``finite_only``: when the loss is NaN or Inf, change nothing (the weights and
        the moving statistics stay those of the last step) and return the logs with
        ``logs["applied"] = False``. ``sample_weight``: one weight per sample, the
        loss ``sum(w * loss) / N`` as Keras's (metrics stay unweighted, as Keras's
        ``metrics``)."""
        kept = [list(layer._weights) for layer in self._layers] if finite_only else None
        if sample_weight is not None:  # to the backend once: the loss and its gradient
            sample_weight = to_device(sample_weight)
        grads = None
        activity = regularizers.has_activity(self)  # divides by the whole batch: no halves
        if self.built and not activity and split_step.suits(self, x):  # half the batch per core
            out, per_sample, y_dev, grads = split_step.forward_backward(self, x, y,
                                                                        sample_weight)
        else:
            out = self.forward(x, training=True)
            per_sample, y_dev = self._loss_value(y, out, sample_weight)
        logs = self._batch_logs(y_dev, out, per_sample)  # before the update: the same one
        # copy per batch; the ranks of a distributed run decide together: all or none
        if finite_only and not self.optimizer.communicator.all(math.isfinite(logs["loss"])):
            for layer, weights in zip(self._layers, kept):  # moving statistics are replaced,
                layer._weights = weights                    # not changed in place
            self._release_caches()
            return dict(logs, applied=False)
        if grads is None:
            grad, from_logits = self._loss_gradient(y_dev, out, sample_weight)
            if activity and not self._single_output:  # an output without a loss may
                grad = [get_array_module(o).zeros_like(o) if g is None else g  # still
                        for g, o in zip(grad, out)]   # reach an activity penalty
            self.backward(grad, from_logits=from_logits, input_gradient=False)
            grads = self.gradients_of(self._layers)
        # the weight penalties' gradients join the loss's (Keras: trainable weights only)
        grads = [g if r is None else g + r for g, r in
                 zip(grads, regularizers.weight_gradients(self))]
        self.optimizer.apply(grads, self.trainable_weights)
        self._release_caches()
        return logs

    def trace(self, x, y, print_fn=print):
        """Walk one training step on ``(x, y)`` layer by layer and print what every layer
        computes forward and passes backward (``minicnn.trace``); returns it as data.
        The model does not change."""
        from .trace import format_trace, trace_step
        x, y = model_data.inputs(self, x, "trace()"), model_data.targets(self, y, "trace()")
        self._check_xy(x, y, "trace()")
        data = trace_step(self, x, y)
        if print_fn is not None:
            print_fn(format_trace(data))
        return data

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
        """One step on one batch; returns the pre-update loss (and metrics) as Keras does.
        ``sample_weight`` / ``class_weight``: see ``fit``."""
        self._require_compiled("train_on_batch()")
        x = model_data.inputs(self, x, "train_on_batch()")
        y = model_data.targets(self, y, "train_on_batch()")
        self._check_xy(x, y, "train_on_batch()")
        weights = model_data.sample_weights(self, y, sample_weight, class_weight,
                                            "train_on_batch()")
        logs = self._train_step(x, y, sample_weight=weights)
        return self._as_result(logs)

    def _as_result(self, logs):
        values = [logs[name] for name in self._log_names]
        return values[0] if len(values) == 1 else values

    def _check_finite(self, what, arrays):
        """One vectorised pass per array: NaN or Inf in the data is an error naming the
        array and the first bad element (``check_numerics=False`` skips this)."""
        for name, a in arrays:
            if a is None or np.asarray(a).dtype.kind not in "fc":
                continue
            xp = get_array_module(a)
            bad = ~xp.isfinite(a)
            if bool(bad.any()):
                index = tuple(int(i) for i in np.unravel_index(int(bad.argmax()), a.shape))
                value = to_host(a[index]).item() if index else to_host(a).item()
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': "
                    f"{what} received {name} holding NaN or Inf: "
                    f"{name}[{', '.join(map(str, index))}] = {value} is the first (sample "
                    f"{index[0] if index else 0}). Clean the data, or pass "
                    f"check_numerics=False to skip this check")

    def _check_xy(self, x, y, what="the data"):
        """``x`` and ``y`` (as ``model_data`` puts them) fit the model and each other."""
        self._check_samples(x, what)
        model_data.check_counts(self, x, y, what)

    def _shuffling(self, seed):
        """The model's shuffling generator: made from ``seed`` (again whenever fit gets
        another seed), or from the global generator on the first fit without one."""
        if seed is not None and seed != self._shuffle_seed:
            self._shuffle_rng, self._shuffle_seed = np.random.default_rng(seed), seed
        elif self._shuffle_rng is None:
            self._shuffle_rng = np.random.default_rng(int(global_rng().integers(2**63)))
        return self._shuffle_rng

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto",
            validation_data=None, validation_split=0.0, shuffle=True, callbacks=None,
            initial_epoch=0, seed=None, check_numerics=True, terminate_on_nan=True,
            sample_weight=None, class_weight=None, steps_per_epoch=None,
            validation_steps=None):
        """Train for ``epochs`` epochs of mini-batches; returns a ``History``. The loop
        is ``minicnn.training.fit``, which documents every argument; ``x`` may also be
        an iterable of ``(x, y[, sample_weight])`` batches or a ``PyDataset`` (data that
        need not fit in memory). ``sample_weight`` (one per sample) and
        ``class_weight`` ({class: weight}) weight each sample's loss as Keras does:
        ``sum(w * loss) / N`` per batch, metrics unweighted."""
        return training.fit(self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                            validation_data=validation_data, validation_split=validation_split,
                            shuffle=shuffle, callbacks=callbacks, initial_epoch=initial_epoch,
                            seed=seed, check_numerics=check_numerics,
                            terminate_on_nan=terminate_on_nan, sample_weight=sample_weight,
                            class_weight=class_weight, steps_per_epoch=steps_per_epoch,
                            validation_steps=validation_steps)

    def predict(self, x, batch_size=None, verbose=0, callbacks=None, steps=None):
        """Outputs for ``x`` (arrays, or batches of x from an iterable or a PyDataset)
        in inference mode, as one host (NumPy) array (a list of them for a model with
        several outputs); ``callbacks`` get the predict hooks."""
        return training.predict(self, x, batch_size=batch_size, verbose=verbose,
                                callbacks=callbacks, steps=steps)

    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, return_dict=False,
                 check_numerics=True, callbacks=None, sample_weight=None, steps=None):
        """Loss (and metrics) over ``(x, y)`` (or streamed batches, as ``fit`` takes
        them) in inference mode, averaged over samples. ``check_numerics``: refuse data
        holding NaN or Inf (see ``fit``); ``callbacks`` get the test hooks;
        ``sample_weight`` weights each sample's loss (see ``fit``)."""
        return training.evaluate(self, x, y, batch_size=batch_size, verbose=verbose,
                                 return_dict=return_dict, check_numerics=check_numerics,
                                 callbacks=callbacks, sample_weight=sample_weight, steps=steps)

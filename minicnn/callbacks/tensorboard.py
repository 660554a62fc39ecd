"""TensorBoard: Keras 3's callback of that name, writing event files that TensorBoard
reads (``tensorboard --logdir logs``) without TensorFlow.

What it writes, with Keras's tags, steps and directories::

    logs/train/       epoch_loss, epoch_accuracy, ...     step: the epoch (0, 1, ...)
                      epoch_learning_rate                 the optimizer's, at epoch end
                      epoch_steps_per_second              write_steps_per_second=True
                      batch_loss, batch_accuracy, ...     update_freq=N: every N batches,
                      batch_steps_per_second              step: the batch (1, 2, ...)
                      <model>/<layer>/<weight>/histogram  every histogram_freq epochs
                      <model>/<layer>/<weight>/image      write_images=True
                      <model>/<layer>/<weight>/gradient   a histogram: see below
                      keras                               the model's Keras JSON (write_graph)
    logs/validation/  epoch_loss, epoch_accuracy, ...     the val_ entries, val_ removed
                      evaluation_loss_vs_iterations, ...  after each evaluation, step:
                                                          the optimizer's update count

The batch entries are the running means ``on_train_batch_end`` sees (what the
progress bar shows), counted across epochs from the start of ``fit``; the epoch
entries are the epoch's logs, written every epoch whatever ``update_freq`` is (Keras
on TensorFlow loses them when the batches so far are not a multiple of
``update_freq``: its batch-recording condition is still on at the epoch's end).

A weight's name is Keras 3's ``weight.path``: the layer's name and the weight's
(``dense/kernel``), behind the name of every Sequential model it sits in
(``sequential/dense/kernel``; a functional model adds nothing), so the tags of a
ported program match the original's. The weight images are Keras's pictures (see
``weight_image``); where a kernel gives one image per filter, Keras keeps the first
three as separate samples and minicnn tiles them all into one image.

One addition Keras does not have: with ``histogram_freq``, each trainable weight's
gradient on the epoch's last batch, as the optimizer received it (the loss's
gradient plus any weight penalty's, before clipping; under MPI, rank 0's own batch),
as ``<weight path>/gradient``: where a network's gradients vanish or explode shows
layer by layer.

``write_graph`` (on by default, as in Keras) writes the model's Keras JSON under the
tag ``keras``, which TensorBoard's Graphs tab draws as a graph of layers: all that
Keras writes for it on the JAX and PyTorch backends (no TensorFlow op graph there).
``profile_batch`` and ``embeddings_freq`` ask for things minicnn does not have (a
device profiler, Embedding layers): set, they are ignored with a warning, so a Keras
program that sets them still trains. Under MPI only rank 0 writes.

The files are written by ``tensorboardX``, an optional dependency:
``pip install minicnn[tensorboard]``.
"""
import itertools
import json
import os
import time
import warnings

import numpy as np

from ..backend import to_host
from . import Callback
from .learning_rate import _read_learning_rate

_INSTALL = "pip install minicnn[tensorboard]"
_FILES = itertools.count(1)  # tells apart the event files one process opens in a second


def _summary_writer_class():
    try:
        from tensorboardX import SummaryWriter
    except ImportError as exc:
        raise ImportError(f"TensorBoard writes its event files with the tensorboardX "
                          f"package, which is not installed: {_INSTALL} "
                          f"(or pip install tensorboardX)") from exc
    return SummaryWriter


def weight_paths(model):
    """``[(path, array, trainable)]`` for every weight of ``model``, in Keras order, each
    named as Keras 3 names it (``weight.path``): a layer's weights are
    ``<layer>/<weight>``, behind ``<name>/`` for each Sequential model around it."""
    found = []

    def walk(layers, prefix):
        for layer in layers:
            inner = getattr(layer, "layers", None)
            if inner is not None:  # a model used as a layer
                sequential = type(layer).__name__ == "Sequential"
                walk(inner, prefix + (f"{layer.name}/" if sequential else ""))
                continue
            trainable = {id(w) for w in layer.trainable_weights}
            for name, value in zip(layer.weight_names, layer.weights):
                found.append((f"{prefix}{layer.name}/{name}", value, id(value) in trainable))

    walk([model], "")
    return found


def weight_image(weight):
    """Keras's picture of a weight (``NHWC``, or None where Keras draws none): a bias as
    one column, a Dense kernel as one image with the longer side across, a
    convolution kernel of one input channel as one image per filter."""
    w = np.squeeze(np.asarray(weight, dtype=np.float32))
    if w.ndim == 1:
        w = w.reshape(1, w.shape[0], 1, 1)
    elif w.ndim == 2:
        if w.shape[0] > w.shape[1]:
            w = w.T
        w = w.reshape(1, w.shape[0], w.shape[1], 1)
    elif w.ndim == 3:  # (kh, kw, filters): one image per filter
        w = np.transpose(w, (2, 0, 1))[..., None]
    if w.ndim == 4 and w.shape[-1] in (1, 3, 4):
        return w
    return None


class TensorBoard(Callback):
    """Write training curves, weight histograms and the model for TensorBoard.

    ``log_dir``: where the ``train`` and ``validation`` directories go.
    ``histogram_freq``: write weight (and gradient) histograms every that many epochs,
    from the first (0: never). ``write_graph``: write the model's Keras JSON.
    ``write_images``: draw the weights as images too (needs pillow).
    ``write_steps_per_second``: add the training speed. ``update_freq``: ``"epoch"``,
    or ``"batch"`` / an int N to write the batch logs every N batches as well.
    ``profile_batch``, ``embeddings_freq``, ``embeddings_metadata``: accepted as Keras
    takes them; see the module docstring.

    Event files are opened when first written to (constructing the callback writes
    nothing) and closed when training ends."""

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True,
                 write_images=False, write_steps_per_second=False, update_freq="epoch",
                 profile_batch=0, embeddings_freq=0, embeddings_metadata=None):
        super().__init__()
        self._writer_class = _summary_writer_class()
        self.log_dir = str(os.fspath(log_dir))
        self.histogram_freq = int(histogram_freq)
        if self.histogram_freq < 0:
            raise ValueError(f"TensorBoard: histogram_freq must be 0 or more. Received: "
                             f"histogram_freq={histogram_freq}")
        self.write_graph = bool(write_graph)
        self.write_images = bool(write_images)
        if self.write_images:
            try:
                import PIL  # noqa: F401 - tensorboardX encodes images with it
            except ImportError as exc:
                raise ImportError("TensorBoard(write_images=True) needs pillow to encode "
                                  "the images: pip install pillow") from exc
        self.write_steps_per_second = bool(write_steps_per_second)
        self.update_freq = 1 if update_freq == "batch" else update_freq
        if self.update_freq != "epoch" and (
                isinstance(self.update_freq, bool) or not isinstance(self.update_freq, int)
                or self.update_freq < 1):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a "
                             f"positive number of batches. Received: "
                             f"update_freq={update_freq!r}")
        self.profile_batch = _checked_profile_batch(profile_batch)
        if self.profile_batch:
            warnings.warn(f"TensorBoard: profile_batch={profile_batch!r} is ignored: minicnn "
                          f"has no profiler that writes TensorBoard traces (time the layers "
                          f"with model.trace or a Python profiler instead)", stacklevel=2)
        self.embeddings_freq = int(embeddings_freq)
        self.embeddings_metadata = embeddings_metadata
        if self.embeddings_freq:
            warnings.warn(f"TensorBoard: embeddings_freq={embeddings_freq} is ignored: the "
                          f"embedding projector shows Embedding layers, which minicnn does "
                          f"not have", stacklevel=2)
        self._writers = {}
        self._global_train_batch = 0
        self._batch_start_time = 0.0
        self._epoch_start_time = 0.0
        self._epoch_start_iterations = 0
        self._graph_written = False
        self._tapped = None     # the optimizer whose apply() is watched for gradients
        self._last_step = None  # (gradients, variables) of the last update

    # -- where the files go ---------------------------------------------------------
    def _writes(self):
        """Only one process writes: rank 0 of a distributed run (whose callbacks
        alone run during ``fit``; ``evaluate`` runs them on every rank)."""
        communicator = getattr(getattr(self.model, "optimizer", None), "communicator", None)
        return getattr(communicator, "rank", 0) == 0

    def _writer(self, which):
        """The ``train`` or ``validation`` writer, opened on first use."""
        if which not in self._writers:
            # TensorFlow's file names, ``events.out.tfevents.<time>.<host>.<pid>.<n>.v2``:
            # a second writer opened in the same second must not replace the first's file
            self._writers[which] = self._writer_class(
                os.path.join(self.log_dir, which),
                filename_suffix=f".{os.getpid()}.{next(_FILES)}.v2")
        return self._writers[which]

    def _close_writers(self):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def set_model(self, model):
        super().set_model(model)
        self._close_writers()  # Keras: a new model, new event files
        self._graph_written = False
        self._write_graph()

    def _write_graph(self):
        """The model's Keras JSON, tagged ``keras`` at step 0 with the plugin name
        ``graph_keras_model``, as Keras's ``keras_model_summary`` writes it (once the
        model is built: its JSON holds its input shape)."""
        if not self.write_graph or self._graph_written or not self._writes() \
                or not getattr(self.model, "built", False):
            return
        from ..keras_files import keras_config
        from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboardX.proto.tensor_pb2 import TensorProto
        try:
            text = json.dumps(keras_config(self.model))
        except Exception as exc:  # noqa: BLE001 - as Keras: a model it cannot write
            warnings.warn(f"Model failed to serialize as JSON. Ignoring... {exc}")
            self._graph_written = True
            return
        metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name="graph_keras_model", content=b"1"))
        tensor = TensorProto(dtype="DT_STRING", string_val=[text.encode()])
        summary = Summary(value=[Summary.Value(tag="keras", metadata=metadata, tensor=tensor)])
        self._writer("train")._get_file_writer().add_summary(summary, global_step=0)
        self._graph_written = True

    # -- the hooks --------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        self._write_graph()
        if self.histogram_freq and self._writes():
            self._tap_gradients()

    def on_train_end(self, logs=None):
        self._untap_gradients()
        self._close_writers()

    def on_epoch_begin(self, epoch, logs=None):
        if self.write_steps_per_second:
            self._epoch_start_iterations = self.model.optimizer.iterations
            self._epoch_start_time = time.time()

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start_time = time.time()

    def on_train_batch_end(self, batch, logs=None):
        step = self._global_train_batch
        if self.update_freq == "epoch" or step % self.update_freq or not self._writes():
            return
        writer = self._writer("train")
        if self.write_steps_per_second:
            elapsed = max(time.time() - self._batch_start_time, 1e-9)
            writer.add_scalar("batch_steps_per_second", 1.0 / elapsed, step)
        for name, value in (logs or {}).items():
            if _is_scalar(value):
                writer.add_scalar(f"batch_{name}", float(value), step)

    def on_test_end(self, logs=None):
        """After an evaluation (``evaluate``, or ``fit``'s validation): its logs as
        ``evaluation_<name>_vs_iterations`` at the optimizer's update count."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or not hasattr(optimizer, "iterations") or not self._writes():
            return
        writer = self._writer("validation")
        for name, value in (logs or {}).items():
            if _is_scalar(value):
                writer.add_scalar(f"evaluation_{name}_vs_iterations", float(value),
                                  int(optimizer.iterations))
        writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        if not self._writes():
            return
        self._log_epoch_metrics(epoch, logs or {})
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        for writer in self._writers.values():
            writer.flush()

    # -- what each epoch writes -----------------------------------------------------
    def _log_epoch_metrics(self, epoch, logs):
        """``epoch_<name>``: the train entries and the learning rate in ``train``, the
        ``val_`` entries (without ``val_``) in ``validation``."""
        if not logs:
            return
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and hasattr(optimizer, "learning_rate"):
            train["learning_rate"] = _read_learning_rate(optimizer)
        if self.write_steps_per_second:
            steps = self.model.optimizer.iterations - self._epoch_start_iterations
            train["steps_per_second"] = steps / max(time.time() - self._epoch_start_time, 1e-9)
        for which, entries in (("train", train), ("validation", val)):
            for name, value in entries.items():
                if _is_scalar(value):
                    self._writer(which).add_scalar(f"epoch_{name}", float(value), epoch)

    def _log_weights(self, epoch):
        """Every weight's histogram (and image), and every trainable weight's gradient
        on the last batch, in ``train`` at step ``epoch``."""
        writer = self._writer("train")
        paths = {}
        for path, value, _ in weight_paths(self.model):
            paths[id(value)] = path
            value = np.asarray(to_host(value))
            writer.add_histogram(f"{path}/histogram", value, epoch)
            if self.write_images:
                image = weight_image(value)
                if image is not None:
                    writer.add_images(f"{path}/image", image, epoch, dataformats="NHWC")
        if self._last_step is not None:
            grads, variables = self._last_step
            for grad, variable in zip(grads, variables):
                if id(variable) in paths:
                    writer.add_histogram(f"{paths[id(variable)]}/gradient",
                                         np.asarray(to_host(grad)), epoch)

    # -- the gradients --------------------------------------------------------------
    def _tap_gradients(self):
        """Watch the optimizer's ``apply(grads, variables)``, the one place every
        training step hands over its gradients (whichever way it computed them: whole
        batch or two halves on two threads), and keep the last step's."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or not hasattr(optimizer, "apply") or self._tapped is not None:
            return
        apply = optimizer.apply

        def apply_and_keep(grads, variables):
            grads, variables = list(grads), list(variables)
            self._last_step = (grads, variables)
            return apply(grads, variables)

        optimizer.apply = apply_and_keep  # on the instance: the class's stays as it is
        self._tapped = (optimizer, apply_and_keep)

    def _untap_gradients(self):
        if self._tapped is not None:
            optimizer, tap = self._tapped
            if vars(optimizer).get("apply") is tap:
                del optimizer.apply  # the class's method again
            self._tapped = None
        self._last_step = None


def _is_scalar(value):
    return getattr(value, "ndim", 0) == 0 and isinstance(value, (int, float, np.number)) \
        and not isinstance(value, bool)


def _checked_profile_batch(profile_batch):
    """Keras's check of ``profile_batch``: a non-negative int, a pair ``(start, stop)``
    of positive ints or the string ``"start,stop"``; returns ``(start, stop)`` or 0."""
    message = ("profile_batch must be a non-negative integer or 2-tuple of positive "
               "integers. A pair of positive integers signifies a range of batches to "
               f"profile. Found: {profile_batch}")
    value = profile_batch
    if isinstance(value, str):
        try:
            value = [int(part) for part in value.split(",")]
        except ValueError:
            raise ValueError(message) from None
        value = value[0] if len(value) == 1 else value
    if isinstance(value, int) and not isinstance(value, bool):
        start = stop = value
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        start, stop = value
    else:
        raise ValueError(message)
    if start < 0 or stop < start:
        raise ValueError(message)
    return 0 if start == stop == 0 else (start, stop)

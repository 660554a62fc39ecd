"""A stand-in for ``tensorflow.summary`` under Keras 3's TensorBoard callback: it records
what the callback would write, so that minicnn's callback can be compared with Keras's
own without installing TensorFlow (tests/test_tensorboard.py)."""
import contextlib
import json
import os
import sys
import types

import numpy as np


class SummaryRecorder(types.ModuleType):
    """Stands in for ``tensorflow.summary`` as Keras's callback uses it (file writers
    made default with a step, ``record_if``, scalar/histogram/image/write) and records
    ``(directory, kind, tag, value, step)`` for each summary that would be written."""

    def __init__(self):
        super().__init__("tensorflow.summary")
        self.records, self._default, self._conditions = [], [], []
        self.experimental = types.SimpleNamespace(summary_scope=self._scope)

    @contextlib.contextmanager
    def _scope(self, name, default_name=None, values=None):
        yield name, name

    @contextlib.contextmanager
    def _pushed(self, stack, item):
        stack.append(item)
        try:
            yield
        finally:
            stack.pop()

    def create_file_writer(self, logdir):
        writer = types.SimpleNamespace(logdir=logdir, flush=lambda: None, close=lambda: None)
        writer.as_default = lambda step=None: self._pushed(self._default, (writer, step))
        return writer

    def record_if(self, condition):
        return self._pushed(self._conditions, condition)

    def _write(self, kind, tag, value, step):
        if not self._default or (self._conditions and not self._conditions[-1]()):
            return False  # as TensorFlow: no default writer, or not recording now
        writer, default_step = self._default[-1]
        step = int(np.asarray(default_step if step is None else step))
        self.records.append((os.path.basename(writer.logdir), kind, tag, value, step))
        return True

    def scalar(self, name, data, step=None):
        return self._write("scalar", name, float(np.asarray(data)), step)

    def histogram(self, name, data, step=None, buckets=None):
        return self._write("histogram", name, np.array(data), step)

    def image(self, name, data, step=None, max_outputs=3):
        return self._write("image", name, np.array(data), step)

    def write(self, tag, tensor, step=None, metadata=None):
        return self._write("tensor", tag, json.loads(tensor), step)


def record_keras_summaries(keras, monkeypatch):
    """Install the recorder as ``tensorflow`` until ``monkeypatch`` is undone (Keras's
    cached look-up of TensorFlow is put back too; TensorBoard's reader, which would
    take it for TensorFlow, must not run meanwhile)."""
    from keras.src.utils import module_utils
    recorder = SummaryRecorder()
    tf = types.ModuleType("tensorflow")
    tf.summary = recorder
    for name in ("TensorShape", "DType", "TypeSpec"):  # what Keras's JSON checks for
        setattr(tf, name, type(name, (), {}))
    tf.compat = types.ModuleType("tensorflow.compat")
    tf.compat.v1 = types.ModuleType("tensorflow.compat.v1")
    tf.compat.v1.SummaryMetadata = lambda: types.SimpleNamespace(
        plugin_data=types.SimpleNamespace(plugin_name=None, content=None))
    for name, module in (("tensorflow", tf), ("tensorflow.summary", recorder),
                         ("tensorflow.compat", tf.compat),
                         ("tensorflow.compat.v1", tf.compat.v1)):
        monkeypatch.setitem(sys.modules, name, module)
    for attribute in ("module", "_available"):
        monkeypatch.setattr(module_utils.tensorflow, attribute,
                            getattr(module_utils.tensorflow, attribute))
    return recorder

"""A model's files: the methods that save it and the function that loads it.

The formats live elsewhere: minicnn's own archive in ``minicnn.saving``, Keras's in
``minicnn.keras_files``, and what every loader checks in ``minicnn.file_checks`` and
``minicnn.loading``.
"""
import os

import numpy as np

from . import keras_files, keras_reading, loading, saving


class FileMethods:
    """save, save_weights, load_weights and the random state kept in files, for
    ``Model``."""

    def get_config(self):
        """The architecture as JSON: a Sequential model's layers in order; a functional
        model's layers, and its ``nodes``: each call of a layer in the order they run,
        with the tensors it was called on (``{"input": i}``, or ``{"layer": name}`` /
        ``{"layer": name, "call": k}`` for what the layer's first / k-th call made)."""
        entries = [{"class_name": type(layer).__name__,
                    "config": dict(layer.get_config(), **(
                        {} if layer.trainable else {"trainable": False}))}
                   for layer in self._layers]
        if type(self).__name__ == "Sequential":
            return {"name": self.name, "input_shape": list(self._sample_in or []),
                    "layers": entries}
        graph = self._graph
        call = graph.call  # each node's place among its layer's calls (shared: several)

        def ref(tensor):
            if tensor.node is None:
                return {"input": [id(t) for t in graph.inputs].index(id(tensor))}
            k = call[id(tensor.node)]
            return {"layer": tensor.node.layer.name, **({"call": k} if k else {})}
        nodes = [{"layer": node.layer.name, "inbound": [ref(t) for t in node.inputs],
                  "multi": node.multi} for node in graph.nodes]
        return {"name": self.name, "functional": True,
                "inputs": [list(t.shape[1:]) for t in graph.inputs],
                "input_names": [t.name for t in graph.inputs],
                "layers": entries, "nodes": nodes, "outputs": [ref(t) for t in graph.outputs],
                "single_output": self._single_output}

    def save_weights(self, path):
        """Write every layer's weights to ``path`` (exactly that name), atomically: a
        Keras 3 weights file for ``.weights.h5`` (with the optimizer's state, as Keras
        writes it), minicnn's own format for other suffixes (not ``.h5`` or ``.keras``)."""
        self._require_built("save_weights()")
        if keras_files.write(self, path, "save_weights"):
            return
        header = {"kind": "weights",
                  "layers": [[layer.name, [list(w.shape) for w in layer.weights]]
                             for layer in self._layers]}
        saving.write_archive(path, header, saving.indexed("weights", self.get_weights()))

    def load_weights(self, path):
        """Load weights written by ``save_weights`` or ``save``: minicnn's files, Keras 3's
        ``.weights.h5`` and ``.keras`` (with the optimizer's state where they hold one and
        the model is compiled); shapes must match."""
        self._require_built("load_weights()")
        if keras_files.keras_format(path) in ("weights.h5", "keras"):
            return keras_reading.load_weights(self, path)
        loading.load_npz_weights(self, path)

    def save(self, path):
        """Architecture, weights and optimizer state in one file (exactly ``path``): a
        Keras 3 archive for ``.keras``, minicnn's own format for other suffixes (which
        also keeps the random state of training, so resuming from it is exact)."""
        self._require_built("save()")
        if keras_files.write(self, path, "save"):
            return
        header = {"kind": "model", "model": self.get_config()}
        arrays = saving.indexed("weights", self.get_weights())
        if self.loss is not None:
            def entry(loss):
                return None if loss is None else {"class_name": type(loss).__name__,
                                                  "config": loss.get_config()}
            objectives = self._objectives
            header["compile"] = {
                "optimizer": {"class_name": type(self.optimizer).__name__,
                              "config": self.optimizer.get_config()},
                "loss": entry(self.loss) if self._single_output else
                [entry(o.loss) for o in objectives],
                "metrics": objectives[0].metric_ids if self._single_output else
                [o.metric_ids for o in objectives],
                "loss_weights": [o.weight for o in objectives]}
            state = self.optimizer.get_state()
            header["compile"]["iterations"] = state.pop("iterations")
            header["compile"]["scalars"] = {name: state.pop(name)
                                            for name in self.optimizer.keras_scalars}
            for slot, values in state.items():
                arrays.update(saving.indexed(f"optimizer/{slot}", values))
        header["random"] = self._random_state()
        saving.write_archive(path, header, arrays)

    def _random_state(self):
        """Where the random streams of training stand: the shuffling generator (and the
        seed it came from) and every seeded Dropout's generator, so that training
        resumed from a file draws what it would have drawn without the break."""
        return {"shuffle": None if self._shuffle_rng is None else
                {"seed": self._shuffle_seed, "state": self._shuffle_rng.bit_generator.state},
                "layers": {layer.name: layer._rng.bit_generator.state for layer in self.layers
                           if getattr(layer, "_rng", None) is not None}}

    def _set_random_state(self, saved, path):
        saved = saved or {}
        layers = saved.get("layers") if isinstance(saved, dict) else None
        if not isinstance(saved, dict) or not isinstance(layers or {}, dict):
            raise ValueError(f"{os.fspath(path)!r}: its random state is not a JSON object")
        shuffle = saved.get("shuffle")
        if shuffle is not None:
            if not isinstance(shuffle, dict) or not isinstance(shuffle.get("seed"),
                                                               (int, type(None))):
                raise ValueError(f"{os.fspath(path)!r}: its shuffling state is not valid")
            self._shuffle_rng = _generator(shuffle.get("state"), path)
            self._shuffle_seed = shuffle.get("seed")
        for layer in self.layers:
            state = (layers or {}).get(layer.name)
            if state is not None and getattr(layer, "_rng", None) is not None:
                layer._rng = _generator(state, path)


def load_model(path):
    """Rebuild a model saved with ``Sequential.save``: architecture, weights, and
    (if it was compiled) optimizer state, so training resumes exactly. Also opens
    Keras 3's ``.keras`` archives and legacy Keras ``.h5`` model files of Sequential
    models made of the layers minicnn has (see ``minicnn.keras_files``)."""
    fmt = keras_files.keras_format(path)
    if fmt == "keras":
        return keras_reading.load_keras(path)
    if fmt == "h5":
        return keras_reading.load_legacy_h5(path)
    if fmt == "weights.h5":
        raise ValueError(f"{os.fspath(path)!r} holds weights only: build the model and call "
                         f"load_weights")
    return loading.load_npz_model(path)


# the NumPy bit generators a file may name; anything else is refused, never looked up
_BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM,
                   "Philox": np.random.Philox, "SFC64": np.random.SFC64,
                   "MT19937": np.random.MT19937}


def _generator(state, path):
    """A NumPy Generator continuing from a saved ``bit_generator.state``."""
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    if kind not in _BIT_GENERATORS:
        raise ValueError(f"{path!r}: unknown random generator {kind!r} in the file "
                         f"(known: {sorted(_BIT_GENERATORS)})")
    bits = _BIT_GENERATORS[kind]()
    try:
        bits.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{path!r}: invalid {kind} generator state ({exc})") from None
    return np.random.Generator(bits)

"""The model's engine: a graph of layers, run forward and backward.

A model is a directed acyclic graph: each ``Node`` (``minicnn.graph``) is one layer
called on the tensors other nodes produced. ``Graph`` puts the nodes in an order in
which every node comes after the nodes that feed it (a topological order), and then

- **forward** runs the nodes in that order, each on the values its inputs hold;
- **backward** runs them in reverse, each handing every input the gradient of the
  loss with respect to that input. A tensor that feeds several layers (a residual
  connection's ``x`` feeds both the block and the shortcut) receives one gradient
  from each of them, and *adds* them: the loss depends on ``x`` through every path,
  and the chain rule sums over paths. That sum is the whole difference between
  backprop through a chain and through a graph.

A layer called more than once (a shared layer: the same weights applied to two
tensors, as in a siamese network) has one node per call. Forward keeps each call's
cache aside, backward hands it back before that call's backward pass, and the
weights' gradient is the sum over the calls.

A relu that is all that reads a batch normalization's output (``Activation("relu")``
or a plain ``ReLU()`` after ``BatchNormalization``, the usual conv -> BN -> relu
block) runs inside the batch normalization's own pass (``_relu_after``): forward,
the normalization applies it as it writes its output and the relu's node passes that
output on; backward, the relu's node passes the gradient down and the normalization
takes it back through the relu. The same numbers, two passes over the activations
fewer. Not while ``observe`` watches each node (``trace`` sees every layer's own
output).

``Sequential`` is the graph whose nodes form one chain (``minicnn.models``); the same
two walks run it. ``layers=`` lets a caller run the graph through substitutes of the
model's layers (copies sharing its weights: the two-thread training step).
"""


class Graph:
    """The nodes between ``inputs`` and ``outputs`` (KerasTensors), in topological
    order; ``layers`` the distinct layers in the order their nodes run."""

    def __init__(self, inputs, outputs, owner="Model"):
        self.inputs, self.outputs = list(inputs), list(outputs)
        known = {id(t) for t in self.inputs}
        order, state = [], {}   # state: 1 while a node's inputs are visited, 2 when done
        first_seen = {}         # depth-first visiting order, as Keras counts it
        for output in self.outputs:
            stack = [(output.node, False)] if output.node is not None else []
            if output.node is None and id(output) not in known:
                raise ValueError(f"{owner}: output {output.name} is an input that is not "
                                 f"among the model's inputs")
            while stack:
                node, expanded = stack.pop()
                if isinstance(node, _Input):  # an input met by the walk: Keras counts it
                    first_seen.setdefault(("input", id(node.tensor)), len(first_seen))
                    continue
                if expanded:
                    state[id(node)] = 2
                    order.append(node)
                    continue
                if state.get(id(node)) == 2:
                    continue
                if state.get(id(node)) == 1:
                    raise ValueError(f"{owner}: the graph has a cycle through "
                                     f"{node.layer._who()}")
                state[id(node)] = 1
                first_seen.setdefault(id(node), len(first_seen))
                stack.append((node, True))
                for tensor in reversed(node.inputs):
                    if tensor.node is None:
                        if id(tensor) not in known:
                            raise ValueError(
                                f"{owner}: {node.layer._who()} depends on the input "
                                f"{tensor.name}, which is not among the model's inputs "
                                f"{[t.name for t in self.inputs]}")
                        stack.append((_Input(tensor), False))
                    elif state.get(id(tensor.node)) != 2:
                        stack.append((tensor.node, False))
        # Keras's order: by depth (the longest path to an output) from the deepest, ties
        # in the order the depth-first walk met them; still topological, since a node's
        # inputs are deeper than the node.
        depth = {id(node): 0 for node in order}
        for node in reversed(order):
            for tensor in node.inputs:
                if tensor.node is not None:
                    depth[id(tensor.node)] = max(depth[id(tensor.node)], depth[id(node)] + 1)
        self.nodes = sorted(order, key=lambda n: (-depth[id(n)], first_seen[id(n)]))
        # where Keras lists the input layers among the layers: by the same rule, an
        # input one deeper than the deepest node reading it
        reads = {}
        for node in order:
            for tensor in node.inputs:
                if tensor.node is None:
                    reads[id(tensor)] = max(reads.get(id(tensor), 0), depth[id(node)] + 1)
        ranked = [((-depth[id(n)], first_seen[id(n)]), n.layer) for n in self.nodes] + [
            ((-reads.get(id(t), 0), first_seen.get(("input", id(t)), len(first_seen) + i)), t)
            for i, t in enumerate(self.inputs)]
        # Keras's model.layers: input layers among the rest, a shared layer once
        self.keras_layers, listed = [], set()
        for _, item in sorted(ranked, key=lambda pair: pair[0]):
            layer = item.input_layer if item in self.inputs else item
            if layer is not None and id(layer) not in listed:
                listed.add(id(layer))
                self.keras_layers.append(layer)
        self.layers, calls = [], {}
        self.call = {}  # each node's place among its layer's calls (Keras's node index)
        for node in self.nodes:
            if id(node.layer) not in calls:
                self.layers.append(node.layer)
            self.call[id(node)] = calls.get(id(node.layer), 0)
            calls[id(node.layer)] = self.call[id(node)] + 1
        # layers called more than once (shared: one set of weights, several calls);
        # each call's cache is kept aside in ``_saved`` between the two walks
        self.shared = {key for key, count in calls.items() if count > 1}
        self._saved = {}
        # the node making each tensor (None: a model input), to know which nodes a
        # training step's backward pass can leave out (``_quiet``)
        self._feeders = {id(node): [t.node for t in node.inputs] for node in self.nodes}
        readers = {}  # id(tensor) -> the nodes that read it
        for node in self.nodes:
            for tensor in node.inputs:
                readers.setdefault(id(tensor), []).append(node)
        self._read = set(readers)
        # batch normalizations whose output only a relu reads: id(node) -> the relu's node
        outputs = {id(t) for t in self.outputs}
        self._relu_after = {}
        for node in self.nodes:
            following = readers.get(id(node.output), [])
            if (len(following) == 1 and id(node.output) not in outputs
                    and _folds_relu(node, following[0], self.shared)):
                self._relu_after[id(node)] = following[0]
        self._relu_folded = {id(node) for node in self._relu_after.values()}

    def consumed(self, tensor):
        """Whether a node of the graph reads ``tensor`` (an output may also feed layers)."""
        return id(tensor) in self._read

    def _substitutes(self, layers):
        if layers is None or layers is self.layers:
            return {}
        return {id(mine): theirs for mine, theirs in zip(self.layers, layers)}

    def forward(self, xs, training=False, layers=None, observe=None):
        """The outputs' values (a list) for the inputs' values ``xs`` (a list).
        ``observe(node, output)``, if given, sees each node's output (``trace``)."""
        use = self._substitutes(layers)
        values = {id(t): x for t, x in zip(self.inputs, xs)}
        fold = observe is None
        for node in self.nodes:
            if fold and id(node) in self._relu_folded:  # applied by the normalization
                values[id(node.output)] = values[id(node.inputs[0])]
                continue
            layer = use.get(id(node.layer), node.layer)
            args = [values[id(t)] for t in node.inputs]
            folds = fold and id(node) in self._relu_after
            if folds:
                layer._relu_next = True  # read by this one call only
            try:
                values[id(node.output)] = layer.forward(args if node.multi else args[0],
                                                        training=training)
            finally:
                if folds:
                    layer._relu_next = False
            if id(node.layer) in self.shared:
                self._saved[id(layer), id(node)] = layer.call_state()
            if observe is not None:
                observe(node, values[id(node.output)])
        return [values[id(t)] for t in self.outputs]

    def backward(self, grads, from_logits=False, input_gradient=True, layers=None,
                 observe=None):
        """From ``grads`` (dL/d each output, a list; None for an output without a loss)
        back to dL/d each input (a list; None where ``input_gradient=False`` let the
        first layers skip it). ``from_logits`` (a list, one flag per output): True
        where that output's gradient is dL/d(softmax input) of the layer making it
        (the fused softmax + cross-entropy; that output feeds no other layer).
        ``observe(node, grad, fused, dx)``, if given, sees the gradient arriving at each
        node and what it passes down (``trace``)."""
        use = self._substitutes(layers)
        quiet = set() if input_gradient else self._quiet(use)
        pending, fused, summed = {}, set(), {}
        for tensor, grad, logits in zip(self.outputs, grads, from_logits):
            if grad is not None:
                _accumulate(pending, tensor, grad)
                if logits:
                    fused.add(id(tensor))
        for node in reversed(self.nodes):
            layer = use.get(id(node.layer), node.layer)
            grad = pending.pop(id(node.output), None)
            if grad is None or id(node) in quiet:  # feeds no output that has a gradient,
                continue                           # or nothing below it needs one
            if id(node) in self._relu_folded:
                below = self._feeders[id(node)][0]
                if use.get(id(below.layer), below.layer).relu_applied():
                    _accumulate(pending, node.inputs[0], grad)  # it takes the relu back
                    continue
            shared = id(node.layer) in self.shared
            if shared:  # this call's cache, kept aside by forward
                layer.restore_call_state(self._saved.pop((id(layer), id(node))))
            if id(node.output) in fused:
                dx = layer.backward_from_logits(grad)
            else:
                dx = layer.backward(grad, input_gradient=input_gradient or any(
                    f is not None and id(f) not in quiet for f in self._feeders[id(node)]))
            if shared and layer._grads is not None:
                # a shared layer's weights get the sum of every call's gradients: the
                # same chain rule as a tensor feeding several layers, one level down
                before = summed.get(id(layer))
                summed[id(layer)] = (layer, list(layer._grads) if before is None else
                                     [a + b for a, b in zip(before[1], layer._grads)])
            if observe is not None:
                observe(node, grad, id(node.output) in fused, dx)
            for tensor, d in zip(node.inputs, dx if node.multi else [dx]):
                if d is not None:
                    _accumulate(pending, tensor, d)
        for layer, grads in summed.values():
            layer._grads = grads
        return [pending.get(id(t)) for t in self.inputs]

    def _quiet(self, use):
        """The nodes a training step need not walk back through: those with no
        trainable weights whose inputs come only from the model's inputs or from such
        nodes (augmentation layers in front of the first convolution, say). A node
        reading only quiet nodes computes no dL/dinput either."""
        quiet = set()
        for node in self.nodes:
            layer = use.get(id(node.layer), node.layer)
            if (not getattr(layer, "trainable_weights", True)
                    and all(f is None or id(f) in quiet for f in self._feeders[id(node)])):
                quiet.add(id(node))
        return quiet

    def release(self):
        """Forget the caches kept aside for shared layers' calls."""
        self._saved.clear()


def _folds_relu(node, following, shared):
    """Whether ``following`` (the only reader of ``node``'s output) is a plain relu that
    ``node``, a batch normalization called once, can apply itself."""
    norm, relu = node.layer, following.layer
    if (type(norm).__name__ != "BatchNormalization" or following.multi
            or id(norm) in shared or id(relu) in shared or relu.dtype != norm.dtype
            or relu._activity_regularizer is not None):
        return False
    if type(relu).__name__ == "Activation":
        return relu.activation == "relu"
    return (type(relu).__name__ == "ReLU" and relu.max_value is None
            and relu.negative_slope == 0 and relu.threshold == 0)


class _Input:
    """An input tensor on the depth-first walk's stack (it has no node to expand)."""

    def __init__(self, tensor):
        self.tensor = tensor


def _accumulate(pending, tensor, grad):
    """dL/dtensor += grad: one term per path from the tensor to the loss. A new array,
    never in place: a layer may hand the same array to several inputs (Add does)."""
    key = id(tensor)
    pending[key] = grad if key not in pending else pending[key] + grad

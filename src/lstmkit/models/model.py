"""``Model``: the Keras-style model — functional graphs, subclassing, and training.

Three ways to build one, as in Keras:

* **Sequential**: ``Sequential([Embedding(...), LSTM(...), Dense(...)])`` (see ``sequential.py``);
* **functional**: ``Model(inputs, outputs)`` over symbolic tensors from ``Input`` — several
  inputs and outputs, shared layers, ``initial_state=`` links (an encoder–decoder);
* **subclassing**: ``class M(Model)`` with layers as attributes and ``call(self, inputs,
  training=None)``.

Every model trains with ``compile`` / ``fit`` / ``evaluate`` / ``predict`` and saves to one safe
file with ``save`` (see ``saving.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor, nn

from lstmkit.layers import base as layer_base
from lstmkit.layers import register_layer
from lstmkit.layers.base import InputLayer, Layer, Node, SymbolicTensor, map_structure
from lstmkit.training import callbacks as callbacks_mod
from lstmkit.training import trainer as trainer_mod
from lstmkit.training.state import TrainingState

_MODEL_REGISTRY: dict[str, type] = {}


def register_model(cls: type) -> type:
    """Make a ``Model`` subclass loadable from model files (files store class names, never
    code). Use as a decorator on subclassed models that implement ``get_config``."""
    _MODEL_REGISTRY[cls.__name__] = cls
    register_layer(cls)  # usable inside other models' configs too
    return cls


class Model(Layer):
    """A trainable network of layers.

    Functional construction: ``Model(inputs, outputs, name=None)`` where ``inputs`` and
    ``outputs`` are symbolic tensors (or lists / dicts of them).

    Attributes:
        layers: the model's layers in order (input layers excluded).
        optimizer: the compiled optimiser (after ``compile``).
        history: the last ``fit``'s :class:`~lstmkit.training.callbacks.History`.
        assets: a JSON-serialisable dict saved with the model (e.g. a tokenizer's config).
    """

    def __init__(self, inputs: Any = None, outputs: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._trainer: trainer_mod.Trainer | None = None
        self.stop_training = False
        self.history: callbacks_mod.History | None = None
        self.assets: dict[str, Any] = {}
        self._functional = False
        if (inputs is None) != (outputs is None):
            raise ValueError(
                "Model: give both inputs and outputs (functional API), or neither (subclassing)"
            )
        if inputs is not None:
            self._init_graph(inputs, outputs)

    # -- the functional graph ----------------------------------------------------------------

    def _init_graph(self, inputs: Any, outputs: Any) -> None:
        flat_in = layer_base._flatten(inputs)
        flat_out = layer_base._flatten(outputs)
        for t in flat_in + flat_out:
            if not isinstance(t, SymbolicTensor):
                raise TypeError(
                    f"Model: inputs and outputs must be symbolic tensors (from "
                    f"lstmkit.layers.Input and layer calls), got {type(t).__name__}"
                )
        for t in flat_in:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"Model: every input must come from Input(...), got {t}")
        self._inputs_struct, self._outputs_struct = inputs, outputs
        self._input_tensors, self._output_tensors = flat_in, flat_out
        # Topological order of the nodes between inputs and outputs.
        order: list[Node] = []
        seen: set[int] = set()

        def visit(t: SymbolicTensor, path: tuple[int, ...]) -> None:
            node = t.node
            if id(node) in path:
                raise ValueError("Model: the graph has a cycle")
            if id(node) in seen:
                return
            for parent in node.inputs():
                visit(parent, (*path, id(node)))
            seen.add(id(node))
            order.append(node)

        for t in flat_out:
            visit(t, ())
        reachable_inputs = {id(n.outputs[0]) for n in order if isinstance(n.layer, InputLayer)}
        for t in flat_in:
            if id(t) not in reachable_inputs:
                raise ValueError(f"Model: input {t.name!r} is not connected to any output")
        for n in order:
            if isinstance(n.layer, InputLayer) and id(n.outputs[0]) not in {id(t) for t in flat_in}:
                raise ValueError(
                    f"Model: output depends on input {n.layer.name!r} which is not "
                    f"in the model's inputs"
                )
        self._nodes = [n for n in order if not isinstance(n.layer, InputLayer)]
        self._input_layers = [t.node.layer for t in flat_in]
        layers: dict[str, Layer] = {}
        for n in self._nodes:
            existing = layers.get(n.layer.name)
            if existing is not None and existing is not n.layer:
                raise ValueError(
                    f"Model: two different layers are named {n.layer.name!r}; "
                    f"layer names must be unique"
                )
            layers[n.layer.name] = n.layer
        self._layers = nn.ModuleDict(layers)
        self._functional = True
        self.built = True
        self.output_names = [t.node.layer.name for t in flat_out]
        self.input_names = [layer.name for layer in self._input_layers]

    def _run_graph(self, inputs: Any, training: bool | None) -> Any:
        values: dict[int, Any] = {}
        if isinstance(inputs, dict):
            missing = set(self.input_names) - set(inputs)
            if missing:
                raise ValueError(
                    f"{self.name}: missing input(s) {sorted(missing)}; expected {self.input_names}"
                )
            given = [inputs[name] for name in self.input_names]
        elif len(self._input_tensors) == 1:
            given = [
                inputs[0] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 else inputs
            ]
        else:
            if not isinstance(inputs, (list, tuple)) or len(inputs) != len(self._input_tensors):
                got = len(inputs) if isinstance(inputs, (list, tuple)) else 1
                raise ValueError(
                    f"{self.name}: expected {len(self._input_tensors)} inputs "
                    f"({', '.join(self.input_names)}), got {got}"
                )
            given = list(inputs)
        for t, v in zip(self._input_tensors, given):
            v = layer_base.to_tensor(v, layer=self.name)
            if isinstance(v, Tensor) and v.dim() != len(t.shape):
                raise ValueError(
                    f"{self.name}: input {t.name!r} expects shape {t.shape}, got {tuple(v.shape)}"
                )
            values[id(t)] = v

        def sub(obj: Any) -> Any:
            return values[id(obj)] if isinstance(obj, SymbolicTensor) else obj

        for node in self._nodes:
            args = map_structure(sub, node.args)
            kwargs = {k: map_structure(sub, v) for k, v in node.kwargs.items()}
            if "training" in node.layer._call_params() and "training" not in kwargs:
                kwargs["training"] = training
            out = node.layer(*args, **kwargs)
            outs = out if isinstance(out, (list, tuple)) else [out]
            for sym, real in zip(node.outputs, outs):
                values[id(sym)] = real
        return map_structure(lambda t: values[id(t)], self._outputs_struct)

    # -- calling -----------------------------------------------------------------------------

    def forward(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        if self._functional:
            return self._run_graph(inputs, training)
        call = getattr(self, "call", None)
        if call is None:
            raise NotImplementedError(
                f"{type(self).__name__}: a subclassed Model must define call(self, inputs, "
                f"training=None)"
            )
        params = layer_base._signature(call)
        kwargs: dict[str, Any] = {}
        if "training" in params:
            kwargs["training"] = training
        if "mask" in params and mask is not None:
            kwargs["mask"] = mask
        return call(inputs, **kwargs)

    def _call_params(self) -> dict[str, Any]:
        return {"inputs": None, "training": None, "mask": None}

    def _maybe_build(self, inputs: Any) -> None:
        if not self.built:
            self.build_from_data(inputs)

    def build_from_data(self, inputs: Any) -> None:
        """Mark a subclassed model built at its first call, before that call runs (its layers
        then build lazily inside it), and keep the input's shape and dtype so that a saved model
        can be rebuilt the same way (Keras's ``build_config``). Runs nothing itself."""
        if isinstance(inputs, Tensor):
            self._build_spec = {
                "shape": [None, *inputs.shape[1:]],
                "dtype": layer_base._dtype_name(inputs.dtype),
            }
        self.built = True

    @property
    def layers(self) -> list[Layer]:
        if self._functional or "_layers" in self._modules:
            return list(self._layers.values())
        return [m for m in self.children() if isinstance(m, Layer)]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name or by index (Keras's ``get_layer``)."""
        layers = self.layers
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise ValueError(
                    f"{self.name}: layer index {index} out of range "
                    f"(model has {len(layers)} layers)"
                )
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"{self.name}: no layer named {name!r}; layers: "
            f"{', '.join(layer.name for layer in layers)}"
        )

    @property
    def is_chief(self) -> bool:
        """Whether this process writes files (False on non-zero ranks of distributed runs)."""
        return self._trainer.strategy.is_chief if self._trainer is not None else True

    # -- training API (Keras 3) ------------------------------------------------------------

    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        loss_weights: Any = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: Any = "auto",
        auto_scale_loss: bool = True,
        device: Any = None,
    ) -> None:
        """Configure training: optimiser, loss(es), metrics (names or objects, as Keras).

        ``run_eagerly``, ``steps_per_execution``, ``jit_compile`` and ``auto_scale_loss`` are
        accepted for compatibility (lstmkit always runs eagerly on torch). ``device`` overrides
        the automatic choice (CUDA when available, else CPU).
        """
        self._trainer = trainer_mod.Trainer(
            self, optimizer, loss, loss_weights, metrics, weighted_metrics, device
        )

    @property
    def compiled(self) -> bool:
        return self._trainer is not None

    @property
    def optimizer(self) -> Any:
        return self._trainer.optimizer if self._trainer is not None else None

    def _require_compiled(self, what: str) -> trainer_mod.Trainer:
        if self._trainer is None:
            raise RuntimeError(f"{self.name}: you must call compile() before {what}()")
        return self._trainer

    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: Sequence[Any] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: dict | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int = 1,
    ) -> callbacks_mod.History:
        """Train for ``epochs`` epochs (Keras 3's ``fit``); returns the ``History``."""
        return self._require_compiled("fit").fit(
            x,
            y,
            batch_size,
            epochs,
            verbose,
            callbacks,
            validation_split,
            validation_data,
            shuffle,
            class_weight,
            sample_weight,
            initial_epoch,
            steps_per_epoch,
            validation_steps,
            validation_batch_size,
            validation_freq,
        )

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Sequence[Any] | None = None,
        return_dict: bool = False,
    ) -> Any:
        """Loss and metrics on ``(x, y)``: a scalar, a list ``[loss, *metrics]`` or a dict."""
        return self._require_compiled("evaluate").evaluate(
            x, y, batch_size, verbose, sample_weight, steps, callbacks, return_dict
        )

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: Sequence[Any] | None = None,
    ) -> Any:
        """Outputs for ``x`` in inference mode, as numpy arrays."""
        device = self._trainer.device if self._trainer is not None else None
        return trainer_mod.predict(self, x, batch_size, verbose, steps, callbacks, device)

    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: dict | None = None,
        return_dict: bool = False,
    ) -> Any:
        """One optimiser step on one batch; returns the loss (and metrics)."""
        from lstmkit.training import data as data_mod

        trainer = self._require_compiled("train_on_batch")
        batch = data_mod.adapt(x, y, sample_weight, batch_size=_n(x), class_weight=class_weight)
        xb, yb, swb = next(batch.batches(0))
        xb, yb = data_mod.move(xb, trainer.device), data_mod.move(yb, trainer.device)
        trainer._ensure_ready(xb)
        trainer.reset_metrics()
        trainer.train_step(xb, yb, data_mod.move(swb, trainer.device))
        self.eval()  # back to inference mode, as outside fit
        return _result(trainer.logs(), return_dict)

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> Any:
        """Loss (and metrics) on one batch, without updating weights."""
        from lstmkit.training import data as data_mod

        trainer = self._require_compiled("test_on_batch")
        batch = data_mod.adapt(x, y, sample_weight, batch_size=_n(x))
        xb, yb, swb = next(batch.batches(0))
        xb, yb = data_mod.move(xb, trainer.device), data_mod.move(yb, trainer.device)
        trainer._ensure_ready(xb)
        trainer.reset_metrics()
        trainer.test_step(xb, yb, data_mod.move(swb, trainer.device))
        return _result(trainer.logs(), return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """Outputs for one batch, as numpy arrays."""
        return self.predict(x, batch_size=_n(x), verbose=0)

    # -- summary, saving --------------------------------------------------------------------

    def summary(self, line_length: int | None = None, print_fn: Any = None) -> str:
        """Print (and return) the Keras-style table of layers, output shapes and parameters."""
        from lstmkit.models.summary import summary_text

        text = summary_text(self, line_length)
        (print_fn or print)(text)
        return text

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(
                f"{self.name}: the model is not built yet; call it on data, or "
                f"build(input_shape), first"
            )
        return sum(p.numel() for p in self.parameters())

    def save(self, filepath: Any, overwrite: bool = True, include_optimizer: bool = True) -> None:
        """Write the model (config, weights, optimiser state, assets) to one file, atomically."""
        from lstmkit.models.saving import save_model

        save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath: Any, overwrite: bool = True) -> None:
        """Write the weights only (safetensors), atomically."""
        from lstmkit.models.saving import save_weights

        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: Any, *, allow_nonfinite: bool = False) -> None:
        """Load weights saved by :meth:`save_weights` or :meth:`save` (never unpickles; NaN or
        infinite weights are refused unless ``allow_nonfinite``)."""
        from lstmkit.models.saving import load_weights

        load_weights(self, filepath, allow_nonfinite=allow_nonfinite)

    # -- training state (what BackupAndRestore saves and restores) ---------------------------

    @property
    def training_state(self) -> TrainingState | None:
        """Where the current (or last) ``fit`` started: epoch, batch, data-order seed, number
        of processes; ``None`` before the first ``fit``. See :mod:`lstmkit.training.state`."""
        return self._trainer.state if self._trainer is not None else None

    def save_training_state(self, filepath: Any, state: TrainingState) -> None:
        """Write a backup, atomically: the model file (weights, optimiser state) plus ``state``
        and every random generator's state; :meth:`load_training_state` resumes from it."""
        from lstmkit.models.saving import save_training_state

        save_training_state(self, filepath, state)

    def load_training_state(self, filepath: Any) -> TrainingState:
        """Restore weights, optimiser state and random generators from a backup of this model
        and make the running ``fit`` continue from its position (call it from
        ``on_train_begin``). Returns the restored :class:`TrainingState` (``resumed=True``).

        Raises:
            ModelFileError: a damaged backup, one of another model, or one written by another
                number of processes.
        """
        from lstmkit.models.saving import restore_training_state

        trainer = self._require_compiled("load_training_state")
        state = restore_training_state(self, filepath, world_size=trainer.strategy.world_size)
        trainer.state = state
        return state

    def get_weights(self) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for layer in self.layers:
            out.extend(layer.get_weights())
        return out

    def set_weights(self, weights: list[Any]) -> None:
        weights = list(weights)
        for layer in self.layers:
            n = len(layer.get_weights())
            layer.set_weights(weights[:n])
            weights = weights[n:]
        if weights:
            raise ValueError(
                f"{self.name}: set_weights got {len(weights)} more arrays than the "
                f"model has weights"
            )

    # -- config ---------------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        if not self._functional:
            raise NotImplementedError(
                f"{type(self).__name__}: a subclassed model must implement get_config() (and be "
                f"registered with lstmkit.models.register_model) to be saved whole; "
                f"save_weights() works without it"
            )
        from lstmkit.layers import serialize

        index = {id(n): i for i, n in enumerate(self._nodes)}
        input_index = {id(t): i for i, t in enumerate(self._input_tensors)}

        def ref(obj: Any) -> Any:
            if isinstance(obj, SymbolicTensor):
                if id(obj) in input_index:
                    return {"__input__": input_index[id(obj)]}
                return {"__node__": [index[id(obj.node)], obj.index]}
            if isinstance(obj, Tensor):
                raise ValueError(
                    f"{self.name}: a constant tensor in a layer call cannot be saved in the config"
                )
            return obj

        layers = [serialize(layer) for layer in self._layers.values()]
        nodes = [
            {
                "layer": n.layer.name,
                "args": map_structure(ref, list(n.args)),
                "kwargs": {k: map_structure(ref, v) for k, v in n.kwargs.items()},
            }
            for n in self._nodes
        ]
        return {
            "name": self.name,
            "trainable": self.trainable,
            "inputs": [layer.get_config() for layer in self._input_layers],
            "input_structure": _structure(self._inputs_struct, self._input_tensors),
            "layers": layers,
            "nodes": nodes,
            "outputs": map_structure(ref, _as_ref_structure(self._outputs_struct)),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Model:
        from lstmkit.layers import deserialize

        if "nodes" not in config:
            return cls(**config)
        inputs = [
            layer_base.Input(batch_shape=tuple(c["batch_shape"]), dtype=c["dtype"], name=c["name"])
            for c in config["inputs"]
        ]
        layers = {spec["config"]["name"]: deserialize(spec) for spec in config["layers"]}
        produced: list[list[SymbolicTensor]] = []

        def deref(obj: Any) -> Any:
            if isinstance(obj, dict) and "__input__" in obj:
                return inputs[obj["__input__"]]
            if isinstance(obj, dict) and "__node__" in obj:
                node_i, out_i = obj["__node__"]
                return produced[node_i][out_i]
            return obj

        for node in config["nodes"]:
            args = _map_refs(deref, node["args"])
            kwargs = {k: _map_refs(deref, v) for k, v in node["kwargs"].items()}
            out = layers[node["layer"]](*args, **kwargs)
            produced.append(out if isinstance(out, list) else [out])
        outputs = _map_refs(deref, config["outputs"])
        ins: Any = _restore_structure(config["input_structure"], inputs)
        model = cls(ins, outputs, name=config["name"])
        model.trainable = config.get("trainable", True)
        return model


def _map_refs(fn: Any, obj: Any) -> Any:
    """``map_structure`` over a saved config, treating ``{"__input__"}``/``{"__node__"}``
    references as leaves (``map_structure`` would descend into them)."""
    if isinstance(obj, dict) and ("__input__" in obj or "__node__" in obj):
        return fn(obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_refs(fn, o) for o in obj)
    if isinstance(obj, dict):
        return {k: _map_refs(fn, v) for k, v in obj.items()}
    return fn(obj)


def _structure(struct: Any, flat: list[SymbolicTensor]) -> Any:
    pos = {id(t): i for i, t in enumerate(flat)}
    if isinstance(struct, SymbolicTensor):
        return {"__input__": pos[id(struct)]}
    if isinstance(struct, dict):
        return {k: {"__input__": pos[id(v)]} for k, v in struct.items()}
    return [{"__input__": pos[id(t)]} for t in struct]


def _restore_structure(spec: Any, inputs: list[SymbolicTensor]) -> Any:
    if isinstance(spec, dict) and "__input__" in spec:
        return inputs[spec["__input__"]]
    if isinstance(spec, dict):
        return {k: inputs[v["__input__"]] for k, v in spec.items()}
    return [inputs[s["__input__"]] for s in spec]


def _as_ref_structure(struct: Any) -> Any:
    if isinstance(struct, tuple):
        return list(struct)
    return struct


def _n(x: Any) -> int:
    from lstmkit.training import data as data_mod

    return data_mod.num_samples(data_mod.to_structure(x, "x"), "x")


def _result(logs: dict[str, float], return_dict: bool) -> Any:
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


register_layer(Model)  # models nest inside other models (their configs name the class)

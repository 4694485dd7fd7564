"""The training loop behind ``Model.compile/fit/evaluate/predict`` (Keras 3 semantics).

One step of ``fit``::

    y_pred = model(x, training=True)
    loss   = Σ_k w_k · loss_k(y_k, y_pred_k, sample_weight) + Σ regularisation penalties
    loss.backward(); clip; optimizer.step(); apply constraints
    update the loss tracker (weighted by batch size) and the metrics

Logs are Keras's: ``loss``, each metric by name, ``val_`` prefixed after validation, and
``<output>_loss`` / ``<output>_<metric>`` for multi-output models.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lstmkit.training import callbacks as callbacks_mod
from lstmkit.training import data as data_mod
from lstmkit.training import losses as losses_mod
from lstmkit.training import metrics as metrics_mod
from lstmkit.training import optimizers as optimizers_mod
from lstmkit.training.distributed import current_strategy
from lstmkit.training.progress import ProgressBar
from lstmkit.training.state import TrainingState
from lstmkit.training.strategy import Strategy
from lstmkit.utils import default_device


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _verbose(verbose: Any) -> int:
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def _check_fit_arguments(
    shuffle: Any,
    steps_per_epoch: Any,
    validation_steps: Any,
    validation_freq: Any,
    validation_data: Any,
    callbacks: Any,
) -> None:
    """``fit``'s arguments that would otherwise be accepted silently or fail far away."""
    if not (isinstance(shuffle, bool) or shuffle == "batch"):
        raise ValueError(f"fit: shuffle must be True, False or 'batch', got {shuffle!r}")
    data_mod.check_steps("fit: steps_per_epoch", steps_per_epoch)
    data_mod.check_steps("fit: validation_steps", validation_steps)
    if isinstance(validation_freq, bool) or not isinstance(validation_freq, int):
        raise ValueError(f"fit: validation_freq must be an integer >= 1, got {validation_freq!r}")
    if validation_freq < 1:
        raise ValueError(f"fit: validation_freq must be an integer >= 1, got {validation_freq}")
    if isinstance(validation_data, tuple | list) and len(validation_data) not in (2, 3):
        raise ValueError(
            "fit: validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight), got "
            f"a {type(validation_data).__name__} of {len(validation_data)} item(s)"
        )
    if callbacks is not None and not isinstance(callbacks, list | tuple):
        raise TypeError(
            f"fit: callbacks must be a list of Callback, got {type(callbacks).__name__}"
        )  # the items are checked by CallbackList


class Trainer:
    """Compiled training configuration of one model (created by ``Model.compile``)."""

    def __init__(
        self,
        model: Any,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        loss_weights: Any = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        device: Any = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizers_mod.get(optimizer)
        self.device = torch.device(device) if device is not None else default_device()
        self.strategy: Strategy = current_strategy(self.device)
        self.device = self.strategy.device
        self._loss_spec = loss
        self._metric_spec = metrics
        self._weighted_metric_spec = weighted_metrics
        self._loss_weights = loss_weights
        self.loss_fns: list[losses_mod.Loss] | None = None
        self.metric_objs: list[list[metrics_mod.Metric]] | None = None
        self.weighted_metric_objs: list[list[metrics_mod.Metric]] | None = None
        self.loss_tracker = metrics_mod.Mean("loss")
        self.output_loss_trackers: list[metrics_mod.Mean] = []
        if loss is None:
            raise ValueError("compile: a loss is required (e.g. loss='binary_crossentropy')")
        # Validate names now so that typos fail at compile time, as in Keras.
        for spec in loss.values() if isinstance(loss, dict) else _as_list(loss):
            losses_mod.get(spec)
        for spec in _as_list(metrics) + _as_list(weighted_metrics):
            for m in _as_list(spec):
                if isinstance(m, str) and m not in ("accuracy", "acc"):
                    metrics_mod.get(m)
        self.model.to(self.device)
        self._forward = None
        self.state: TrainingState | None = None  # the position of the current/last fit

    # -- configuration -------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """What ``compile`` was given, serialisable (names and configs, never code)."""

        def ser_loss(spec: Any) -> Any:
            return losses_mod.serialize(losses_mod.get(spec)) if not isinstance(spec, str) else spec

        loss = self._loss_spec
        loss = (
            {k: ser_loss(v) for k, v in loss.items()}
            if isinstance(loss, dict)
            else (
                [ser_loss(v) for v in loss] if isinstance(loss, (list, tuple)) else ser_loss(loss)
            )
        )

        def ser_metric(m: Any) -> Any:
            if isinstance(m, (list, tuple)):
                return [ser_metric(v) for v in m]
            if isinstance(m, dict):  # per output name
                return {k: ser_metric(v) for k, v in m.items()}
            return m if isinstance(m, str) else metrics_mod.serialize(m)

        def ser_metrics(spec: Any) -> Any:
            if spec is None:
                return None
            return ser_metric(spec if isinstance(spec, dict) else _as_list(spec))

        metrics = ser_metrics(self._metric_spec)
        weighted = ser_metrics(self._weighted_metric_spec)
        return {
            "optimizer": optimizers_mod.serialize(self.optimizer),
            "loss": loss,
            "loss_weights": self._loss_weights,
            "metrics": metrics,
            "weighted_metrics": weighted,
        }

    def _output_names(self, n: int) -> list[str]:
        names = getattr(self.model, "output_names", None)
        if names and len(names) == n:
            return list(names)
        return [f"output_{i}" for i in range(n)]

    def _resolve(self, y_true: list[Tensor | None], y_pred: list[Tensor]) -> None:
        """Create loss and metric objects once the number and shapes of outputs are known."""
        n = len(y_pred)
        names = self._output_names(n)
        spec = self._loss_spec
        if isinstance(spec, dict):
            missing = set(spec) - set(names)
            if missing:
                raise ValueError(
                    f"compile: loss given for unknown output(s) {sorted(missing)}; "
                    f"outputs are {names}"
                )
            self.loss_fns = [losses_mod.get(spec[k]) if k in spec else None for k in names]
        elif isinstance(spec, (list, tuple)):
            if len(spec) != n:
                raise ValueError(f"compile: {len(spec)} losses given for a model with {n} outputs")
            self.loss_fns = [losses_mod.get(s) for s in spec]
        else:
            self.loss_fns = [losses_mod.get(spec) for _ in range(n)]
        weights = self._loss_weights
        if weights is None:
            self.loss_weight_values = [1.0] * n
        elif isinstance(weights, dict):
            self.loss_weight_values = [float(weights.get(k, 1.0)) for k in names]
        else:
            if len(weights) != n:
                raise ValueError(f"compile: {len(weights)} loss_weights for {n} outputs")
            self.loss_weight_values = [float(w) for w in weights]
        self.metric_objs = self._metric_objects(self._metric_spec, names, y_true, y_pred)
        # Keras 3: ``metrics`` ignore sample weights; ``weighted_metrics`` use them (and
        # class_weight). A weighted metric named like a plain one gets a "weighted_" prefix.
        self.weighted_metric_objs = self._metric_objects(
            self._weighted_metric_spec, names, y_true, y_pred
        )
        taken = {m.name for objs in self.metric_objs for m in objs}
        for objs in self.weighted_metric_objs:
            for m in objs:
                if m.name in taken:
                    m.name = f"weighted_{m.name}"
        self.output_names_resolved = names
        self.output_loss_trackers = (
            [metrics_mod.Mean(f"{nm}_loss") for nm in names] if n > 1 else []
        )

    def _metric_objects(
        self, mspec: Any, names: list[str], y_true: list[Tensor | None], y_pred: list[Tensor]
    ) -> list[list[metrics_mod.Metric]]:
        n = len(names)
        per_output: list[list[Any]]
        if mspec is None:
            per_output = [[] for _ in range(n)]
        elif isinstance(mspec, dict):
            per_output = [_as_list(mspec.get(k)) for k in names]
        elif (
            n > 1
            and isinstance(mspec, (list, tuple))
            and mspec
            and all(isinstance(m, (list, tuple)) for m in mspec)
        ):
            per_output = [list(m) for m in mspec]
        else:
            # The same list for every output: each output gets its own metric objects.
            per_output = [list(_as_list(mspec)) for _ in range(n)]
            if n > 1:
                per_output = [copy.deepcopy(specs) for specs in per_output]
        out = []
        for k, specs in enumerate(per_output):
            loss_name = self.loss_fns[k].name if self.loss_fns[k] is not None else None
            objs = []
            for s in specs:
                m = metrics_mod.get(s, loss_name, y_true[k], y_pred[k])
                if n > 1:
                    m = _renamed(m, f"{names[k]}_{m.name}")
                objs.append(m)
            out.append(objs)
        return out

    # -- one step --------------------------------------------------------------------------

    def _ensure_ready(self, x: Any) -> None:
        model = self.model
        if not model.built:
            was = model.training
            model.eval()
            with torch.no_grad():
                model(data_mod.move(x, self.device))
            model.train(was)
        model.to(self.device)
        if not self.optimizer.built:
            self.optimizer.build(model.parameters())
        if self._forward is None:
            self._forward = self.strategy.wrap(model)
        self._has_constraints = any(getattr(m, "_constrained", None) for m in model.modules())
        self._has_regularizers = any(
            getattr(m, "_regularized", None) or getattr(m, "activity_regularizer", None)
            for m in model.modules()
        )

    def compute_loss(
        self, y: Any, y_pred: Any, sample_weight: Tensor | None, track: bool = True
    ) -> Tensor:
        preds = list(y_pred) if isinstance(y_pred, (list, tuple)) else [y_pred]
        trues = self._targets(y, len(preds))
        if self.loss_fns is None:
            self._resolve(trues, preds)
        total: Tensor | None = None
        for k, (fn, yt, yp, w) in enumerate(
            zip(self.loss_fns, trues, preds, self.loss_weight_values)
        ):
            if fn is None:
                continue
            if yt is None:
                raise ValueError("fit: targets y are required to compute the loss")
            value = fn(yt, yp, sample_weight)
            if track and self.output_loss_trackers:
                self.output_loss_trackers[k].update_state(value.detach(), yp.shape[0])
            total = value * w if total is None else total + value * w
        if total is None:
            raise ValueError("compile: no loss applies to any output")
        return total

    def _targets(self, y: Any, n: int) -> list[Tensor | None]:
        if y is None:
            return [None] * n
        if isinstance(y, dict):
            names = self._output_names(n)
            return [y.get(k) for k in names]
        if isinstance(y, (list, tuple)):
            if len(y) != n:
                raise ValueError(f"y: expected {n} target arrays (one per output), got {len(y)}")
            return list(y)
        if n != 1:
            raise ValueError(f"y: the model has {n} outputs; give a list of {n} target arrays")
        return [y]

    def _update_metrics(self, y: Any, y_pred: Any, sample_weight: Tensor | None) -> None:
        preds = list(y_pred) if isinstance(y_pred, (list, tuple)) else [y_pred]
        trues = self._targets(y, len(preds))
        for objs, yt, yp in zip(self.metric_objs, trues, preds):
            for m in objs:
                m.update_state(yt, yp)
        for objs, yt, yp in zip(self.weighted_metric_objs, trues, preds):
            for m in objs:
                m.update_state(yt, yp, sample_weight)

    def _all_metrics(self) -> list[metrics_mod.Metric]:
        ms: list[metrics_mod.Metric] = [self.loss_tracker, *self.output_loss_trackers]
        for objs in (self.metric_objs or []) + (self.weighted_metric_objs or []):
            ms.extend(objs)
        return ms

    def reset_metrics(self) -> None:
        for m in self._all_metrics():
            m.reset_state()

    def logs(self, prefix: str = "") -> dict[str, float]:
        """Current metric values (all-reduced across processes)."""
        ms = self._all_metrics()
        states = [t for m in ms for t in m.state_tensors()]
        if self.strategy.world_size > 1 and states:
            states = self.strategy.all_reduce_sum([s.to(self.device) for s in states])
            i = 0
            for m in ms:
                n = len(m.state_tensors())
                m.set_state_tensors(states[i : i + n])
                i += n
        return {prefix + m.name: float(m.result()) for m in ms}

    def regularization(self) -> Tensor | None:
        if not getattr(self, "_has_regularizers", True):
            return None  # nothing to add (saves walking every module at every step)
        penalties = self.model.losses
        if not penalties:
            return None
        return torch.stack([p.to(self.device) for p in penalties]).sum()

    def train_step(self, x: Any, y: Any, sample_weight: Tensor | None) -> None:
        model, opt = self.model, self.optimizer
        if not model.training:  # (walking every module at every step costs ~0.3 ms)
            model.train()
        opt.zero_grad()
        y_pred = self._forward(x, training=True)
        loss = self.compute_loss(y, y_pred, sample_weight)
        reg = self.regularization()
        total = loss if reg is None else loss + reg
        opt.scale_loss(total).backward()
        opt.step()
        if self._has_constraints:
            model.apply_constraints()
        with torch.no_grad():
            batch = _batch_size(x)
            self.loss_tracker.update_state(total.detach(), batch)
            self._update_metrics(y, y_pred, sample_weight)

    @torch.no_grad()
    def test_step(self, x: Any, y: Any, sample_weight: Tensor | None) -> None:
        self.model.eval()
        y_pred = self.model(x, training=False)
        loss = self.compute_loss(y, y_pred, sample_weight)
        reg = self.regularization()
        total = loss if reg is None else loss + reg
        self.loss_tracker.update_state(total, _batch_size(x))
        self._update_metrics(y, y_pred, sample_weight)

    # -- loops -------------------------------------------------------------------------------

    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: Sequence[callbacks_mod.Callback] | None = None,
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
        model = self.model
        verbose = _verbose(verbose)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"fit: epochs must be a non-negative integer, got {epochs!r}")
        if not isinstance(initial_epoch, int) or not 0 <= initial_epoch <= epochs:
            raise ValueError(
                f"fit: initial_epoch must be in [0, epochs={epochs}], got {initial_epoch!r}"
            )
        _check_fit_arguments(
            shuffle, steps_per_epoch, validation_steps, validation_freq, validation_data, callbacks
        )
        if validation_split:
            if validation_data is not None:
                validation_split = 0.0  # Keras: validation_data takes precedence
            else:
                (x, y, sample_weight), validation_data = data_mod.split_validation(
                    x, y, sample_weight, validation_split
                )
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        strategy = self.strategy
        batch_size = self._local_batch_size(batch_size)
        if strategy.world_size > 1:
            seed = strategy.broadcast_int(seed)  # one shuffling order for every process
        data = data_mod.adapt(
            x,
            y,
            sample_weight,
            batch_size=batch_size,
            shuffle=shuffle,
            class_weight=class_weight,
            steps=steps_per_epoch,
            seed=seed,
            rank=strategy.rank,
            world_size=strategy.world_size,
        )
        val = None
        if validation_data is not None:
            val_bs = (
                self._local_batch_size(validation_batch_size)
                if validation_batch_size
                else batch_size
            )
            val = self._adapt_eval(validation_data, val_bs, validation_steps)
        history = callbacks_mod.History()
        cbs = callbacks_mod.CallbackList(
            # History last, as Keras 3: it records the logs after the other callbacks (e.g.
            # ReduceLROnPlateau's "learning_rate").
            [*(callbacks or []), history],
            model=model,
            epochs=epochs,
            steps=data.steps(),
            verbose=verbose,
        )
        model.history = history
        model.stop_training = False
        self.state = TrainingState(initial_epoch, 0, seed, strategy.world_size)
        first = data.first_batch()
        if first is None:
            raise ValueError("fit: the training data is empty")
        self._ensure_ready(data_mod.move(first[0], self.device))
        del first
        show = verbose if strategy.is_chief else 0
        logs: dict[str, float] = {}
        cbs.on_train_begin()
        state = self.state  # a callback (BackupAndRestore) may have restored another position
        if state.data_seed != seed and isinstance(data, data_mod.ArrayData):
            data.seed = state.data_seed
        start_epoch = state.epoch
        try:
            for epoch in range(start_epoch, epochs):
                self.reset_metrics()
                cbs.on_epoch_begin(epoch)
                if show:
                    print(f"Epoch {epoch + 1}/{epochs}")
                bar = ProgressBar(data.steps(), show)
                start_batch = state.batch if epoch == start_epoch else 0
                step, samples = start_batch, 0
                for xb, yb, swb in data.batches(epoch, start_batch):
                    cbs.on_train_batch_begin(step)
                    xb, yb = data_mod.move(xb, self.device), data_mod.move(yb, self.device)
                    swb = data_mod.move(swb, self.device)
                    self.train_step(xb, yb, swb)
                    step += 1
                    samples += _batch_size(xb)
                    batch_logs = {m.name: float(m.result()) for m in self._all_metrics()}
                    bar.update(step, batch_logs, samples)
                    cbs.on_train_batch_end(step - 1, batch_logs)
                    if model.stop_training:
                        break
                logs = self.logs()
                if val is not None and (epoch + 1) % validation_freq == 0:
                    logs.update(self._evaluate_data(val, prefix="val_"))
                bar.close(step, logs)
                cbs.on_epoch_end(epoch, logs)
                if model.stop_training:
                    break
        finally:
            model.eval()  # Keras: outside fit the model runs in inference mode
        if epochs > start_epoch:
            self.optimizer.finalize_variable_values()  # use_ema: the averages become the weights
        cbs.on_train_end(logs)
        return history

    def _local_batch_size(self, batch_size: int | None) -> int:
        """This process's share of the (global, as in Keras) ``batch_size``."""
        if batch_size is None:
            batch_size = 32
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        world = self.strategy.world_size
        if batch_size % world:
            raise ValueError(
                f"batch_size={batch_size} is the global batch and must be divisible "
                f"by the number of processes ({world})"
            )
        return batch_size // world

    def _adapt_eval(self, validation_data: Any, batch_size: int | None, steps: int | None) -> Any:
        if isinstance(validation_data, tuple) and len(validation_data) in (2, 3):
            xv, yv = validation_data[0], validation_data[1]
            swv = validation_data[2] if len(validation_data) == 3 else None
            return data_mod.adapt(
                xv,
                yv,
                swv,
                batch_size=batch_size,
                steps=steps,
                rank=self.strategy.rank,
                world_size=self.strategy.world_size,
            )
        if isinstance(validation_data, (list,)) and len(validation_data) in (2, 3):
            return self._adapt_eval(tuple(validation_data), batch_size, steps)
        return data_mod.adapt(
            validation_data,
            batch_size=batch_size,
            steps=steps,
            rank=self.strategy.rank,
            world_size=self.strategy.world_size,
        )

    def _evaluate_data(
        self,
        data: Any,
        prefix: str = "",
        verbose: int = 0,
        callbacks: callbacks_mod.CallbackList | None = None,
    ) -> dict[str, float]:
        self.reset_metrics()
        bar = ProgressBar(data.steps(), verbose)
        steps = samples = 0
        for xb, yb, swb in data.batches(0):
            if callbacks is not None:
                callbacks.on_test_batch_begin(steps)
            xb, yb = data_mod.move(xb, self.device), data_mod.move(yb, self.device)
            if steps == 0:
                self._ensure_ready(xb)
            self.test_step(xb, yb, data_mod.move(swb, self.device))
            steps += 1
            samples += _batch_size(xb)
            bar.update(steps, None, samples)
            if callbacks is not None:
                callbacks.on_test_batch_end(steps - 1, {})
        if steps == 0:
            raise ValueError("evaluate: the data is empty")
        logs = self.logs(prefix)
        bar.close(steps, logs)
        return logs

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Sequence[callbacks_mod.Callback] | None = None,
        return_dict: bool = False,
    ) -> Any:
        data = data_mod.adapt(
            x,
            y,
            sample_weight,
            batch_size=self._local_batch_size(batch_size),
            steps=steps,
            rank=self.strategy.rank,
            world_size=self.strategy.world_size,
        )
        cbs = callbacks_mod.CallbackList(list(callbacks or []), model=self.model)
        cbs.on_test_begin()
        logs = self._evaluate_data(
            data, verbose=_verbose(verbose) if self.strategy.is_chief else 0, callbacks=cbs
        )
        cbs.on_test_end(logs)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values


def predict(
    model: Any,
    x: Any,
    batch_size: int | None = None,
    verbose: Any = "auto",
    steps: int | None = None,
    callbacks: Any = None,
    device: Any = None,
) -> Any:
    """Run ``model`` in inference mode over ``x`` in batches; numpy output(s)."""
    verbose = _verbose(verbose)
    data = data_mod.adapt(x, batch_size=batch_size, steps=steps)
    if device is None:
        try:
            device = next(model.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
    cbs = callbacks_mod.CallbackList(list(callbacks or []), model=model)
    cbs.on_predict_begin()
    model.eval()
    outputs: list[list[np.ndarray]] = []
    bar = ProgressBar(data.steps(), verbose if verbose == 1 else 0)
    steps_done = samples = 0
    with torch.no_grad():
        for xb, _, _ in data.batches(0):
            cbs.on_predict_batch_begin(steps_done)
            xb = data_mod.move(xb, device)
            out = model(xb, training=False)
            outs = list(out) if isinstance(out, (list, tuple)) else [out]
            if not outputs:
                outputs = [[] for _ in outs]
            for store, o in zip(outputs, outs):
                store.append(
                    o.detach().float().cpu().numpy()
                    if o.dtype == torch.bfloat16
                    else o.detach().cpu().numpy()
                )
            steps_done += 1
            samples += _batch_size(xb)
            bar.update(steps_done, None, samples)
            cbs.on_predict_batch_end(steps_done - 1, {})
    bar.close(steps_done, {})
    cbs.on_predict_end()
    if not outputs:
        raise ValueError("predict: the input data is empty")
    result = [_concat(store) for store in outputs]
    return result[0] if len(result) == 1 else result


def _concat(chunks: list[np.ndarray]) -> np.ndarray:
    shapes = {c.shape[1:] for c in chunks}
    if len(shapes) == 1:
        return np.concatenate(chunks, axis=0)
    # Variable sequence lengths across batches: pad on the time axis with zeros.
    longest = max(c.shape[1] for c in chunks)
    padded = [
        np.pad(c, [(0, 0), (0, longest - c.shape[1])] + [(0, 0)] * (c.ndim - 2)) for c in chunks
    ]
    return np.concatenate(padded, axis=0)


def _batch_size(x: Any) -> int:
    if isinstance(x, dict):
        x = next(iter(x.values()))
    if isinstance(x, (list, tuple)):
        x = x[0]
    return int(x.shape[0])


def _renamed(metric: metrics_mod.Metric, name: str) -> metrics_mod.Metric:
    metric.name = name
    return metric

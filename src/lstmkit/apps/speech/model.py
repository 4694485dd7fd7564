"""The recogniser: strided convolutions -> bidirectional LSTMs -> linear -> CTC (DeepSpeech2's
shape, Amodei et al. 2016), built from lstmkit's Keras-style layers, trained with ``fit``.

Shapes (one legend): ``B`` utterances, ``T`` feature frames, ``F`` mel bands, ``T'`` frames after
the front end (``T' = ⌈⌈T / s⌉ / s⌉`` for time stride ``s``), ``H`` LSTM units per direction,
``C`` classes (the vocabulary's words and the blank, class 0)::

    features (B, T, F), lengths (B,)          mask (B, T) = t < length
    frontend="conv2d": (B, T, F, 1) -> Conv2D(k×k, stride (s, 2), relu) -> Conv2D(…)
                       -> (B, T', ⌈⌈F/2⌉/2⌉, filters) -> (B, T', ⌈⌈F/2⌉/2⌉ · filters)
    frontend="conv1d": Conv1D(k, stride s, relu) -> Conv1D(…) -> (B, T', filters)
    Dropout -> [Bidirectional(LSTM(H, return_sequences)) -> Dropout] × layers   (B, T', 2H)
    Dense(C) -> log_softmax                                                    (B, T', C)

The features are first padded with zeros to a multiple of ``s²`` frames, so that the "same"
convolutions (TensorFlow's padding rule depends on the input length) align their windows
identically for every padded length. The convolutions downsample the mask
(:mod:`lstmkit.layers.conv`) and the LSTMs keep masked steps out of their state (Keras's
masking), so an utterance gets the same outputs alone as in any padded batch.
The output carries its mask (``out._keras_mask``, ``(B, T')``), which :class:`CTCLoss` reads as
the input lengths of ``torch.nn.CTCLoss``.

Example:
    >>> import torch
    >>> model = SpeechRecognizer(n_mels=16, n_classes=5, lstm_units=8, lstm_layers=1)
    >>> out = model([torch.zeros(2, 20, 16), torch.tensor([20, 9])])
    >>> tuple(out.shape), out._keras_mask.sum(1).tolist()
    ((2, 5, 5), [5, 3])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.layers import LSTM, Bidirectional, Dense, Dropout
from lstmkit.layers.base import get_mask, set_mask
from lstmkit.layers.conv import Conv1D, Conv2D
from lstmkit.models import Model, register_model
from lstmkit.training.losses import Loss

FRONTENDS = ("conv2d", "conv1d")


@register_model
class SpeechRecognizer(Model):
    """Conv front end + bidirectional LSTMs + linear classifier, emitting CTC log-probabilities.

    Args:
        n_mels: feature size ``F``.
        n_classes: ``C``, the blank (class 0) included.
        frontend: ``"conv2d"`` or ``"conv1d"``.
        conv_filters: filters of each convolution.
        conv_kernel: kernel size (``k`` in time; ``k × k`` for ``conv2d``).
        time_stride: stride ``s`` in time of each convolution (``conv2d`` also strides 2 in
            frequency).
        lstm_layers: number of bidirectional LSTM layers.
        lstm_units: ``H``.
        dropout: rate of the dropout layers.
        name: the model's name.

    Call: ``model([features (B, T, F), lengths (B,)], training=None)`` -> ``(B, T', C)``
    log-probabilities with the mask ``(B, T')`` attached.
    """

    _keeps_output_masks = True  # the output's mask is the CTC input lengths

    def __init__(
        self,
        n_mels: int = 80,
        n_classes: int = 12,
        frontend: str = "conv2d",
        conv_filters: int = 32,
        conv_kernel: int = 3,
        time_stride: int = 2,
        lstm_layers: int = 3,
        lstm_units: int = 160,
        dropout: float = 0.15,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name or "speech_recognizer", **kwargs)
        if frontend not in FRONTENDS:
            raise ValueError(
                f"SpeechRecognizer: frontend must be one of {FRONTENDS}, got {frontend!r}"
            )
        for arg, value in (
            ("n_mels", n_mels),
            ("n_classes", n_classes),
            ("conv_filters", conv_filters),
            ("conv_kernel", conv_kernel),
            ("time_stride", time_stride),
            ("lstm_layers", lstm_layers),
            ("lstm_units", lstm_units),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SpeechRecognizer: {arg} must be a positive int, got {value!r}")
        if n_classes < 2:
            raise ValueError(f"SpeechRecognizer: n_classes must be >= 2, got {n_classes}")
        self.n_mels, self.n_classes, self.frontend = n_mels, n_classes, frontend
        self.conv_filters, self.conv_kernel, self.time_stride = (
            conv_filters,
            conv_kernel,
            time_stride,
        )
        self.lstm_layers, self.lstm_units, self.dropout = lstm_layers, lstm_units, dropout

        # Every layer is built here (all sizes are known), so that a loaded model file finds
        # every weight in place before the first call.
        if frontend == "conv2d":
            kw = {"padding": "same", "activation": "relu"}
            stride = (time_stride, 2)
            self.conv_1 = Conv2D(conv_filters, conv_kernel, strides=stride, name="conv_1", **kw)
            self.conv_2 = Conv2D(conv_filters, conv_kernel, strides=stride, name="conv_2", **kw)
            self.conv_1.build((None, None, n_mels, 1))
            bands = self.conv_1.output_length(n_mels, axis=1)
            self.conv_2.build((None, None, bands, conv_filters))
            features = self.conv_2.output_length(bands, axis=1) * conv_filters
        else:
            kw = {"padding": "same", "activation": "relu"}
            self.conv_1 = Conv1D(
                conv_filters, conv_kernel, strides=time_stride, name="conv_1", **kw
            )
            self.conv_2 = Conv1D(
                conv_filters, conv_kernel, strides=time_stride, name="conv_2", **kw
            )
            self.conv_1.build((None, None, n_mels))
            self.conv_2.build((None, None, conv_filters))
            features = conv_filters
        self.frontend_dropout = Dropout(dropout, name="frontend_dropout")
        self._rnn_names = []
        for k in range(lstm_layers):
            rnn = Bidirectional(LSTM(lstm_units, return_sequences=True), name=f"bilstm_{k + 1}")
            rnn.build((None, None, features if k == 0 else 2 * lstm_units))
            drop = Dropout(dropout, name=f"dropout_{k + 1}")
            setattr(self, f"bilstm_{k + 1}", rnn)
            setattr(self, f"dropout_{k + 1}", drop)
            self._rnn_names.append((f"bilstm_{k + 1}", f"dropout_{k + 1}"))
        self.classifier = Dense(n_classes, name="classifier")
        self.classifier.build((None, None, 2 * lstm_units))
        self.built = True

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """``(B,)`` frames after the front end for ``(B,)`` input frames."""
        lengths = torch.as_tensor(lengths)
        return torch.tensor(
            [self.conv_2.output_length(self.conv_1.output_length(int(n))) for n in lengths],
            dtype=torch.long,
        )

    def call(self, inputs: Any, training: bool | None = None) -> Tensor:
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                f"{self.name}: expected inputs [features (B, T, {self.n_mels}), lengths (B,)], "
                f"got {type(inputs).__name__}"
            )
        x, lengths = (torch.as_tensor(v) for v in inputs)
        if x.dim() != 3 or x.shape[-1] != self.n_mels:
            raise ValueError(
                f"{self.name}: expected features of shape (B, T, {self.n_mels}), "
                f"got {tuple(x.shape)}"
            )
        lengths = lengths.to(x.device).reshape(-1)
        if lengths.shape[0] != x.shape[0] or (lengths < 1).any() or (lengths > x.shape[1]).any():
            raise ValueError(
                f"{self.name}: expected {x.shape[0]} lengths in [1, {x.shape[1]}], "
                f"got {lengths.tolist()}"
            )
        # Zeros after the end up to a multiple of the total time stride: the strided "same"
        # convolutions then align their windows the same way whatever the padded length, so an
        # utterance gets the same outputs alone as in any padded batch.
        x = F.pad(x, (0, 0, 0, -x.shape[1] % (self.time_stride**2)))  # (B, T, F)
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]  # (B, T)
        if self.frontend == "conv2d":
            h = self.conv_1(x.unsqueeze(-1), mask=mask)  # (B, T/s, F/2, filters)
            h = self.conv_2(h)  # (B, T', F', filters), mask (B, T')
            mask = get_mask(h)
            h = h.flatten(2)  # (B, T', F' · filters)
            set_mask(h, mask)
        else:
            h = self.conv_2(self.conv_1(x, mask=mask))  # (B, T', filters)
        h = self.frontend_dropout(h, training=training)
        for rnn_name, drop_name in self._rnn_names:
            h = getattr(self, rnn_name)(h, training=training)  # (B, T', 2H)
            h = getattr(self, drop_name)(h, training=training)
        logits = self.classifier(h)  # (B, T', C)
        mask = get_mask(logits)
        log_probs = F.log_softmax(logits, dim=-1)
        set_mask(log_probs, mask)
        return log_probs

    def get_config(self) -> dict[str, Any]:
        return {
            "n_mels": self.n_mels,
            "n_classes": self.n_classes,
            "frontend": self.frontend,
            "conv_filters": self.conv_filters,
            "conv_kernel": self.conv_kernel,
            "time_stride": self.time_stride,
            "lstm_layers": self.lstm_layers,
            "lstm_units": self.lstm_units,
            "dropout": self.dropout,
            "name": self.name,
        }


class CTCLoss(Loss):
    """Connectionist temporal classification (Graves et al. 2006) as an lstmkit loss, computed
    by ``torch.nn.functional.ctc_loss``.

    ``y_pred``: ``(B, T', C)`` log-probabilities; its mask (``_keras_mask``, or ``mask=``) gives
    each utterance's frames (all ``T'`` without one). ``y_true``: ``(B, L)`` class ids padded
    with negative values (``-1``); an utterance's targets are its non-negative entries. Per
    utterance the loss is ``−log p(targets | frames)``, summed over its labels (not divided by
    their number); the reduction (Keras's ``"sum_over_batch_size"`` by default) then averages
    over the batch, weighting by ``sample_weight`` when given. Impossible alignments (fewer
    frames than the targets need) give 0 and no gradient (``zero_infinity``).

    Example:
        >>> import torch
        >>> log_probs = torch.full((1, 3, 3), 1 / 3).log()  # uniform over blank and 2 labels
        >>> round(float(CTCLoss()(torch.tensor([[1, -1]]), log_probs)), 4)
        1.5041
    """

    def __init__(
        self,
        blank: int = 0,
        zero_infinity: bool = True,
        reduction: str | None = "sum_over_batch_size",
        name: str = "ctc",
    ) -> None:
        super().__init__(name, reduction)
        self.blank, self.zero_infinity = blank, zero_infinity

    def per_utterance(self, y_true: Tensor, y_pred: Tensor, mask: Tensor | None) -> Tensor:
        """``(B,)`` CTC losses."""
        if y_pred.dim() != 3:
            raise ValueError(
                f"{self.name}: expected y_pred of shape (B, T, C), got {tuple(y_pred.shape)}"
            )
        y_true = torch.as_tensor(y_true).to(y_pred.device)
        if y_true.dim() != 2 or y_true.shape[0] != y_pred.shape[0]:
            raise ValueError(
                f"{self.name}: expected y_true of shape ({y_pred.shape[0]}, L) padded with -1, "
                f"got {tuple(y_true.shape)}"
            )
        y_true = y_true.long()
        target_lengths = (y_true >= 0).sum(1)  # (B,)
        if mask is None:
            input_lengths = torch.full((y_pred.shape[0],), y_pred.shape[1], dtype=torch.long)
        else:
            input_lengths = mask.to(torch.long).sum(1)
        return F.ctc_loss(
            y_pred.transpose(0, 1).float(),  # (T', B, C)
            y_true.clamp_min(0),
            input_lengths.to(y_pred.device),
            target_lengths,
            blank=self.blank,
            reduction="none",
            zero_infinity=self.zero_infinity,
        )

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return self.per_utterance(y_true, y_pred, get_mask(y_pred))

    def __call__(
        self, y_true: Any, y_pred: Tensor, sample_weight: Any = None, mask: Tensor | None = None
    ) -> Tensor:
        losses = self.per_utterance(y_true, y_pred, mask if mask is not None else get_mask(y_pred))
        if sample_weight is not None:
            losses = losses * torch.as_tensor(sample_weight).to(losses).reshape(-1)
        if self.reduction in ("sum_over_batch_size", "mean"):
            return losses.mean()
        if self.reduction == "sum":
            return losses.sum()
        return losses

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "blank": self.blank, "zero_infinity": self.zero_infinity}

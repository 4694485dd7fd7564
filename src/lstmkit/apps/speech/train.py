"""Training the recogniser, top to bottom: data, features, model, ``fit``, scores, model file.

1. The corpus (:func:`lstmkit.datasets.digits.synthesize_digits`): made once, then reused.
2. Features of every split (:mod:`.features`), cached.
3. :class:`~.model.SpeechRecognizer` compiled with Adam (linear warm-up, cosine decay, global
   gradient-norm clipping) and :class:`~.model.CTCLoss`, trained by ``Model.fit`` on batches of
   utterances of similar length, with speed perturbation and SpecAugment.
4. After every epoch, :class:`EpochScores` transcribes the validation split (greedy) and keeps
   the weights with the lowest WER, which are restored at the end.
5. Test and real-voice splits scored with greedy and beam decoding; the model file written
   (atomically) with its vocabulary and feature settings; a JSON report next to it with every
   figure, the configuration and the time taken (wall clock and CPU time of this process).
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmkit.apps.parallel import is_chief
from lstmkit.apps.speech.config import SpeechConfig
from lstmkit.apps.speech.evaluate import Recognizer, by_group_line
from lstmkit.apps.speech.features import (
    BatchLoader,
    FeatureSet,
    FeatureSpec,
    LengthBatches,
    load_features,
    spec_augmenter,
    speed_perturber,
    warp_perturber,
)
from lstmkit.apps.speech.model import CTCLoss, SpeechRecognizer
from lstmkit.datasets.digits import VOCABULARY, load_digits, synthesize_digits
from lstmkit.training.callbacks import Callback
from lstmkit.training.optimizers import Adam
from lstmkit.training.schedules import CosineDecay
from lstmkit.utils import atomic_write, set_random_seed, set_threads


@dataclass
class TrainResult:
    """What :func:`train` did: where the model is, its scores, and how long it took."""

    path: Path | None
    report_path: Path | None
    scores: dict[str, Any]
    history: list[dict[str, float]]
    best_epoch: int
    wall_s: float
    cpu_s: float
    train_steps: int
    extra: dict[str, Any] = field(default_factory=dict)


def feature_spec(cfg: SpeechConfig) -> FeatureSpec:
    return FeatureSpec(cfg.sample_rate, cfg.n_mels, cfg.win_ms, cfg.hop_ms, cfg.cepstra)


def synthesize(cfg: SpeechConfig, progress: bool = True) -> Path:
    """Make (or reuse) the corpus of ``cfg``; returns its manifest."""
    return synthesize_digits(
        cfg.data_dir,
        n_train=cfg.n_train,
        n_val=cfg.n_val,
        n_test=cfg.n_test,
        n_real=cfg.n_real,
        seed=cfg.data_seed,
        workers=cfg.workers,
        progress=progress,
        festival_share=cfg.festival_share,
        pico_share=cfg.pico_share,
    )


def split_features(
    cfg: SpeechConfig, manifest: Path, split: str, progress: bool = True
) -> FeatureSet:
    """The cached features of one split of the corpus."""
    return load_features(
        load_digits(manifest, split), feature_spec(cfg), cfg.cache_dir, split, progress
    )


def build_model(cfg: SpeechConfig, n_classes: int = len(VOCABULARY) + 1) -> SpeechRecognizer:
    return SpeechRecognizer(
        n_mels=cfg.n_mels,
        n_classes=n_classes,
        frontend=cfg.frontend,
        conv_filters=cfg.conv_filters,
        conv_kernel=cfg.conv_kernel,
        time_stride=cfg.time_stride,
        lstm_layers=cfg.lstm_layers,
        lstm_units=cfg.lstm_units,
        dropout=cfg.dropout,
    )


class EpochScores(Callback):
    """After each epoch: validation loss and greedy WER/CER/SER, the time so far; keeps the
    best weights (lowest WER, then lowest loss) and restores them when training ends."""

    def __init__(
        self,
        recognizer: Recognizer,
        val: FeatureSet,
        val_loader: BatchLoader,
        log: Callable[[str], None],
        started: tuple[float, float],
        log_every: int = 0,
    ) -> None:
        super().__init__()
        self.recognizer, self.val, self.val_loader, self.log = recognizer, val, val_loader, log
        self.started, self.log_every = started, log_every
        self.steps = 0
        self._mark = (time.perf_counter(), _cpu_time())
        self.rows: list[dict[str, float]] = []
        self.best: tuple[float, float] = (math.inf, math.inf)
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.steps += 1
        if self.log_every and self.steps % self.log_every == 0:
            now = (time.perf_counter(), _cpu_time())
            wall, cpu = (
                (now[0] - self._mark[0]) / self.log_every,
                (now[1] - self._mark[1]) / (self.log_every),
            )
            self._mark = now
            self.log(
                f"  step {self.steps}: loss {float((logs or {}).get('loss', math.nan)):.4f}  "
                f"{wall:.2f} s/step wall, {cpu:.2f} s/step cpu  "
                f"load {os.getloadavg()[0]:.1f}"
            )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        model = self.model
        scores = self.recognizer.evaluate(self.val, decoders=("greedy",))["greedy"]
        val_loss = _mean_loss(model, self.val_loader)
        wall, cpu = _elapsed(self.started)
        row = {
            "epoch": epoch + 1,
            "loss": float((logs or {}).get("loss", math.nan)),
            "val_loss": val_loss,
            "val_wer": scores["wer"],
            "val_cer": scores["cer"],
            "val_ser": scores["ser"],
            "learning_rate": float(model.optimizer.learning_rate),
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
        }
        self.rows.append(row)
        if (scores["wer"], val_loss) < self.best:
            self.best, self.best_epoch = (scores["wer"], val_loss), epoch + 1
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.log(
            f"epoch {epoch + 1}: loss {row['loss']:.4f}  val_loss {val_loss:.4f}  "
            f"val WER {100 * scores['wer']:.2f}%  SER {100 * scores['ser']:.2f}%  "
            f"lr {row['learning_rate']:.2e}  wall {wall / 60:.1f} min  cpu {cpu / 60:.1f} min"
        )

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)


def _chain(
    *steps: Callable[[np.ndarray], np.ndarray] | None,
) -> Callable[[np.ndarray], np.ndarray] | None:
    """The given per-utterance perturbations applied in order (``None`` when there are none)."""
    todo = [f for f in steps if f is not None]
    if not todo:
        return None

    def perturb(feats: np.ndarray) -> np.ndarray:
        for f in todo:
            feats = f(feats)
        return feats

    return perturb


@torch.no_grad()
def _mean_loss(model: SpeechRecognizer, loader: BatchLoader) -> float:
    loss, total, n = CTCLoss(), 0.0, 0
    was = model.training
    model.eval()
    for (x, lengths), y in loader:
        out = model([x, lengths], training=False)
        total += float(loss(y, out)) * x.shape[0]
        n += x.shape[0]
    model.train(was)
    return total / max(n, 1)


def _elapsed(started: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - started[0], _cpu_time() - started[1]


def _cpu_time() -> float:
    """CPU seconds used by this process and its finished children (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def train(
    cfg: SpeechConfig, verbose: int = 1, log: Callable[[str], None] | None = None
) -> TrainResult:
    """Train, score and save as ``cfg`` says (module docstring). ``verbose``: 0 silent, 1
    progress bars and one line per epoch, 2 one line per epoch and one per 50 steps (loss,
    seconds per step of wall clock and of CPU time, load average: for logs)."""
    chief = is_chief()
    if not chief:  # under torchrun (--nproc): rank 0 alone prints, scores and saves
        verbose, log = 0, None
    log = log or (print if verbose else (lambda _: None))
    progress = verbose == 1
    set_threads(cfg.threads, "SpeechConfig: threads")
    set_random_seed(cfg.seed)
    started = (time.perf_counter(), _cpu_time())

    spec = feature_spec(cfg)
    if cfg.manifest:  # the user's recordings, letter by letter
        from lstmkit.apps.speech.manifest import char_vocabulary, user_recordings

        recordings = user_recordings(cfg)
        manifest = None
        data = {
            s: load_features(recordings[s], spec, cfg.cache_dir, f"user-{s}", progress)
            for s in ("train", "val")
        }
        vocabulary = char_vocabulary(data["train"].transcripts + data["val"].transcripts)
        unit = "char"
    else:
        manifest = synthesize(cfg, progress)
        data = {s: split_features(cfg, manifest, s, progress) for s in ("train", "val")}
        vocabulary, unit = VOCABULARY, "word"
    t_data = _elapsed(started)
    log(
        f"data ready: {len(data['train'])} train, {len(data['val'])} val utterances "
        f"({t_data[0] / 60:.1f} min); {len(vocabulary)} {unit} classes and the blank"
    )

    model = build_model(cfg, len(vocabulary) + 1)
    recognizer = Recognizer(model, tuple(vocabulary), spec, cfg.to_dict(), unit)

    def loader(split: str, shuffle: bool, augment: bool) -> BatchLoader:
        frames = torch.tensor([f.shape[0] for f in data[split].feats])
        lengths = model.output_lengths(frames).tolist()
        batches = LengthBatches(lengths, cfg.batch_size, cfg.bucket, shuffle=shuffle, seed=cfg.seed)
        aug = perturb = None
        if augment and cfg.augment:
            aug = spec_augmenter(
                cfg.freq_masks, cfg.freq_width, cfg.time_masks, cfg.time_width, cfg.seed
            )
        if augment:
            perturb = _chain(
                speed_perturber(cfg.stretch_prob, cfg.stretch_min, cfg.stretch_max, cfg.seed)
                if cfg.stretch_prob > 0
                else None,
                warp_perturber(cfg.warp_prob, cfg.warp_min, cfg.warp_max, cfg.seed)
                if cfg.warp_prob > 0
                else None,
            )
        return BatchLoader(data[split], vocabulary, batches, aug, perturb, shard=shuffle, unit=unit)

    train_loader = loader("train", shuffle=True, augment=True)
    val_loader = loader("val", shuffle=False, augment=False)
    steps = len(train_loader) * cfg.epochs
    schedule = CosineDecay(
        cfg.learning_rate / 10,
        decay_steps=max(1, steps - cfg.warmup_steps),
        alpha=0.02,
        warmup_target=cfg.learning_rate,
        warmup_steps=min(cfg.warmup_steps, steps),
    )
    model.compile(
        optimizer=Adam(learning_rate=schedule, global_clipnorm=cfg.clipnorm),
        loss=CTCLoss(),
        device="cpu",
    )
    log_every = 50 if verbose == 2 else 0
    scores_cb = EpochScores(recognizer, data["val"], val_loader, log, started, log_every)
    t_fit = time.perf_counter()
    model.fit(
        train_loader,
        epochs=cfg.epochs,
        verbose=1 if progress else 0,
        callbacks=[scores_cb],
    )
    fit_s = time.perf_counter() - t_fit
    t_train = _elapsed(started)

    model.eval()
    scores: dict[str, Any] = {}
    if cfg.manifest and chief:
        test = load_features(recordings["test"], spec, cfg.cache_dir, "user-test", progress)
        result = recognizer.evaluate(test, beam_size=cfg.beam_size)
        scores["test"] = {k: result[k] for k in ("n", "greedy", "beam")}
        scores["test"]["examples_wrong"] = result["errors"]["beam"][:20]
        g, b = result["greedy"], result["beam"]
        log(
            f"test: greedy WER {100 * g['wer']:.2f}% CER {100 * g['cer']:.2f}%  |  beam "
            f"{cfg.beam_size} WER {100 * b['wer']:.2f}% CER {100 * b['cer']:.2f}%"
        )
    for split in ("test", "real") if chief and not cfg.manifest else ():
        if not getattr(cfg, f"n_{split}"):
            continue
        result = recognizer.evaluate_split(manifest, split, cfg.cache_dir, cfg.beam_size, progress)
        scores[split] = {k: result[k] for k in ("n", "greedy", "beam")}
        scores[split]["beam_by_engine"] = result["groups"]["beam"]
        scores[split]["examples_wrong"] = result["errors"]["beam"][:20]
        g, b = result["greedy"], result["beam"]
        log(
            f"{split}: greedy WER {100 * g['wer']:.2f}% CER {100 * g['cer']:.2f}% "
            f"SER {100 * g['ser']:.2f}%  |  beam {cfg.beam_size} WER {100 * b['wer']:.2f}% "
            f"CER {100 * b['cer']:.2f}% SER {100 * b['ser']:.2f}%"
        )
        if line := by_group_line(result["groups"]["beam"]):
            log(line)
    wall, cpu = _elapsed(started)

    path = report_path = None
    if cfg.output and chief:
        path = Path(cfg.output)
        recognizer.save(path)
        report_path = path.with_suffix(".report.json")
        report = {
            "config": cfg.to_dict(),
            "scores": scores,
            "history": scores_cb.rows,
            "best_epoch": scores_cb.best_epoch,
            "train_steps": steps,
            "parameters": model.count_params(),
            "time": {
                "data_wall_s": round(t_data[0], 1),
                "fit_wall_s": round(fit_s, 1),
                "train_wall_s": round(t_train[0], 1),
                "train_cpu_s": round(t_train[1], 1),
                "total_wall_s": round(wall, 1),
                "total_cpu_s": round(cpu, 1),
                "s_per_step": round(fit_s / max(steps, 1), 3),
                "threads": torch.get_num_threads(),
                "cpus": os.cpu_count(),
                "load_average_at_end": list(os.getloadavg()),
            },
            "platform": {
                "torch": torch.__version__,
                "python": platform.python_version(),
                "machine": platform.machine(),
            },
        }
        with atomic_write(report_path, "w") as fh:
            fh.write(json.dumps(report, indent=1))
        log(f"saved {path} and {report_path}")
    return TrainResult(
        path, report_path, scores, scores_cb.rows, scores_cb.best_epoch, wall, cpu, steps
    )


def prepare_data(cfg: SpeechConfig, progress: bool = False) -> None:
    """Make the corpus and every split's feature cache now (reused when they exist), so that
    several training processes (``--nproc``) only read them instead of racing to write them."""
    if cfg.manifest:
        from lstmkit.apps.speech.manifest import user_recordings

        for split, rows in user_recordings(cfg).items():
            load_features(rows, feature_spec(cfg), cfg.cache_dir, f"user-{split}", progress)
        return
    manifest = synthesize(cfg, progress)
    for split in ("train", "val", "test", "real"):
        if split in ("train", "val") or getattr(cfg, f"n_{split}"):
            split_features(cfg, manifest, split, progress)

"""Where a ``fit`` is, and every random generator's state: what a backup needs to resume.

:class:`TrainingState` is the public interface between the training loop and whatever saves
or restores it (``BackupAndRestore``, an application's own run state)::

    fit starts           model.training_state = TrainingState(epoch=initial_epoch, batch=0,
                                                               data_seed=<drawn>, world_size=N)
    on_train_begin       a callback may restore a backup: model.load_training_state(path)
                         replaces it with the saved one (resumed=True)
    the loop             starts at training_state.epoch, batch training_state.batch, with the
                         data order of training_state.data_seed

:func:`random_states` / :func:`set_random_states` capture and restore Python's, numpy's and
torch's generators (CPU and every CUDA device) as JSON plus tensors, so that a resumed run
draws the same dropout masks and shuffles as an uninterrupted one.

>>> s = TrainingState(epoch=2, batch=5, data_seed=7, world_size=1)
>>> TrainingState.from_json(s.to_json()) == s
True
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import numpy as np
import torch

__all__ = ["TrainingState", "random_states", "set_random_states"]


@dataclasses.dataclass
class TrainingState:
    """The position of a ``fit`` (Keras's ``BackupAndRestore`` keeps the same: epoch, batch).

    Attributes:
        epoch: the epoch to run next (0-based).
        batch: batches of ``epoch`` already done (0 at an epoch boundary).
        data_seed: the seed of this fit's data order (shuffling); a resumed run must reuse it.
        world_size: processes training together; a backup resumes only with as many.
        resumed: whether this state was restored from a backup.
    """

    epoch: int = 0
    batch: int = 0
    data_seed: int = 0
    world_size: int = 1
    resumed: bool = False

    _KEYS = ("epoch", "batch", "data_seed", "world_size")

    def to_json(self) -> dict[str, int]:
        """The position as JSON-ready ints (``resumed`` is not stored: it is true on restore)."""
        return {k: int(getattr(self, k)) for k in self._KEYS}

    @classmethod
    def from_json(cls, values: Any, resumed: bool = False) -> TrainingState:
        """The inverse of :meth:`to_json`.

        Raises:
            ValueError: ``values`` is not a dict of non-negative integers with these keys.
        """
        if not isinstance(values, dict):
            raise ValueError(f"TrainingState: expected a JSON object, got {type(values).__name__}")
        out = {}
        for key in cls._KEYS:
            value = values.get(key, 1 if key == "world_size" else 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"TrainingState: {key} must be a non-negative integer, got {value!r}"
                )
            out[key] = value
        return cls(**out, resumed=resumed)


def random_states() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Every generator's state: Python's and numpy's as JSON, torch's as tensors
    (``torch_cpu``, ``torch_cuda_<i>``)."""
    py = random.getstate()
    np_state = np.random.get_state()
    as_json = {
        "python_random": [py[0], list(py[1]), py[2]],
        "numpy_random": [
            np_state[0],
            np_state[1].tolist(),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
    }
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    return as_json, tensors


def set_random_states(as_json: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Restore what :func:`random_states` returned (CUDA states only when the number of devices
    matches)."""
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        names = [k for k in tensors if k.startswith("torch_cuda_")]
        cuda = [tensors[k] for k in sorted(names, key=lambda k: int(k.rsplit("_", 1)[1]))]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    py = as_json["python_random"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    s = as_json["numpy_random"]
    np.random.set_state((s[0], np.array(s[1], dtype=np.uint32), s[2], s[3], s[4]))

"""``lstmkit.keras``: every name of Keras 3's layout that it offers resolves, and is the very
object of the lstmkit module that defines it (a face, not a copy); imports stay lazy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import lstmkit.keras as keras
from lstmkit import (
    activations,
    callbacks,
    constraints,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    regularizers,
    utils,
)
from lstmkit.data import arrays, files, text
from lstmkit.training import losses as training_losses
from lstmkit.training import schedules

# (keras path, the lstmkit object it must be)
SAME = [
    ("Sequential", models.Sequential),
    ("Model", models.Model),
    ("Input", layers.Input),
    ("models.Sequential", models.Sequential),
    ("models.Model", models.Model),
    ("models.load_model", models.load_model),
    ("saving.load_model", models.load_model),
    ("utils.pad_sequences", text.pad_sequences),
    ("utils.to_categorical", arrays.to_categorical),
    ("utils.set_random_seed", utils.set_random_seed),
    ("utils.timeseries_dataset_from_array", arrays.timeseries_dataset_from_array),
    ("utils.get_file", files.get_file),
    ("preprocessing.sequence.pad_sequences", text.pad_sequences),
    ("preprocessing.timeseries_dataset_from_array", arrays.timeseries_dataset_from_array),
    ("optimizers.schedules.ExponentialDecay", schedules.ExponentialDecay),
    ("optimizers.schedules.CosineDecay", schedules.CosineDecay),
    ("losses.binary_crossentropy", training_losses.binary_crossentropy),
    ("losses.sparse_categorical_crossentropy", training_losses.sparse_categorical_crossentropy),
    ("activations.relu", activations.get("relu")),
    ("activations.tanh", activations.get("tanh")),
    ("activations.softmax", activations.get("softmax")),
]
for _mod, _src in [
    ("layers", layers),
    ("optimizers", optimizers),
    ("losses", training_losses),
    ("metrics", metrics),
    ("callbacks", callbacks),
    ("initializers", initializers),
    ("regularizers", regularizers),
    ("constraints", constraints),
]:
    for _name in getattr(keras, _mod).__all__:
        if _name not in (
            "AdditiveAttention",
            "Attention",
            "Conv1D",
            "Conv2D",
            "TextVectorization",
            "schedules",
        ):
            if _mod == "metrics" and _name in ("get", "serialize"):
                continue
            SAME.append((f"{_mod}.{_name}", getattr(_src, _name)))
SAME += [
    ("layers.Attention", __import__("lstmkit.layers.attention").layers.attention.Attention),
    ("layers.Conv1D", __import__("lstmkit.layers.conv").layers.conv.Conv1D),
    ("layers.TextVectorization", text.TextVectorization),
    ("losses.BinaryCrossentropy", losses.BinaryCrossentropy),
]


def _resolve(path: str):
    obj = keras
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize(("path", "expected"), SAME, ids=[p for p, _ in SAME])
def test_name_is_the_lstmkit_object(path, expected):
    assert _resolve(path) is expected


def test_submodules_list_their_names():
    for name in keras.SUBMODULES:
        module = getattr(keras, name)
        for member in module.__all__:
            assert hasattr(module, member), f"keras.{name}.{member}"


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        keras.Nope


def test_import_is_lazy_and_each_submodule_imports_alone():
    # A fresh interpreter: importing lstmkit.keras loads none of the heavy modules, and every
    # submodule imports first, alone (an import cycle would fail one of them).
    code = (
        "import sys, importlib\n"
        "import lstmkit.keras\n"
        "assert 'lstmkit.models' not in sys.modules and 'torch' not in sys.modules\n"
        "for name in lstmkit.keras.SUBMODULES:\n"
        "    for m in [k for k in sys.modules if k.startswith('lstmkit')]: del sys.modules[m]\n"
        "    importlib.import_module('lstmkit.keras.' + name)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_loss_function_forms_are_per_sample_and_compile_by_class():
    y = torch.tensor([[1.0], [0.0]])
    p = torch.tensor([[0.8], [0.4]])
    per_sample = keras.losses.binary_crossentropy(y, p)
    expected = -torch.tensor([np.log(0.8), np.log(0.6)], dtype=torch.float32)
    torch.testing.assert_close(per_sample, expected)
    assert isinstance(
        training_losses.get(keras.losses.binary_crossentropy), losses.BinaryCrossentropy
    )
    mse = keras.losses.mean_squared_error(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 0.0]]))
    torch.testing.assert_close(mse, torch.tensor([5.0]))


def test_to_categorical_drops_trailing_one_and_rejects_bad_ids():
    out = keras.utils.to_categorical(np.array([[1], [0]]), num_classes=3)
    assert out.shape == (2, 3) and out.tolist() == [[0, 1, 0], [1, 0, 0]]
    with pytest.raises(ValueError, match=r"to_categorical: class ids must be in \[0, 2\)"):
        keras.utils.to_categorical([0, 2], num_classes=2)


def test_timeseries_windows_targets_and_stride():
    data = np.arange(20)[:, None].astype("float32")
    ds = keras.utils.timeseries_dataset_from_array(
        data,
        np.arange(20) * 10,
        sequence_length=4,
        sequence_stride=3,
        sampling_rate=2,
        batch_size=2,
    )
    batches = list(ds)
    starts = [0, 3, 6, 9, 12]  # the last window must end before 20: 12 + 3 * 2 = 18
    assert len(ds) == len(batches) == 3 and len(batches[-1][0]) == 1
    xs = np.concatenate([x for x, _ in batches])
    ys = np.concatenate([y for _, y in batches])
    assert xs[:, :, 0].tolist() == [[s + 2 * j for j in range(4)] for s in starts]
    assert ys.tolist() == [s * 10 for s in starts]
    with pytest.raises(ValueError, match="sequence_length must be an integer >= 1, got 0"):
        keras.utils.timeseries_dataset_from_array(data, None, sequence_length=0)


def test_get_file_reads_local_paths_and_refuses_urls(tmp_path):
    f = tmp_path / "data.txt"
    f.write_text("x")
    assert keras.utils.get_file(origin=str(f)) == str(f)
    assert keras.utils.get_file(origin=f.as_uri()) == str(f)
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "cached.csv").write_text("y")
    got = keras.utils.get_file("cached.csv", "https://example.org/cached.csv", cache_dir=tmp_path)
    assert got == str(tmp_path / "datasets" / "cached.csv")
    with pytest.raises(files.OfflineError, match="does not download"):
        keras.utils.get_file("nope.zip", "https://example.org/nope.zip", cache_dir=tmp_path)


def test_register_keras_serializable_registers_layers():
    @keras.saving.register_keras_serializable(package="Mine")
    class MyDoubling(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    assert layers.get_layer_class("MyDoubling") is MyDoubling
    with pytest.raises(TypeError, match="expected a Layer or Model subclass"):
        keras.saving.register_keras_serializable()(len)


def test_ops_follow_numpy_semantics():
    x = np.arange(12, dtype="float32").reshape(3, 4)
    ops = keras.ops
    np.testing.assert_allclose(ops.sum(x, axis=1, keepdims=True).numpy(), x.sum(1, keepdims=True))
    np.testing.assert_allclose(ops.max(x, axis=0).numpy(), x.max(0))
    np.testing.assert_allclose(ops.transpose(x).numpy(), x.T)
    np.testing.assert_allclose(ops.matmul(x, x.T).numpy(), x @ x.T)
    parts = ops.split(x, 2, axis=1)
    np.testing.assert_allclose(parts[1].numpy(), np.split(x, 2, axis=1)[1])
    np.testing.assert_allclose(ops.softmax(x).numpy().sum(-1), np.ones(3), rtol=1e-6)
    assert ops.cast(x, "int32").dtype == torch.int32
    assert ops.one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    assert ops.shape(x) == (3, 4) and ops.zeros((2, 2)).shape == (2, 2)


def test_repeat_vector_and_flatten_in_a_model():
    x = keras.Input((3,))
    y = keras.layers.Flatten()(keras.layers.RepeatVector(4)(x))
    model = keras.Model(x, y)
    data = np.arange(6, dtype="float32").reshape(2, 3)
    out = model.predict(data, verbose=0)
    np.testing.assert_array_equal(out, np.repeat(data[:, None, :], 4, axis=1).reshape(2, 12))
    again = keras.layers.RepeatVector.from_config(keras.layers.RepeatVector(5).get_config())
    assert again.n == 5
    with pytest.raises(ValueError, match="RepeatVector: n must be a positive integer, got 0"):
        keras.layers.RepeatVector(0)

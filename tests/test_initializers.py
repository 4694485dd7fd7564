"""Initialisers with Keras 3's names and distributions (``lstmkit.initializers``).

Bounds and standard deviations are checked on large draws against the formulas
(``fan_in``/``fan_out`` of a Keras-layout ``(in, out)`` shape); ``Orthogonal`` on an LSTM's
recurrent kernel ``(H, 4H)`` has orthonormal rows, as Keras measured (KERAS_NOTES.md).
"""

from __future__ import annotations

import math

import pytest
import torch

from lstmkit import initializers as init

SHAPE = (200, 300)  # fan_in 200, fan_out 300: 60,000 draws


def test_glorot_uniform_bounds_and_variance() -> None:
    w = init.get("glorot_uniform")(SHAPE)
    limit = math.sqrt(6 / (200 + 300))
    assert w.shape == SHAPE and w.dtype == torch.float32
    assert float(w.abs().max()) <= limit
    assert float(w.abs().max()) > 0.99 * limit  # the whole interval is used
    assert float(w.var()) == pytest.approx(limit**2 / 3, rel=0.03)
    assert abs(float(w.mean())) < 0.01


@pytest.mark.parametrize(
    ("name", "std"),
    [
        ("glorot_normal", math.sqrt(2 / (200 + 300))),
        ("he_normal", math.sqrt(2 / 200)),
        ("lecun_normal", math.sqrt(1 / 200)),
    ],
)
def test_truncated_normal_std(name, std) -> None:
    w = init.get(name)(SHAPE, torch.float64)
    assert w.dtype == torch.float64
    assert float(w.std()) == pytest.approx(std, rel=0.03)
    # truncated at two standard deviations of the untruncated normal (std / 0.8796)
    assert float(w.abs().max()) <= 2 * std / 0.87962566103423978 + 1e-12


@pytest.mark.parametrize(
    ("name", "limit"), [("he_uniform", math.sqrt(6 / 200)), ("lecun_uniform", math.sqrt(3 / 200))]
)
def test_uniform_variants(name, limit) -> None:
    w = init.get(name)(SHAPE)
    assert float(w.abs().max()) <= limit
    assert float(w.var()) == pytest.approx(limit**2 / 3, rel=0.03)


def test_random_and_constant_initialisers() -> None:
    w = init.RandomNormal(mean=1.0, stddev=0.5)(SHAPE)
    assert float(w.mean()) == pytest.approx(1.0, abs=0.01)
    assert float(w.std()) == pytest.approx(0.5, rel=0.03)
    u = init.RandomUniform(-0.2, 0.1)(SHAPE)
    assert -0.2 <= float(u.min()) and float(u.max()) < 0.1
    t = init.TruncatedNormal(stddev=0.1)(SHAPE)
    assert float(t.abs().max()) <= 0.2
    assert torch.equal(init.get("zeros")((2, 3)), torch.zeros(2, 3))
    assert torch.equal(init.get("ones")((4,)), torch.ones(4))
    assert torch.equal(init.Constant(2.5)((2, 2)), torch.full((2, 2), 2.5))
    assert torch.equal(init.Identity(3.0)((2, 3)), 3.0 * torch.eye(2, 3))
    with pytest.raises(ValueError, match=r"Identity: expected a 2-D shape, got \(2, 2, 2\)"):
        init.Identity()((2, 2, 2))


@pytest.mark.parametrize("h", [8, 32])
def test_orthogonal_recurrent_kernel_has_orthonormal_rows(h) -> None:
    for gates in (4, 3, 1):  # LSTM (H, 4H), GRU (H, 3H), SimpleRNN (H, H)
        w = init.Orthogonal()((h, gates * h), torch.float64)
        torch.testing.assert_close(w @ w.T, torch.eye(h, dtype=torch.float64), rtol=0, atol=1e-10)
    square = init.Orthogonal(gain=2.0)((h, h), torch.float64)
    torch.testing.assert_close(
        square.T @ square, 4 * torch.eye(h, dtype=torch.float64), rtol=0, atol=1e-10
    )
    tall = init.Orthogonal()((3 * h, h), torch.float64)  # more rows: orthonormal columns
    torch.testing.assert_close(tall.T @ tall, torch.eye(h, dtype=torch.float64), rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match=r"Orthogonal: expected a shape of rank >= 2, got \(5,\)"):
        init.Orthogonal()((5,))


def test_fans() -> None:
    assert init.compute_fans((3, 7)) == (3, 7)
    assert init.compute_fans((5,)) == (5, 5)
    assert init.compute_fans((2, 3, 4, 5)) == (4 * 6, 5 * 6)  # receptive field 2·3


@pytest.mark.parametrize(
    "name",
    [
        "glorot_uniform",
        "glorot_normal",
        "he_normal",
        "he_uniform",
        "orthogonal",
        "random_normal",
        "random_uniform",
        "truncated_normal",
        "lecun_normal",
        "variance_scaling",
    ],
)
def test_seeded_initialisers_are_reproducible(name) -> None:
    cls = type(init.get(name))
    a, b = cls(seed=11), cls(seed=11)
    first = a((6, 8))
    assert torch.equal(first, b((6, 8)))
    assert torch.equal(first, a((6, 8)))  # a seeded initialiser repeats itself (Keras 3)
    assert not torch.equal(first, cls(seed=12)((6, 8)))
    torch.manual_seed(0)
    x = cls()((6, 8))
    torch.manual_seed(0)
    assert torch.equal(x, cls()((6, 8)))  # unseeded: torch's global generator
    assert not torch.equal(cls()((6, 8)), cls()((6, 8)))


def test_unknown_names_and_bad_arguments() -> None:
    with pytest.raises(
        ValueError,
        match=r"kernel_initializer: unknown initializer 'glorot'; expected one of .*glorot_uniform",
    ):
        init.get("glorot", argument="kernel_initializer")
    with pytest.raises(ValueError, match=r"initializer: unknown initializer class 'Nope'"):
        init.get({"class_name": "Nope", "config": {}})
    with pytest.raises(
        TypeError, match=r"initializer: expected an initializer name, dict or Initializer, got int"
    ):
        init.get(3)
    with pytest.raises(TypeError, match=r"GlorotUniform: seed must be an int or None, got 'a'"):
        init.GlorotUniform(seed="a")
    with pytest.raises(ValueError, match=r"VarianceScaling: mode must be one of .*got 'fan'"):
        init.VarianceScaling(mode="fan")
    with pytest.raises(ValueError, match=r"VarianceScaling: expected scale > 0, got 0"):
        init.VarianceScaling(scale=0)
    with pytest.raises(ValueError, match=r"RandomUniform: expected minval <= maxval, got 1 > 0"):
        init.RandomUniform(1, 0)


@pytest.mark.parametrize(
    "obj",
    [
        init.Constant(0.3),
        init.Zeros(),
        init.Ones(),
        init.RandomNormal(0.1, 0.2, seed=1),
        init.RandomUniform(-1, 2, seed=2),
        init.TruncatedNormal(stddev=3.0),
        init.VarianceScaling(2.0, "fan_out", "uniform", seed=3),
        init.GlorotUniform(seed=4),
        init.GlorotNormal(),
        init.HeNormal(seed=5),
        init.HeUniform(),
        init.LecunNormal(),
        init.LecunUniform(),
        init.Orthogonal(gain=0.5, seed=6),
        init.Identity(2.0),
    ],
    ids=lambda o: type(o).__name__,
)
def test_serialize_get_round_trip(obj) -> None:
    config = init.serialize(obj)
    assert config["class_name"] == type(obj).__name__
    again = init.get(config)
    assert type(again) is type(obj) and again.get_config() == obj.get_config()
    assert init.serialize(again) == config
    assert init.get(obj) is obj
    if getattr(obj, "seed", None) is not None:
        assert torch.equal(again((4, 5)), obj((4, 5)))


def test_names_accept_both_spellings() -> None:
    for alias, cls in [
        ("glorot_uniform", init.GlorotUniform),
        ("GlorotUniform", init.GlorotUniform),
        ("he_normal", init.HeNormal),
        ("orthogonal", init.Orthogonal),
    ]:
        assert type(init.get(alias)) is cls

"""Conv1D / Conv2D: torch's convolutions with copied weights (Keras's kernel layout), TensorFlow's
"same" padding, output lengths, mask downsampling, configs and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lstmkit.layers import deserialize, get_layer_class, serialize
from lstmkit.layers.conv import Conv1D, Conv2D, conv_output_length

torch.manual_seed(0)


def keras_to_torch(kernel: np.ndarray) -> torch.Tensor:
    """Keras ``(*k, C_in/groups, filters)`` -> torch ``(filters, C_in/groups, *k)``."""
    k = torch.as_tensor(kernel)
    return k.permute(k.dim() - 1, k.dim() - 2, *range(k.dim() - 2))


# -- against torch with copied weights ---------------------------------------------------------


@pytest.mark.parametrize(
    "kernel, strides, dilation, groups, padding",
    [
        (3, 1, 1, 1, "valid"),
        (5, 2, 1, 1, "valid"),
        (3, 1, 2, 1, "valid"),
        (4, 3, 1, 2, "valid"),
        (3, 1, 1, 1, "same"),
        (5, 1, 2, 1, "same"),
        (3, 1, 1, 3, "same"),
    ],
)
def test_conv1d_equals_torch_conv1d_with_copied_weights(kernel, strides, dilation, groups, padding):
    x = torch.randn(2, 17, 6, dtype=torch.float64)  # (B, T, C)
    layer = Conv1D(6, kernel, strides=strides, padding=padding, dilation_rate=dilation,
                   groups=groups, dtype="float64")  # fmt: skip
    y = layer(x)
    kernel_keras, bias = layer.get_weights()
    assert kernel_keras.shape == (kernel, 6 // groups, 6)
    ref = torch.nn.Conv1d(6, 6, kernel, stride=strides, dilation=dilation, groups=groups,
                          padding=padding, dtype=torch.float64)  # fmt: skip
    with torch.no_grad():
        ref.weight.copy_(keras_to_torch(kernel_keras))
        ref.bias.copy_(torch.as_tensor(bias))
    want = ref(x.transpose(1, 2)).transpose(1, 2)  # (B, T', F)
    assert y.shape == want.shape
    torch.testing.assert_close(y, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel, strides, dilation, padding",
                         [((3, 3), (1, 1), (1, 1), "valid"), ((3, 5), (2, 1), (1, 1), "valid"),
                          ((3, 3), (1, 1), (2, 1), "valid"), ((3, 3), (1, 1), (1, 1), "same"),
                          ((5, 3), (1, 1), (1, 2), "same")])  # fmt: skip
def test_conv2d_equals_torch_conv2d_with_copied_weights(kernel, strides, dilation, padding):
    x = torch.randn(2, 11, 9, 3, dtype=torch.float64)  # (B, T, W, C)
    layer = Conv2D(4, kernel, strides=strides, padding=padding, dilation_rate=dilation,
                   activation="relu", dtype="float64")  # fmt: skip
    y = layer(x)
    kernel_keras, bias = layer.get_weights()
    assert kernel_keras.shape == (*kernel, 3, 4)
    ref = torch.nn.Conv2d(3, 4, kernel, stride=strides, dilation=dilation, padding=padding,
                          dtype=torch.float64)  # fmt: skip
    with torch.no_grad():
        ref.weight.copy_(keras_to_torch(kernel_keras))
        ref.bias.copy_(torch.as_tensor(bias))
    want = torch.relu(ref(x.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
    torch.testing.assert_close(y, want, rtol=0, atol=1e-12)


def test_channels_first_gives_the_transposed_result():
    x = torch.randn(2, 10, 4)
    last = Conv1D(3, 3, padding="same")
    first = Conv1D(3, 3, padding="same", data_format="channels_first")
    y_last = last(x)
    first.build((None, 4, None))
    first.set_weights(last.get_weights())
    torch.testing.assert_close(first(x.transpose(1, 2)), y_last.transpose(1, 2))


# -- TensorFlow's "same" padding with strides ----------------------------------------------------


def test_strided_same_pads_as_tensorflow_hand_computed():
    # TF: total padding P = max((ceil(T/s) - 1)s + k - T, 0), floor(P/2) before, the rest after.
    layer = Conv1D(1, 3, strides=2, padding="same", use_bias=False)
    layer.build((None, None, 1))
    layer.set_weights([np.ones((3, 1, 1), np.float32)])
    odd = layer(torch.arange(1.0, 6.0).reshape(1, 5, 1)).flatten().tolist()  # P=2: 1 | 1
    even = layer(torch.arange(1.0, 7.0).reshape(1, 6, 1)).flatten().tolist()  # P=1: 0 | 1
    assert odd == [3.0, 9.0, 9.0]  # windows [0,1,2]→0+1+2, [2,3,4], [4,5,0]
    assert even == [6.0, 12.0, 11.0]  # windows [1,2,3], [3,4,5], [5,6,0]


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("strides", [1, 2, 3])
def test_same_padding_output_length_is_ceil_t_over_s(kernel, strides):
    layer = Conv1D(2, kernel, strides=strides, padding="same")
    for steps in (1, 2, 5, 8, 13):
        y = layer(torch.randn(1, steps, 3))
        assert y.shape[1] == math.ceil(steps / strides) == layer.output_length(steps)
        assert layer.compute_output_shape((None, steps, 3)) == (None, y.shape[1], 2)


@pytest.mark.parametrize("kernel, strides, dilation", [(3, 1, 1), (3, 2, 1), (2, 3, 2), (5, 2, 1)])
def test_valid_and_causal_output_lengths(kernel, strides, dilation):
    for padding in ("valid", "causal"):
        layer = Conv1D(2, kernel, strides=strides, padding=padding, dilation_rate=dilation)
        for steps in range(dilation * (kernel - 1) + 1, 14):
            got = layer(torch.randn(1, steps, 1)).shape[1]
            assert got == conv_output_length(steps, kernel, strides, padding, dilation), steps
    assert conv_output_length(10, 3, 2, "valid") == 4  # windows start at 0, 2, 4, 6
    assert conv_output_length(2, 3, 1, "valid") == 0


def test_causal_output_depends_only_on_the_past():
    layer = Conv1D(2, 3, padding="causal", dilation_rate=2)
    x = torch.randn(1, 12, 3)
    y = layer(x)
    x2 = x.clone()
    x2[:, 7:] = 5.0
    torch.testing.assert_close(layer(x2)[:, :7], y[:, :7])


# -- masks ---------------------------------------------------------------------------------------


def _prefix_mask(lengths: list[int], steps: int) -> torch.Tensor:
    return torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
@pytest.mark.parametrize("kernel, strides, dilation", [(3, 2, 1), (5, 2, 1), (3, 3, 2), (4, 1, 1)])
def test_right_padded_mask_downsamples_to_the_output_length(padding, kernel, strides, dilation):
    layer = Conv1D(2, kernel, strides=strides, padding=padding, dilation_rate=dilation)
    steps = 20
    lengths = [20, 13, 9, 6]
    y = layer(torch.randn(4, steps, 3), mask=_prefix_mask(lengths, steps))
    out_mask = y._keras_mask
    assert out_mask.shape == y.shape[:2]
    for row, n in zip(out_mask, lengths):
        want = layer.output_length(n)
        assert row.tolist() == [True] * want + [False] * (y.shape[1] - want)
    assert float(y[~out_mask].detach().abs().max()) == 0.0  # masked outputs are zeros


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
def test_valid_outputs_ignore_what_the_padding_holds(padding):
    layer = Conv1D(4, 3, strides=2, padding=padding)
    x = torch.randn(2, 15, 3)
    mask = _prefix_mask([15, 8], 15)
    y = layer(x, mask=mask)
    x_garbage = x.clone()
    x_garbage[1, 8:] = 100.0
    torch.testing.assert_close(layer(x_garbage, mask=mask), y)


@pytest.mark.parametrize("padding", ["valid", "causal"])
def test_padded_sequence_gives_the_outputs_it_gives_alone(padding):
    # "same" is excluded: TensorFlow's rule pads by the input's length, so alignment can differ.
    layer = Conv1D(4, 3, strides=2, padding=padding)
    x = torch.randn(1, 15, 3)
    alone = layer(x[:, :9])
    padded = layer(x, mask=_prefix_mask([9], 15))
    n = layer.output_length(9)
    torch.testing.assert_close(padded[:, :n], alone)


def test_conv2d_mask_follows_the_time_axis_and_feeds_an_lstm():
    from lstmkit.layers import LSTM, Bidirectional

    conv = Conv2D(4, 3, strides=2, padding="same", activation="relu")
    x = torch.randn(3, 16, 10, 1)
    y = conv(x, mask=_prefix_mask([16, 11, 4], 16))  # (3, 8, 5, 4)
    assert y._keras_mask.sum(1).tolist() == [8, 6, 2]
    h = y.flatten(2)
    out = Bidirectional(LSTM(5, return_sequences=True))(h, mask=y._keras_mask)
    assert out.shape == (3, 8, 10)
    assert float(out[2, 2:].detach().abs().max()) == 0.0


def test_arbitrary_mask_uses_each_output_steps_anchor():
    layer = Conv1D(1, 3, strides=2, padding="valid")  # anchor = t'·2 + 2
    mask = torch.tensor([[True, True, True, False, True, True, True]])
    y = layer(torch.randn(1, 7, 1), mask=mask)
    assert y._keras_mask.tolist() == [[True, True, True]]
    same = Conv1D(1, 3, strides=2, padding="same")  # anchor = t'·2
    assert same(torch.randn(1, 7, 1), mask=~mask)._keras_mask.tolist() == [
        [False, False, False, False]
    ]


# -- training, configs, registry, errors -------------------------------------------------------


def test_gradients_reach_kernel_bias_and_input():
    layer = Conv2D(3, (3, 2), strides=(2, 1), padding="same")
    x = torch.randn(2, 7, 5, 2, requires_grad=True)
    layer(x).square().sum().backward()
    assert layer.kernel.grad is not None and layer.bias.grad is not None and x.grad is not None
    assert float(layer.kernel.grad.abs().sum()) > 0


def test_config_round_trip_and_registry():
    layer = Conv1D(5, 4, strides=2, padding="causal", dilation_rate=1, activation="relu",
                   use_bias=False, kernel_initializer="he_uniform", name="front")  # fmt: skip
    layer(torch.randn(1, 9, 3))
    again = deserialize(serialize(layer))
    assert isinstance(again, Conv1D) and again.get_config() == layer.get_config()
    assert get_layer_class("Conv1D") is Conv1D and get_layer_class("Conv2D") is Conv2D
    assert Conv2D(2, 3).name.startswith("conv2d")


def test_glorot_uniform_uses_keras_fans():
    layer = Conv1D(64, 5)
    layer.build((None, None, 32))
    limit = math.sqrt(6 / (5 * 32 + 5 * 64))
    largest = float(layer.kernel.detach().abs().max())
    assert 0.9 * limit < largest <= limit


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filters": 0, "kernel_size": 3}, "filters must be a positive integer"),
        ({"filters": 2, "kernel_size": (3, 3)}, "kernel_size must be a positive int"),
        ({"filters": 2, "kernel_size": 3, "padding": "full"}, "padding must be one of"),
        ({"filters": 2, "kernel_size": 3, "data_format": "NCW"}, "data_format must be one of"),
        ({"filters": 3, "kernel_size": 3, "groups": 2}, "divisible by groups"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv1D(**kwargs)


def test_bad_inputs_and_masks_are_clear_errors():
    layer = Conv1D(2, 3)
    layer(torch.randn(1, 5, 4))
    with pytest.raises(ValueError, match=r"expected inputs of shape \(B, T, 4\), got \(1, 5, 3\)"):
        layer(torch.randn(1, 5, 3))
    with pytest.raises(ValueError, match=r"expected a mask of shape \(B, T\) = \(1, 5\)"):
        layer(torch.randn(1, 5, 4), mask=torch.ones(1, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="padding must be one of"):
        Conv2D(2, 3, padding="causal")

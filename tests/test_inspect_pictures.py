"""The glass box's pictures: valid, self-contained HTML and valid PNG files, also for odd input
(empty text, one character, Unicode, very long text)."""

from __future__ import annotations

import struct
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit.inspect import (
    compare_gradient_flow,
    gates_png,
    gradient_flow_png,
    record,
    saturation_png,
    save_text_heatmap_html,
    save_trace_html,
    text_heatmap_html,
    text_heatmap_png,
    trace_heatmap_png,
)
from lstmkit.inspect.experiments import RunResult
from lstmkit.inspect.plots import learning_curves_png
from lstmkit.layers import GRU, LSTM
from lstmkit.models import Sequential
from lstmkit.utils import clear_session, set_random_seed

ODD_TEXTS = {
    "empty": "",
    "one": "x",
    "unicode": "héllo, 世界 🙂 <b>&amp;\n\tend\x00\x7f\u200b",
    "long": "the quick brown fox. " * 2500,  # 52,500 characters
}

VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "source"}


class _Checker(HTMLParser):
    """Balanced tags, no external resources, the visible text collected."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href") or (value and "url(" in value):
                self.errors.append(f"external resource: <{tag} {name}={value}>")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _check_html(path: Path) -> str:
    raw = path.read_bytes()
    content = raw.decode("utf-8")  # valid UTF-8
    assert content.startswith("<!DOCTYPE html>")
    for forbidden in ("<script", "<link", "http://", "https://", "@import"):
        assert forbidden not in content, forbidden
    checker = _Checker()
    checker.feed(content)
    checker.close()
    assert not checker.errors, checker.errors[:3]
    assert not checker.stack, checker.stack
    assert {"html", "head", "body", "style", "title"} <= checker.tags
    return "".join(checker.text)


def _check_png(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 50 and height > 50
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (height, width)
    assert not list(path.parent.glob(f".{path.name}.*.tmp"))  # atomic: no leftovers
    return width, height


def _values(n: int) -> np.ndarray:
    return np.sin(np.arange(n) / 3.0)


@pytest.mark.parametrize("case", list(ODD_TEXTS))
def test_html_heatmap_for_odd_text(tmp_path: Path, case: str) -> None:
    text = ODD_TEXTS[case]
    path = save_text_heatmap_html(
        tmp_path / "h.html", text, _values(len(text)), label="cell 3 (c)", max_chars=5000
    )
    shown = _check_html(path)
    assert "cell 3 (c)" in shown  # the colour bar's label
    if case == "empty":
        assert "The text is empty" in shown
    if case == "one":
        assert 'title="t=0 · 0">x</span>' in path.read_text("utf-8")
    if case == "unicode":
        assert "世界 🙂" in shown and "<b>&amp;" in shown  # kept, escaped
        assert "↵" in shown and "⇥" in shown and "␀" in shown  # control characters made visible
    if case == "long":
        assert "Truncated: showing the first 5,000 of 52,500 characters" in shown
        assert shown.count("fox") == text[:5000].count("fox")  # exactly the first 5,000 shown


@pytest.mark.parametrize("case", list(ODD_TEXTS))
def test_png_heatmap_for_odd_text(tmp_path: Path, case: str) -> None:
    text = ODD_TEXTS[case]
    path = text_heatmap_png(
        tmp_path / "h.png", text, _values(len(text)), label="cell 3", max_chars=400
    )
    _check_png(path)


def test_tokens_masked_values_and_errors(tmp_path: Path) -> None:
    tokens = ["The", "cat", "sat", "."]
    page = text_heatmap_html(tokens, [0.2, float("nan"), 0.9, 0.1], gate="f", label="f")
    assert "t=1 · masked" in page and "#bdbdbd" in page
    _check_png(text_heatmap_png(tmp_path / "t.png", tokens, [0.2, np.nan, 0.9, 0.1], gate="f"))
    with pytest.raises(ValueError, match=r"one value per character/token \(3\), got 2"):
        text_heatmap_html("abc", [1, 2])
    with pytest.raises(TypeError, match="string or a list of string tokens"):
        text_heatmap_html(123, [1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cmap must be one of"):
        text_heatmap_html("ab", [1, 2], cmap="jet")
    with pytest.raises(ValueError, match="max_chars"):
        text_heatmap_html("ab", [1, 2], max_chars=0)
    html_path = tmp_path / "lone.html"
    save_text_heatmap_html(html_path, "a\ud800b", [0, 1, 2])  # a lone surrogate
    _check_html(html_path)


@pytest.fixture
def recorded() -> tuple:
    clear_session()
    set_random_seed(0)
    text = "hello (world)\n"
    vocab = sorted(set(text))
    x = torch.eye(len(vocab))[[vocab.index(ch) for ch in text]][None]  # (1, T, V)
    model = Sequential([LSTM(6, return_sequences=True), GRU(4)])
    mask = torch.ones(1, len(text), dtype=torch.bool)
    mask[0, -2:] = False
    with record(model) as rec:
        model.get_layer("lstm")(x, mask=mask)
        model(x)
    return rec, text


def test_pictures_of_a_recording(tmp_path: Path, recorded: tuple) -> None:
    rec, text = recorded
    trace = rec["lstm"]
    shown = _check_html(save_trace_html(tmp_path / "gates.html", trace, text, unit=2))
    for label in ("input gate i — unit 2", "forget gate f", "cell state c — unit 2"):
        assert label in shown
    _check_png(trace_heatmap_png(tmp_path / "c.png", trace, text, unit=2))
    _check_png(trace_heatmap_png(tmp_path / "f.png", trace, text, unit=-1, gate="f", batch=1))
    _check_png(gates_png(tmp_path / "g.png", trace, unit=2, text=text))
    _check_png(gates_png(tmp_path / "gz.png", rec["gru"], unit=0, gates=["z", "h"]))
    _check_png(saturation_png(tmp_path / "s.png", rec))
    with pytest.raises(IndexError, match="out of range"):
        save_trace_html(tmp_path / "x.html", trace, text, unit=6)
    with pytest.raises(ValueError, match="has no update gate z"):
        gates_png(tmp_path / "x.png", trace, unit=0, gates=["z"])
    with pytest.raises(ValueError, match="the text has 3 characters/tokens but the recording"):
        save_trace_html(tmp_path / "x.html", trace, "abc", unit=0)
    with pytest.raises(ValueError, match="batch index 2 out of range"):
        trace_heatmap_png(tmp_path / "x.png", trace, text, unit=0, batch=2)
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "x.png").exists()


def test_gradient_flow_and_learning_curve_plots(tmp_path: Path) -> None:
    set_random_seed(0)
    flows = compare_gradient_flow(np.random.default_rng(0).normal(size=(2, 20, 2)), units=4)
    _check_png(gradient_flow_png(tmp_path / "flow.png", flows))
    _check_png(gradient_flow_png(tmp_path / "empty.png", []))
    run = RunResult(
        "adding",
        20,
        "lstm",
        0.05,
        1 / 6,
        "MSE",
        False,
        3.0,
        10,
        320,
        None,
        {},
        [(1.0, 5, 0.16), (3.0, 10, 0.05)],
    )
    _check_png(learning_curves_png(tmp_path / "curves.png", [run]))

"""The long-range tasks as data generators, and the ``lstmkit experiment`` CLI (quick runs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstmkit.inspect.experiments import RunConfig, chrono_init
from lstmkit.inspect.tasks import (
    TASKS,
    adding_problem,
    copy_memory,
    get_task,
    temporal_order,
)


def test_adding_problem_as_in_hochreiter_schmidhuber() -> None:
    rng = np.random.default_rng(0)
    lengths = set()
    for _ in range(40):
        x, y = adding_problem(8, 100, rng)
        lengths.add(x.shape[1])
        assert x.shape[2] == 2 and y.shape == (8, 1) and x.dtype == np.float32
        assert 100 <= x.shape[1] <= 110
        marks = x[:, :, 1] == 1
        assert (marks.sum(1) == 2).all()
        for b in range(8):
            first, second = np.flatnonzero(marks[b])
            # one mark among the first ten pairs, the other among the first T/2 - 1
            assert min(first, second) < 10 and max(first, second) < 100 // 2 - 1
            assert y[b, 0] == pytest.approx(x[b, first, 0] + x[b, second, 0], abs=1e-6)
            others = np.setdiff1d(np.arange(x.shape[1]), [first, second])
            ends = [p for p in (0, x.shape[1] - 1) if p in others]
            assert (x[b, ends, 1] == -1).all()
            assert (x[b, np.setdiff1d(others, ends), 1] == 0).all()
        assert (0 <= x[:, :, 0]).all() and (x[:, :, 0] <= 1).all()
    assert len(lengths) > 3  # the length varies between batches
    # the trivial predictor (always 1) scores about 1/6
    _, y = adding_problem(4000, 20, 1)
    assert float(np.mean((y - 1.0) ** 2)) == pytest.approx(1 / 6, abs=0.01)
    # the paper's scale
    x, y = adding_problem(500, 20, 2, original=True)
    assert (x[:, :, 0] >= -1).all() and (0 <= y).all() and (y <= 1).all()
    # one length per sequence: padded, with a mask
    x, y, mask = adding_problem(6, 30, 3, per_sequence=True)
    lengths_b = mask.sum(1)
    assert (lengths_b >= 30).all() and (lengths_b <= 33).all() and x.shape[1] == lengths_b.max()
    assert all(x[b, lengths_b[b] - 1, 1] in (-1, 1) for b in range(6))
    with pytest.raises(ValueError, match="length must be an integer >= 4"):
        adding_problem(2, 3)


def test_temporal_order() -> None:
    x, y = temporal_order(200, 100, 0)
    assert x.shape[0] == 200 and 100 <= x.shape[1] <= 110 and x.shape[2] == 8
    assert set(np.unique(y)) == {0, 1, 2, 3}
    symbols = x.argmax(-1)
    assert (x.sum(-1) == 1).all() and (symbols[:, 0] == 6).all() and (symbols[:, -1] == 7).all()
    for b in range(200):
        pos = np.flatnonzero(symbols[b] >= 4)
        pos = pos[(symbols[b, pos] == 4) | (symbols[b, pos] == 5)]
        assert len(pos) == 2 and 10 <= pos[0] <= 20 and 50 <= pos[1] <= 60
        a, c = symbols[b, pos] - 4
        assert y[b] == 2 * a + c


def test_copy_memory() -> None:
    x, y = copy_memory(3, 20, 0)
    assert x.shape == (3, 40, 10) and y.shape == (3, 40)
    tokens = x.argmax(-1)
    np.testing.assert_array_equal(y[:, -10:], tokens[:, :10])
    assert (y[:, :-10] == 0).all() and (tokens[:, 29] == 9).all()
    assert (tokens[:, 10:29] == 0).all() and (tokens[:, 30:] == 0).all()


def test_task_errors_and_chance_levels() -> None:
    adding = get_task("adding")
    assert adding.error(np.array([[1.0], [2.0]]), np.array([[1.0], [1.0]])) == pytest.approx(0.5)
    order = get_task("temporal-order")
    logits = np.eye(4)[[0, 1, 2, 2]]
    assert order.error(np.array([0, 1, 2, 3]), logits) == pytest.approx(0.25)
    assert set(TASKS) == {"adding", "temporal-order", "copy"}
    with pytest.raises(ValueError, match="unknown task 'parity'"):
        get_task("parity")


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="cell must be one of"):
        RunConfig(cell="tcn")
    with pytest.raises(ValueError, match="init must be one of"):
        RunConfig(init="xavier")
    with pytest.raises(ValueError, match="budget_minutes must be > 0"):
        RunConfig(budget_minutes=0)
    with pytest.raises(ValueError, match="units must be a positive integer"):
        RunConfig(units=0)


def test_chrono_init_spreads_forget_time_scales() -> None:
    from lstmkit.layers import GRU, LSTM

    lstm = LSTM(50)
    lstm.build((None, None, 2))
    chrono_init(lstm, 1000, np.random.default_rng(0))
    b = lstm.get_weights()[2]
    b_i, b_f = b[:50], b[50:100]
    np.testing.assert_allclose(b_i, -b_f)
    assert b_f.min() >= 0 and b_f.max() <= np.log(999) + 1e-6 and b_f.max() > np.log(300)
    gru = GRU(4)
    gru.build((None, None, 2))
    chrono_init(gru, 10, np.random.default_rng(0))
    assert (gru.get_weights()[2][0, :4] > 0).all()


def test_cli_adding_and_vanishing_quick(tmp_path: Path) -> None:
    from lstmkit.cli import app

    runner = CliRunner()
    # one thread: on a loaded machine torch's OpenMP workers spin against other jobs
    quick = ["--quick", "--threads", "1"]
    res = runner.invoke(app, ["experiment", "adding", *quick, "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert "final error" in res.output and "adding" in res.output
    payload = json.loads((tmp_path / "a" / "results.json").read_text())
    assert payload["command"].startswith("lstmkit experiment adding --quick --threads 1 --out")
    run = payload["results"][0]
    assert (run["cell"], run["length"], run["steps"], run["sequences"]) == ("lstm", 12, 10, 160)
    assert [h[1] for h in run["history"]] == [5, 10] and run["error_name"] == "MSE"
    assert run["solved"] == (run["final_error"] < 0.01)
    assert run["trivial_error"] == pytest.approx(1 / 6)
    assert "| adding | 12 | LSTM | MSE" in (tmp_path / "a" / "table.md").read_text()
    assert (tmp_path / "a" / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    res = runner.invoke(
        app,
        ["experiment", "vanishing", *quick, "--cells", "rnn,lstm", "--out", str(tmp_path / "v")],
    )
    assert res.exit_code == 0, res.output
    table = (tmp_path / "v" / "table.md").read_text()
    assert "SimpleRNN" in table and "LSTM" in table and "solved" in table
    assert list((tmp_path / "v").glob("gradient_flow_*.png"))
    res = runner.invoke(app, ["experiment", "adding", "--quick", "--cell", "tcn"])
    assert res.exit_code != 0 and "cell must be one of" in res.output


def test_cli_quotes_and_gradflow(tmp_path: Path) -> None:
    from lstmkit.cli import app

    runner = CliRunner()
    out = str(tmp_path)
    one = ["--threads", "1", "--out"]
    res = runner.invoke(
        app,
        ["experiment", "quotes", "--steps", "2", "--units", "4", "--chars", "60", *one, out],
    )
    assert res.exit_code == 0, res.output
    assert "correlates" in res.output and "time scale" in res.output
    for name in ("quote_cell.html", "quote_cell.png", "quote_cell_gates.png", "saturation.png"):
        assert (tmp_path / name).stat().st_size > 1000
    res = runner.invoke(
        app,
        [
            "experiment",
            "gradflow",
            "--length",
            "12",
            "--units",
            "4",
            "--batch",
            "2",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "SimpleRNN" in res.output and "/step" in res.output
    assert (tmp_path / "gradient_flow.png").read_bytes()[:4] == b"\x89PNG"

"""Issue 28's fuzz suite: hostile numbers on every numeric flag of the commands that run on a
model file (and an experiment), hostile config values for every application, and random
``PackedSequence`` structures for ``lstmkit.nn``. Whatever can crash the interpreter runs in a
child process, so that a segfault or a hang is a failed test rather than a dead runner.

Every rejection must be a clear error naming the flag or field; nothing may crash, print a
traceback or run past a bound.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

HOSTILE = ["-1", "0", "1000000000000", "nan", "inf", "-inf", "1e400", "0.5"]

# (command, the arguments that make it run quickly, its numeric flags)
COMMANDS = [
    (["sentiment", "predict"], ["--model", "{S}", "good film"], ["--threads"]),
    (["sentiment", "explain"], ["--model", "{S}", "good film", "--out-dir", "{d}/ex"],
     ["--layer", "--threads"]),
    (["textgen", "generate"], ["--model", "{T}", "--length", "20"],
     ["--length", "--temperature", "--top-k", "--top-p", "--seed", "--threads"]),
    (["translate", "text"], ["--model", "{TR}", "ein Haus"], ["--beam", "--alpha", "--beta"]),
    (["speech", "transcribe"], ["{d}/a.wav", "--model", "{SP}"], ["--beam-size", "--max-seconds"]),
    (["export"], ["{S}", "{d}/s.onnx", "--no-check"], ["--opset"]),
    (["experiment", "adding"],
     ["--units", "4", "--batch-size", "8", "--length", "8", "--max-steps", "2", "--eval-every", "1",
      "--eval-size", "8", "--budget-minutes", "0.05", "--out", "{d}/exp"],
     ["--length", "--budget-minutes", "--units", "--batch-size", "--learning-rate", "--clipnorm",
      "--eval-every", "--eval-size", "--max-steps", "--seed", "--threads"]),
]  # fmt: skip

CHILD = textwrap.dedent(
    """
    import json, signal, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from typer.testing import CliRunner
    from test_serve_models import make_sentiment, make_speech, make_textgen, make_translate
    from test_serve_models import wav_bytes
    from lstmkit.cli import app

    d = Path(sys.argv[1])
    names = {"d": str(d), "S": str(make_sentiment(d / "s.lstmkit")),
             "T": str(make_textgen(d / "t.lstmkit")), "TR": str(make_translate(d / "tr.lstmkit")),
             "SP": str(make_speech(d / "sp.lstmkit"))}
    (d / "a.wav").write_bytes(wav_bytes())
    cases = json.loads(sys.argv[3])

    class Hang(Exception):
        pass

    def alarm(*_):
        raise Hang()

    signal.signal(signal.SIGALRM, alarm)
    runner = CliRunner()
    for command, base, flag, value in cases:
        args = [*command, *[a.format(**names) for a in base], flag, value]
        signal.alarm(60)
        try:
            res = runner.invoke(app, args)
            exc = res.exception
            crash = None if exc is None or isinstance(exc, SystemExit) else repr(exc)[:300]
            row = {"args": args, "code": res.exit_code, "output": res.output[-2000:],
                   "exception": crash}
        except Hang:
            row = {"args": args, "code": None, "output": "", "exception": "HANG (> 60 s)"}
        finally:
            signal.alarm(0)
        print(json.dumps(row), flush=True)
    """
)


def test_numeric_flags_never_crash_hang_or_traceback(tmp_path: Path) -> None:
    """Before issue 28: ``--threads 32768`` segfaulted, ``--length 10**12`` and
    ``--beam-size 10**12`` ran without end, ``--beam 10**12`` died in the allocator,
    ``--alpha 10**12`` overflowed, ``--opset 10**12`` printed the whole TorchScript graph and
    ``--quick`` silently replaced ``--units -1`` and the other given flags."""
    cases = [
        (command, base, flag, value)
        for command, base, flags in COMMANDS
        for flag in flags
        for value in HOSTILE
    ]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), str(Path(__file__).parent), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(cases)
    problems = []
    for row, (_, _, flag, value) in zip(rows, cases, strict=True):
        field = flag.lstrip("-").replace("-", "_")
        if row["exception"] is not None:
            problems.append(f"{' '.join(row['args'])}: {row['exception']}")
        elif row["code"] not in (0, 1, 2):
            problems.append(f"{' '.join(row['args'])}: exit status {row['code']}")
        elif "Traceback" in row["output"]:
            problems.append(f"{' '.join(row['args'])}: printed a traceback")
        elif row["code"] != 0 and flag not in row["output"] and field not in row["output"]:
            problems.append(f"{' '.join(row['args'])}: the error does not name {flag}")
        elif row["code"] == 0 and value in ("nan", "inf", "-inf", "1e400"):
            problems.append(f"{' '.join(row['args'])}: accepted a non-finite {flag}")
    assert not problems, "\n".join(problems)


# -- configs: every numeric field of every application --------------------------------------


def _config_classes() -> list[type]:
    from lstmkit.apps.sentiment.config import SentimentConfig
    from lstmkit.apps.speech.config import SpeechConfig
    from lstmkit.apps.textgen.config import TextgenConfig
    from lstmkit.apps.translate.config import TranslateConfig
    from lstmkit.inspect.experiments import RunConfig

    return [SentimentConfig, TextgenConfig, TranslateConfig, SpeechConfig, RunConfig]


NUMERIC_FIELDS = [
    (cls, f.name, type(f.default))
    for cls in _config_classes()
    for f in dataclasses.fields(cls)
    if isinstance(f.default, int | float) and not isinstance(f.default, bool)
]


@pytest.mark.parametrize(
    ("cls", "name", "kind"), NUMERIC_FIELDS, ids=[f"{c.__name__}.{n}" for c, n, _ in NUMERIC_FIELDS]
)
@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**15), max_value=10**15),
        st.sampled_from([float("nan"), float("inf"), -float("inf"), -1, 0, True, "1"]),
    )
)
def test_config_fields_refuse_hostile_values_by_name(cls: type, name: str, kind: type, value):
    try:
        cfg = cls(**{name: value})
    except (ValueError, TypeError) as e:
        assert name in str(e), f"{cls.__name__}({name}={value!r}): {e}"
        return
    kept = getattr(cfg, name)
    assert not isinstance(kept, bool | str)
    assert math.isfinite(kept), f"{cls.__name__} kept {name}={kept!r}"
    if kind is int:
        assert isinstance(kept, int), f"{cls.__name__} kept {name}={kept!r} for an int field"


# -- lstmkit.nn with random PackedSequences, in a child process --------------------------------

PACKED_CHILD = textwrap.dedent(
    """
    import torch
    from hypothesis import given, settings, strategies as st
    from torch.nn.utils.rnn import PackedSequence
    import lstmkit.nn as lnn

    @settings(max_examples=120, deadline=None, derandomize=True, database=None)
    @given(
        sizes=st.lists(st.integers(-3, 5), min_size=0, max_size=6),
        extra=st.integers(-2, 2),
        engine=st.sampled_from(["reference", "fused", "compiled"]),
        kind=st.sampled_from(["LSTM", "GRU", "RNN"]),
        permute=st.booleans(),
    )
    def check(sizes, extra, engine, kind, permute):
        bs = torch.tensor(sizes, dtype=torch.int64)
        rows = max(int(bs.clamp(min=0).sum()) + extra, 0)
        batch = sizes[0] if sizes and sizes[0] > 0 else 1
        order = torch.randperm(batch) if permute else None
        packed = PackedSequence(torch.randn(rows, 3), bs, order,
                                None if order is None else torch.argsort(order))
        valid = (bool(sizes) and all(s > 0 for s in sizes)
                 and all(a >= b for a, b in zip(sizes, sizes[1:])) and extra == 0)
        torch.manual_seed(0)
        ours = getattr(lnn, kind)(3, 4, engine=engine)
        theirs = getattr(torch.nn, kind)(3, 4)
        theirs.load_state_dict(ours.state_dict())
        try:
            out = ours(packed)
        except ValueError as e:
            assert not valid, f"refused a valid PackedSequence {sizes}: {e}"
            assert "PackedSequence" in str(e), str(e)
            return
        assert valid, f"accepted batch_sizes={sizes} with {rows} rows"
        ref = theirs(packed)
        torch.testing.assert_close(out[0].data, ref[0].data, atol=1e-5, rtol=1e-5)

    check()
    print("ok")
    """
)


def test_random_packed_sequences_are_refused_or_equal_torch() -> None:
    """Zero, negative or rising ``batch_sizes`` and a data length that disagrees used to abort
    the process on every engine; now each is refused, and every valid one equals torch.nn."""
    done = subprocess.run(
        [sys.executable, "-c", PACKED_CHILD], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert done.stdout.strip().endswith("ok")

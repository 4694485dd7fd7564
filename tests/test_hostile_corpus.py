"""The corpus of hostile files (tests/hostile_files/corpus.py, issue 25): every one of 200+
crafted, byte-flipped and truncated model, weights and application files ends in a
``ModelFileError`` — or loads, where the file is in fact valid — in a child process whose
address space may grow by at most 1 GiB, each file within 10 s: none exceeds the caps, none
hangs, no other exception escapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent / "hostile_files"
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402

CAP_BYTES, SECONDS = 2**30, 10


def test_every_hostile_file_ends_in_model_file_error_within_the_caps(tmp_path):
    entries = corpus.make(tmp_path / "corpus")
    assert len(entries) >= 200
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps([[str(p), kind] for p, kind, _ in entries]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    warm = [str(p) for p, kind, valid in entries if kind == "app" and valid]
    run = subprocess.run(
        [sys.executable, str(HERE / "load_each.py"), str(CAP_BYTES), str(SECONDS), str(listing),
         *warm],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    outcomes = dict(json.loads(line) for line in run.stdout.splitlines())
    outcomes.pop("<address space at start>")
    assert len(outcomes) == len(entries), run.stderr[-3000:]
    wrong = []
    for path, _, valid in entries:
        got = outcomes[str(path)]
        ok = got == "ok" if valid else got in ("ModelFileError", "ok") if valid is None else (
            got == "ModelFileError")  # fmt: skip
        if not ok:
            wrong.append(f"{path.name}: {got}")
    assert not wrong, "\n".join(wrong)
    counts = Counter(outcomes.values())
    assert counts["ModelFileError"] >= 150, counts  # most of the corpus is damaged
    assert not Path("/tmp/pwned").exists()

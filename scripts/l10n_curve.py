"""The l10n learning curve of docs/translate.md: GNMT on 1/8, 1/4, 1/2 and all of the training
split of the installed catalogues' German-English pairs, test BLEU by sacreBLEU.

    .venv/bin/python scripts/l10n_curve.py --out runs/l10n [--minutes 5]

Builds the corpus (``lstmkit translate corpus l10n``), then one ``lstmkit translate train`` per
fraction (same seed, nested subsets, the same hash split), each with a budget of ``--minutes``
CPU minutes, then ``evaluate --split test`` (beam 5). Prints a Markdown table and writes
``curve.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

SETTINGS = [
    "embed_dim=128", "units=256", "attention_units=128", "encoder_layers=2", "decoder_layers=2",
    "dropout=0.3", "epochs=60", "early_stopping=6", "clock=cpu", "threads=1",
    "src_vocab_size=2000", "tgt_vocab_size=2000",
]  # fmt: skip


def lstmkit(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lstmkit.cli", *args], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"lstmkit {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/l10n"))
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--fractions", default="0.125,0.25,0.5,1.0")
    args = parser.parse_args()
    corpus = args.out / "l10n.de-en.tsv"
    print(lstmkit("translate", "corpus", "l10n", "--out", str(corpus)).strip())
    rows = []
    for fraction in [float(f) for f in args.fractions.split(",")]:
        run = args.out / f"f{fraction:g}"
        sets = [*SETTINGS, f"train_fraction={fraction}", f"max_minutes={args.minutes}"]
        log = lstmkit("translate", "train", "--out", str(run), "--fresh", "--data", str(corpus),
                      "--quiet", *[a for s in sets for a in ("--set", s)])  # fmt: skip
        pairs = int(re.search(r"(\d+) training pairs", log).group(1))
        scored = lstmkit("translate", "evaluate", "--model", str(run / "model.lstmkit"),
                         "--split", "test", "--beam", "5")  # fmt: skip
        bleu = float(re.search(r"BLEU\s*=?\s*([\d.]+)", scored).group(1))
        state = json.loads((run / "state.json").read_text())
        rows.append({"fraction": fraction, "train_pairs": pairs, "test_bleu": bleu,
                     "best_val_bleu": state["best_val_bleu"], "best_epoch": state["best_epoch"] + 1,
                     "cpu_minutes": round(state["cpu_seconds"] / 60, 1)})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    (args.out / "curve.json").write_text(json.dumps(rows, indent=1))
    print("| fraction | training pairs | test BLEU (beam 5) |\n|---:|---:|---:|")
    for r in rows:
        print(f"| {r['fraction']:g} | {r['train_pairs']:,} | {r['test_bleu']:.1f} |")


if __name__ == "__main__":
    main()

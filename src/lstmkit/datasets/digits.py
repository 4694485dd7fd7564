"""Connected-digit speech (TIDIGITS-style), made locally from speech synthesisers and recordings.

An utterance is a random string of 1–7 digits spoken as words from the vocabulary
``zero, oh, one … nine`` ("0" is said as "zero" or "oh", half the time each); its transcript is
the words, e.g. ``"one oh three"``. Audio is 16 kHz mono 16-bit WAV.

Sources (Debian packages and one PyPI package, nothing downloaded at run time):

- ``espeak-ng``: every English accent it lists (``espeak-ng --voices=en``) that works without
  MBROLA, combined with every voice variant (``espeak-ng --voices=variant``) plus the plain
  voice. A voice is ``accent+variant``, e.g. ``en-gb-scotland+f3``. Variants (or accents) that
  produce the same audio as another are kept once. Per utterance: speed 130–210 words/min,
  pitch 25–75, word gap 0–40 ms.
- ``flite``: every voice ``flite -lv`` lists except the limited-domain ones (``*_time``, a
  talking clock that cannot say "zero"). Per utterance: duration stretch 0.85–1.2.
- ``festival`` (optional, for training only): its English voices whose speaker is not one of
  flite's (flite's ``kal`` and ``slt`` also exist as festival voices and are left out); with
  ``festvox-kdlpc16k`` that is ``ked_diphone``, an American male diphone voice. Per utterance:
  duration stretch 0.85–1.25, mean pitch 80–200 Hz with a spread of 10–40 Hz. And four
  women's voices of other languages, which say the digits as their speakers would, from their
  language's spelling of the English words (``FESTIVAL_RESPELLED``; Italian "uan tu tri"):
  ``lp_diphone`` (Italian, ``festvox-italp16k``), ``czech_dita`` (``festvox-czech-dita``),
  ``suo_fi_lj_diphone`` (Finnish, ``festvox-suopuhe-lj``) and ``upc_ca_ona_hts`` (Catalan,
  ``festvox-ca-ona-hts``); the manifest records the spelling spoken (``params.tts.text``).
  A share of the training utterances (``festival_share``) is spoken by festival, each by one of
  its installed voices drawn uniformly: a second training synthesiser with its own prosody,
  and, with Pico's below, the only natural women's voices here besides flite's test voice
  ``slt``.
- SVOX Pico (optional, for training only; the ``ttspico`` package, which bundles the engine
  and its voices): ``en-US`` and ``en-GB``, an American and a British woman — a third
  synthesiser, and natural English women's voices that are not flite's test speaker. Per
  utterance: rate 80–120 % and pitch 85–125 % of the voice's own (``pico_share``).
- ``asterisk-core-sounds-en-wav``: one real speaker's recordings of the single digits and "oh"
  (8 kHz telephone audio). Digit strings are assembled from them with 50–300 ms pauses between
  words, light noise (25–40 dB SNR), upsampled to 16 kHz: a real-voice test set.

Synthetic speech then goes through ``sox``: tempo ×0.9–1.1 (half the utterances), pitch shift
±150 cents (half; −150…+400 cents for 70 % of festival's English male voice, made higher and
lower), reverberation (30 %), 50–400 ms of silence before and after, resampling to 16 kHz.
Finally, in NumPy: level set to −32…−20 dBFS and, for 70 %, white or pink noise added at
5–30 dB SNR (signal power = mean power of the padded utterance), from a recorded seed; the few
utterances (≈ 2 %) whose peaks would pass 0.99 are scaled down to that peak.

Splits, by voice, so that the test is speaker-independent:

- espeak-ng variants (the speaker: pitch, formants, voicing) are ranked by the SHA-1 of their
  name; the first 15 % are *test* variants, the next 10 % *validation* variants, the rest
  *train*. A voice belongs to its variant's split, whatever its accent, so no test or
  validation variant is heard in training in any accent.
- every flite voice is a test voice (half of the test utterances are flite's, half espeak-ng's);
- festival's and pico's voices are training voices; one number ``u`` drawn from its own
  generator decides the engine of a training utterance: festival if ``u < festival_share``,
  pico if ``u < festival_share + pico_share``, espeak-ng otherwise. So a corpus's festival
  utterances do not depend on ``pico_share``, and its espeak-ng utterances are the same file
  for file, except those that pico now speaks;
- the asterisk speaker forms the separate split ``"real"``.

Generation is deterministic: utterance ``i`` of a split draws everything from
``numpy.random.default_rng([seed, split_index, i])``, so the same seed gives the same manifest
and the same audio bytes, whatever the number of workers (sox runs with ``-R -D``). Files are
named by a hash of what they contain and written under a temporary name then renamed; the
manifest is written the same way, last. A directory whose manifest is missing, unreadable or
describes other settings is regenerated (existing complete files are reused).

The manifest, ``manifest.jsonl``, has one JSON object per utterance: ``id``, ``path``
(relative to the manifest), ``transcript``, ``voice`` (``engine:name``), ``split``, ``params``
(everything needed to regenerate it), ``duration_s``, and ``word_times_s`` (``[[start, end],
…]`` per word for the assembled real-voice set, else ``null``).

Example:
    >>> from lstmkit.datasets.digits import synthesize_digits, load_digits
    >>> manifest = synthesize_digits("/tmp/digits", n_train=20, n_val=4, n_test=4, n_real=4,
    ...                              progress=False)  # doctest: +SKIP
    >>> load_digits(manifest, "test")[0].transcript  # doctest: +SKIP
    'seven oh two'
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import multiprocessing
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from rich.progress import track

from lstmkit.utils import atomic_write, remove_left_over_temp_files_in

__all__ = [
    "FESTIVAL_RESPELLED",
    "SPLITS",
    "VOCABULARY",
    "Utterance",
    "asterisk_digits_dir",
    "espeak_voices",
    "festival_voices",
    "flite_voices",
    "load_digits",
    "make_real_voice_set",
    "pico_voices",
    "split_voices",
    "synthesize_digits",
]

SAMPLE_RATE = 16000
VOCABULARY = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLITS = ("train", "val", "test", "real")
MANIFEST = "manifest.jsonl"
TEST_FRACTION = 0.15
VAL_FRACTION = 0.10

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_FORMAT_VERSION = 1  # part of every file's hash: bump when rendering changes
_COMPUTED = ("duration_s", "word_times_s")  # manifest fields measured, not planned
_SILENT_RMS = 1e-4  # −80 dBFS: a synthesiser that produced this made no speech
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    """One utterance of the digits corpus.

    Attributes:
        id: unique name, ``<split>-<index>``.
        path: absolute path of the 16 kHz mono WAV file.
        transcript: the spoken words, e.g. ``"one oh three"``.
        voice: ``engine:name``, e.g. ``"espeak-ng:en-us+f3"``, ``"flite:slt"``.
        split: one of ``SPLITS``.
        params: everything that made the audio (digits, engine, synthesis, sox, noise, level).
        duration_s: length in seconds.
        word_times_s: ``(start, end)`` seconds of each word, where known (real-voice set).
    """

    id: str
    path: Path
    transcript: str
    voice: str
    split: str
    params: dict[str, Any]
    duration_s: float
    word_times_s: tuple[tuple[float, float], ...] | None = None


# --------------------------------------------------------------------------- voices


@functools.cache
def espeak_voices() -> tuple[str, ...]:
    """espeak-ng voices ``accent+variant`` (``+`` alone omitted for the plain voice), sorted.

    Accents from ``espeak-ng --voices=en`` (MBROLA ones only if ``mbrola`` is installed),
    variants from ``espeak-ng --voices=variant``; each is probed once and dropped if it fails
    or duplicates the audio of one kept before it.
    """
    _require("espeak-ng")
    accents = _distinct_working(
        [
            row[1]
            for row in _voice_table("en")
            if row[1] != "variant" and (shutil.which("mbrola") or not row[4].startswith("mb/"))
        ]
    )
    # The plain voice goes first, so that variants sounding just like it are dropped.
    variants = _distinct_working(
        ["en-us"] + ["en-us+" + row[4].removeprefix("!v/") for row in _voice_table("variant")]
    )
    if variants[:1] != ["en-us"]:
        raise RuntimeError("espeak-ng cannot synthesise with its en-us voice")
    suffixes = [""] + ["+" + v.removeprefix("en-us+") for v in variants[1:]]
    return tuple(sorted(accent + suffix for accent in accents for suffix in suffixes))


def _voice_table(kind: str) -> list[list[str]]:
    """Rows of ``espeak-ng --voices=<kind>``: priority, language, age/gender, name, file."""
    rows = []
    for line in _run(["espeak-ng", f"--voices={kind}"]).decode().splitlines()[1:]:
        tokens = line.split()
        # The file column may contain spaces ("!v/Mr serious"); other languages are "(…)".
        file_tokens = [t for t in tokens[4:] if not t.startswith("(") and not t.endswith(")")]
        rows.append([*tokens[:4], " ".join(file_tokens)])
    return rows


def _distinct_working(voices: list[str]) -> list[str]:
    """The voices, in order, that synthesise without error and sound unlike earlier ones."""
    kept, seen = [], set()
    for voice in dict.fromkeys(voices):
        probe = subprocess.run(
            ["espeak-ng", "-v", voice, "--stdout", "one two three"], capture_output=True
        )
        if probe.returncode != 0 or probe.stderr or len(probe.stdout) < 1000:
            continue
        digest = hashlib.sha1(probe.stdout).hexdigest()
        if digest not in seen:
            seen.add(digest)
            kept.append(voice)
    return kept


@functools.cache
def flite_voices() -> tuple[str, ...]:
    """flite's voices from ``flite -lv``, without the limited-domain ``*_time`` voices."""
    _require("flite")
    listing = _run(["flite", "-lv"]).decode()
    names = listing.split(":", 1)[1].split() if ":" in listing else []
    return tuple(sorted(n for n in names if not n.endswith("_time")))


FESTIVAL_VOICE_ROOT = Path("/usr/share/festival/voices")

# festival voices of other languages, each with its language's spelling of the English digit
# words: it says them as a native speaker of that language would (Italian "uan, tu, tri").
# They are the only women's voices in Debian besides flite's slt, which is a test speaker.
_RESPELLED_VOICES = ("lp_diphone", "czech_dita", "suo_fi_lj_diphone", "upc_ca_ona_hts")
# A word's spellings, in the order of _RESPELLED_VOICES: Italian (festvox-italp16k), Czech
# (festvox-czech-dita), Finnish (festvox-suopuhe-lj), Catalan (festvox-ca-ona-hts).
_RESPELLINGS = {
    "zero": ("ziro", "zirou", "siirou", "zirou"),
    "oh": ("ou", "ou", "ou", "ou"),
    "one": ("uan", "uan", "uan", "uan"),
    "two": ("tu", "tuu", "tuu", "tu"),
    "three": ("tri", "trii", "trii", "tri"),
    "four": ("for", "foor", "foor", "for"),
    "five": ("faiv", "fajv", "faiv", "faif"),
    "six": ("sics", "siks", "siks", "sics"),
    "seven": ("seven", "sevn", "seven", "seven"),
    "eight": ("eit", "ejt", "eit", "eit"),
    "nine": ("nain", "najn", "nain", "nain"),
}
FESTIVAL_RESPELLED: dict[str, dict[str, str]] = {
    voice: {word: spellings[k] for word, spellings in _RESPELLINGS.items()}
    for k, voice in enumerate(_RESPELLED_VOICES)
}
FESTIVAL_PACKAGES = (
    "festvox-kdlpc16k festvox-italp16k festvox-czech-dita festvox-suopuhe-lj festvox-ca-ona-hts"
)


@functools.cache
def festival_voices() -> tuple[str, ...]:
    """festival's voices (folder names, e.g. ``ked_diphone``) that can say the digits, sorted:
    its English voices whose speaker is none of flite's voices (a name token such as ``kal``
    or ``slt`` marks the speaker), and the installed voices of ``FESTIVAL_RESPELLED``; empty
    when festival is not installed."""
    if shutil.which("text2wave") is None:
        return ()
    flite_speakers = set(flite_voices()) if shutil.which("flite") else set()
    english = FESTIVAL_VOICE_ROOT / "english"
    names = {p.name for p in english.iterdir()} if english.is_dir() else set()
    names = {n for n in names if not flite_speakers & set(n.split("_"))}
    names |= {n for n in FESTIVAL_RESPELLED if any(FESTIVAL_VOICE_ROOT.glob(f"*/{n}"))}
    return tuple(sorted(names))


PICO_VOICES = ("en-GB", "en-US")


@functools.cache
def pico_voices() -> tuple[str, ...]:
    """SVOX Pico's English voices (``en-GB``, ``en-US``: two women); empty when the ``ttspico``
    package is not installed."""
    try:
        import ttspico  # noqa: F401
    except ImportError:
        return ()
    return PICO_VOICES


def split_voices(festival: bool = False, pico: bool = False) -> dict[str, tuple[str, ...]]:
    """Voice ids (``engine:name``) of each synthetic split: ``train``, ``val``, ``test``.

    The rule is in the module docstring; the splits are disjoint and every split is
    non-empty when espeak-ng offers at least three distinct variants. ``festival``, ``pico``:
    add festival's (:func:`festival_voices`) or pico's (:func:`pico_voices`) voices to the
    training voices.
    """
    voices = espeak_voices()
    variants = sorted(
        {v.partition("+")[2] for v in voices},
        key=lambda name: hashlib.sha1(name.encode()).hexdigest(),
    )
    n_test = math.ceil(TEST_FRACTION * len(variants))
    n_val = math.ceil(VAL_FRACTION * len(variants))
    variant_split = {v: "test" for v in variants[:n_test]}
    variant_split |= {v: "val" for v in variants[n_test : n_test + n_val]}
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for voice in voices:
        out[variant_split.get(voice.partition("+")[2], "train")].append(f"espeak-ng:{voice}")
    out["test"] += [f"flite:{v}" for v in flite_voices()]
    if festival:
        out["train"] += [f"festival:{v}" for v in festival_voices()]
    if pico:
        out["train"] += [f"pico:{v}" for v in pico_voices()]
    return {split: tuple(names) for split, names in out.items()}


def asterisk_digits_dir() -> Path:
    """The folder of asterisk's English digit recordings (``0.wav`` … ``9.wav``, ``oh.wav``)."""
    needed = [f"{d}.wav" for d in range(10)] + ["oh.wav"]
    roots = [Path("/usr/share/asterisk/sounds"), Path("/var/lib/asterisk/sounds")]
    for folder in sorted(p for root in roots for p in root.glob("*/digits")):
        if all((folder / name).is_file() for name in needed):
            return folder
    raise RuntimeError(
        "asterisk digit recordings not found under /usr/share/asterisk/sounds/*/digits; "
        "install them with `apt-get install asterisk-core-sounds-en-wav`"
    )


# --------------------------------------------------------------------------- planning


def _plan(
    counts: dict[str, int],
    seed: int,
    sounds_dir: Path | None,
    festival_share: float = 0.0,
    pico_share: float = 0.0,
) -> list[dict[str, Any]]:
    """Everything each utterance will be, drawn from its own seeded generator."""
    synthetic = any(counts.get(s) for s in ("train", "val", "test"))
    voices = split_voices(festival=festival_share > 0, pico=pico_share > 0) if synthetic else {}
    items = []
    for split_index, split in enumerate(SPLITS):
        for i in range(counts.get(split, 0)):
            rng = np.random.default_rng([seed, split_index, i])
            digits = "".join(str(d) for d in rng.integers(0, 10, size=rng.integers(1, 8)))
            words = [_say(d, rng) for d in digits]
            if split == "real":
                voice, params = _plan_real(words, rng, sounds_dir)
            elif split == "train" and festival_share + pico_share > 0:
                # Its own generator: the other utterances do not change with the shares.
                u = np.random.default_rng([seed, split_index, i, 1]).random()
                engine = (
                    "festival"
                    if u < festival_share
                    else "pico"
                    if u < festival_share + pico_share
                    else "espeak-ng"
                )
                voice, params = _plan_synthetic(_of(voices[split], engine), words, rng)
            else:
                voice, params = _plan_synthetic(voices[split], words, rng)
            params = {"digits": digits, **params}
            items.append(_item(f"{split}-{i:06d}", split, " ".join(words), voice, params))
    return items


def _say(digit: str, rng: np.random.Generator) -> str:
    if digit == "0" and rng.random() < 0.5:
        return "oh"
    return _DIGIT_WORDS[int(digit)]


def _of(voices: tuple[str, ...], engine: str) -> tuple[str, ...]:
    return tuple(v for v in voices if v.startswith(engine + ":"))


def _plan_synthetic(
    voices: tuple[str, ...], words: list[str], rng: np.random.Generator
) -> tuple[str, dict[str, Any]]:
    engines = sorted({v.split(":", 1)[0] for v in voices})  # test: espeak-ng and flite
    engine = engines[int(rng.random() * len(engines))]  # half each, whatever their voice count
    voice = str(rng.choice(_of(voices, engine)))
    engine, name = voice.split(":", 1)
    if engine == "espeak-ng":
        tts = {
            "voice": name,
            "speed_wpm": int(rng.integers(130, 211)),
            "pitch": int(rng.integers(25, 76)),
            "word_gap_10ms": int(rng.integers(0, 5)),
        }
    elif engine == "festival" and name in FESTIVAL_RESPELLED:
        # Their intonation ignores int_lr_params; the HTS voice ignores Duration_Stretch too
        # (sox's tempo still varies it).
        spelling = FESTIVAL_RESPELLED[name]
        tts = {
            "voice": name,
            "text": " ".join(spelling[w] for w in words),
            "duration_stretch": _r(rng.uniform(0.85, 1.25)),
        }
    elif engine == "festival":
        tts = {
            "voice": name,
            "duration_stretch": _r(rng.uniform(0.85, 1.25)),
            "f0_mean": int(rng.integers(80, 201)),
            "f0_std": int(rng.integers(10, 41)),
        }
    elif engine == "pico":  # percentages of the voice's own speaking rate and pitch
        tts = {
            "voice": name,
            "rate": int(rng.integers(80, 121)),
            "pitch": int(rng.integers(85, 126)),
        }
    else:
        tts = {"voice": name, "duration_stretch": _r(rng.uniform(0.85, 1.2))}
    # festival's English voice is one man: shift its formants and pitch further, mostly upwards
    # (+400 cents raises the formants by 26 %, a little beyond the 15-20 % between men's and
    # women's vocal tracts).
    male_festival = engine == "festival" and name not in FESTIVAL_RESPELLED
    cents = (-150.0, 400.0) if male_festival else (-150.0, 150.0)
    shift_prob = 0.7 if male_festival else 0.5
    reverb = [_r(rng.uniform(10, 60)), _r(rng.uniform(20, 80)), _r(rng.uniform(20, 100))]
    sox = {
        "tempo": _r(rng.uniform(0.9, 1.1)) if rng.random() < 0.5 else 1.0,
        "pitch_cents": _r(rng.uniform(*cents)) if rng.random() < shift_prob else 0.0,
        "reverb": reverb if rng.random() < 0.3 else None,
        "pad_s": [_r(rng.uniform(0.05, 0.4)), _r(rng.uniform(0.05, 0.4))],
    }
    noise = _plan_noise(rng, (5.0, 30.0)) if rng.random() < 0.7 else None
    level = _r(rng.uniform(-32.0, -20.0))
    return voice, {"engine": engine, "tts": tts, "sox": sox, "level_dbfs": level, "noise": noise}


def _plan_real(
    words: list[str], rng: np.random.Generator, sounds_dir: Path | None
) -> tuple[str, dict[str, Any]]:
    assert sounds_dir is not None
    pieces = ["oh.wav" if w == "oh" else f"{_DIGIT_WORDS.index(w)}.wav" for w in words]
    gaps_ms = [int(rng.integers(100, 301))]
    gaps_ms += [int(rng.integers(50, 301)) for _ in words[1:]]
    gaps_ms += [int(rng.integers(100, 301))]
    params = {
        "engine": "asterisk",
        "source_dir": str(sounds_dir),
        "pieces": pieces,
        "gaps_ms": gaps_ms,
        "level_dbfs": _r(rng.uniform(-32.0, -20.0)),
        "noise": _plan_noise(rng, (25.0, 40.0)),
    }
    return f"asterisk:{sounds_dir.parent.name}", params


def _plan_noise(rng: np.random.Generator, snr_range: tuple[float, float]) -> dict[str, Any]:
    kind = "pink" if rng.random() < 0.5 else "white"
    return {"kind": kind, "snr_db": _r(rng.uniform(*snr_range)), "seed": int(rng.integers(2**31))}


def _item(id_: str, split: str, transcript: str, voice: str, params: dict) -> dict[str, Any]:
    content = {"transcript": transcript, "voice": voice, "params": params, "v": _FORMAT_VERSION}
    digest = hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]
    return {
        "id": id_,
        "path": f"wav/{split}/{id_}-{digest}.wav",
        "transcript": transcript,
        "voice": voice,
        "split": split,
        "params": params,
    }


def _r(x: float) -> float:
    return round(float(x), 3)


# --------------------------------------------------------------------------- rendering


def _render(item: dict[str, Any], root: str) -> dict[str, Any]:
    """Make one utterance's WAV file (unless complete already) and return its manifest row."""
    path = Path(root) / item["path"]
    params = item["params"]
    word_times = None
    if params["engine"] == "asterisk":  # its word times are measured, so assemble it anyway
        speech, word_times = _assemble_real(params)
    if not path.is_file():
        if params["engine"] != "asterisk":
            speech = _synthesise(item["transcript"], params)
        if np.sqrt(np.mean(speech**2)) < _SILENT_RMS:
            raise RuntimeError(f"{item['voice']} produced silence for {item['transcript']!r}")
        _write_wav_atomically(path, _finish(speech, params))
    return {**item, "duration_s": _r(soundfile.info(path).duration), "word_times_s": word_times}


def _synthesise(text: str, params: dict[str, Any]) -> np.ndarray:
    """``(N,)`` float32 samples at 16 kHz: the synthesiser's speech after the sox effects.
    ``text`` is the transcript; a voice whose plan has its own spelling (``tts["text"]``)
    says that instead."""
    text = params["tts"].get("text", text)
    with tempfile.TemporaryDirectory(prefix="lstmkit-digits-") as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        (Path(tmp) / "text.txt").write_text(text + "\n")
        if params["engine"] == "pico":
            _pico_say(text, params["tts"], raw)
        else:
            _run(_tts_command(text, params["engine"], params["tts"], raw))
        # -R: repeatable (seeded) randomness; -D: no dither. Float output: one rounding only.
        sox = ["sox", "-R", "-D", "-V1", str(raw), "-e", "floating-point", "-b", "32", str(out)]
        _run([*sox, *_sox_effects(params["sox"])])
        speech, rate = soundfile.read(out, dtype="float32")
    assert rate == SAMPLE_RATE and speech.ndim == 1, (rate, speech.shape)
    return speech


def _pico_say(text: str, tts: dict[str, Any], out: Path) -> None:
    """SVOX Pico's 16 kHz speech of ``text`` written to ``out``. A fresh engine per utterance:
    an engine's output depends on what it said before, so reusing one would make a file's
    audio depend on the order of rendering."""
    import ttspico

    engine = ttspico.TtsEngine(tts["voice"])
    engine.rate, engine.pitch = tts["rate"], tts["pitch"]
    engine.set_property("volume", 50)  # at its default (100) loud digits clip at full scale
    pcm = engine.speak(text)
    if not pcm:
        raise RuntimeError(f"pico:{tts['voice']} produced no audio for {text!r}")
    soundfile.write(out, np.frombuffer(pcm, dtype=np.int16), 16000, subtype="PCM_16")


def _tts_command(text: str, engine: str, tts: dict[str, Any], out: Path) -> list[str]:
    if engine == "espeak-ng":
        return [
            "espeak-ng", "-v", tts["voice"], "-s", str(tts["speed_wpm"]), "-p", str(tts["pitch"]),
            "-g", str(tts["word_gap_10ms"]), "-w", str(out), text,
        ]  # fmt: skip
    if engine == "festival":  # text2wave reads the text from the file _synthesise wrote
        command = [
            "text2wave", "-o", str(out), "-eval", f"(voice_{tts['voice']})",
            "-eval", f"(Parameter.set 'Duration_Stretch {tts['duration_stretch']})",
        ]  # fmt: skip
        if "f0_mean" in tts:  # the English voice's linear-regression intonation
            command += [
                "-eval",
                f"(set! int_lr_params '((target_f0_mean {tts['f0_mean']}) "
                f"(target_f0_std {tts['f0_std']}) (model_f0_mean 170) (model_f0_std 34)))",
            ]
        return [*command, str(out.parent / "text.txt")]
    return [
        "flite", "-voice", tts["voice"], "--setf", f"duration_stretch={tts['duration_stretch']}",
        "-t", text, "-o", str(out),
    ]  # fmt: skip


def _sox_effects(sox: dict[str, Any]) -> list[str]:
    effects = []
    if sox["tempo"] != 1.0:
        effects += ["tempo", "-s", str(sox["tempo"])]
    if sox["pitch_cents"] != 0.0:
        effects += ["pitch", str(sox["pitch_cents"])]
    effects += ["pad", str(sox["pad_s"][0]), str(sox["pad_s"][1])]
    if sox["reverb"] is not None:
        effects += ["reverb", *map(str, sox["reverb"])]
    return [*effects, "channels", "1", "rate", "-v", str(SAMPLE_RATE)]


def _assemble_real(params: dict[str, Any]) -> tuple[np.ndarray, list[list[float]]]:
    """The recorded words with silent gaps between them, and each word's (start, end) in s."""
    folder = Path(params["source_dir"])
    pieces = [_recorded_word(str(folder / name)) for name in params["pieces"]]
    gaps = [np.zeros(round(ms * SAMPLE_RATE / 1000), np.float32) for ms in params["gaps_ms"]]
    parts, times, t = [gaps[0]], [], len(gaps[0])
    for piece, gap in zip(pieces, gaps[1:]):
        times.append([_r(t / SAMPLE_RATE), _r((t + len(piece)) / SAMPLE_RATE)])
        parts += [piece, gap]
        t += len(piece) + len(gap)
    return np.concatenate(parts), times


@functools.cache
def _recorded_word(path: str) -> np.ndarray:
    """One recording at 16 kHz, cut to where it is within 40 dB of its peak (no edge silence)."""
    import librosa

    from lstmkit.data.audio import load_audio

    trimmed, _ = librosa.effects.trim(load_audio(path, SAMPLE_RATE), top_db=40)
    return trimmed


def _finish(speech: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Set the level to ``level_dbfs``, add the planned noise, keep peaks below 0.99."""
    x = speech.astype(np.float64) * (
        10 ** (params["level_dbfs"] / 20) / np.sqrt(np.mean(speech**2))
    )
    if params["noise"] is not None:
        x += _noise(len(x), params["noise"], signal_power=float(np.mean(x**2)))
    peak = np.max(np.abs(x))
    if peak > 0.99:
        x *= 0.99 / peak
    return x.astype(np.float32)


def _noise(n: int, spec: dict[str, Any], signal_power: float) -> np.ndarray:
    """``(n,)`` white or pink (power ∝ 1/f) Gaussian noise, ``spec['snr_db']`` below the signal."""
    noise = np.random.default_rng(spec["seed"]).standard_normal(n)
    if spec["kind"] == "pink":
        spectrum = np.fft.rfft(noise)
        bins = np.maximum(np.arange(len(spectrum)), 1)
        noise = np.fft.irfft(spectrum / np.sqrt(bins), n)
    target_power = signal_power / 10 ** (spec["snr_db"] / 10)
    return noise * np.sqrt(target_power / np.mean(noise**2))


def _write_wav_atomically(path: Path, audio: np.ndarray) -> None:
    # (no listing of the folder per file: _build removes left-over temporary files once)
    with atomic_write(path, clean=False) as fh:
        soundfile.write(fh, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def _run(command: list[str]) -> bytes:
    result = subprocess.run(command, capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"{command[0]} failed (exit {result.returncode}) on {command[1:]}: "
            f"{result.stderr.decode(errors='replace').strip()}"
        )
    return result.stdout


def _require(tool: str, package: str | None = None) -> None:
    if shutil.which(tool) is None:
        raise RuntimeError(
            f"{tool} not found on PATH; install it with `apt-get install {package or tool}`"
        )


# --------------------------------------------------------------------------- public API


def synthesize_digits(
    out_dir: str | os.PathLike[str],
    n_train: int = 4000,
    n_val: int = 400,
    n_test: int = 600,
    n_real: int = 300,
    seed: int = 0,
    workers: int = 2,
    progress: bool = True,
    festival_share: float = 0.0,
    pico_share: float = 0.0,
) -> Path:
    """Make (or reuse) the digits corpus in ``out_dir`` and return its manifest's path.

    Args:
        out_dir: folder for ``manifest.jsonl`` and ``wav/<split>/*.wav``; created if needed.
        n_train: utterances from the training voices (espeak-ng).
        n_val: utterances from the validation voices (espeak-ng).
        n_test: utterances from the test voices (held-out espeak-ng variants and flite).
        n_real: utterances assembled from the real speaker's recordings (split ``"real"``).
        seed: everything random follows from it (a non-negative int).
        workers: processes rendering audio in parallel.
        progress: show a progress bar.
        festival_share: fraction (in ``[0, 1]``) of the training utterances spoken by
            festival's voices (:func:`festival_voices`) instead of espeak-ng's; needs
            ``festival`` and at least one of the voices in ``FESTIVAL_PACKAGES``.
        pico_share: fraction of the training utterances spoken by SVOX Pico's voices
            (:func:`pico_voices`) instead of espeak-ng's; ``festival_share + pico_share``
            must not pass 1. Needs the ``ttspico`` package.

    Returns:
        Path of ``out_dir/manifest.jsonl``. If it already describes exactly these settings and
        all its files exist, nothing is rendered again.
    """
    counts = {"train": n_train, "val": n_val, "test": n_test, "real": n_real}
    for name, value in [*(("n_" + k, v) for k, v in counts.items()), ("seed", seed)]:
        _check_int("synthesize_digits", name, value, minimum=0)
    _check_int("synthesize_digits", "workers", workers, minimum=1)
    if not isinstance(out_dir, str | os.PathLike):
        raise TypeError(f"synthesize_digits: expected out_dir to be a path, got {out_dir!r}")
    for name, share in (("festival_share", festival_share), ("pico_share", pico_share)):
        if isinstance(share, bool) or not isinstance(share, int | float):
            raise TypeError(f"synthesize_digits: expected {name} to be a number, got {share!r}")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"synthesize_digits: expected {name} in [0, 1], got {share}")
    if festival_share + pico_share > 1.0:
        raise ValueError(
            f"synthesize_digits: expected festival_share + pico_share ≤ 1, got "
            f"{festival_share} + {pico_share}"
        )
    if n_train or n_val or n_test:
        for tool in ("espeak-ng", "flite", "sox"):
            _require(tool)
    if n_train and festival_share > 0:
        _require("text2wave", "festival")
        if not festival_voices():
            raise RuntimeError(
                "festival has no voice that can say the digits besides flite's speakers; "
                f"install some with `apt-get install {FESTIVAL_PACKAGES}`"
            )
    if n_train and pico_share > 0 and not pico_voices():
        raise RuntimeError("pico_share > 0 needs SVOX Pico: `pip install ttspico`")
    sounds_dir = asterisk_digits_dir() if n_real else None
    shares = (festival_share, pico_share) if n_train else (0.0, 0.0)
    items = _plan(counts, seed, sounds_dir, *shares)
    return _build(Path(out_dir), items, workers, progress)


def make_real_voice_set(
    out_dir: str | os.PathLike[str],
    n: int = 300,
    seed: int = 0,
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """Only the real-voice test set: ``n`` digit strings assembled from asterisk's recordings.

    The same utterances as ``synthesize_digits(..., n_real=n, seed=seed)``'s split ``"real"``.
    Returns the path of ``out_dir/manifest.jsonl``.
    """
    return synthesize_digits(
        out_dir,
        n_train=0,
        n_val=0,
        n_test=0,
        n_real=n,
        seed=seed,
        workers=workers,
        progress=progress,
    )


def load_digits(manifest_or_dir: str | os.PathLike[str], split: str) -> list[Utterance]:
    """The utterances of one split, in manifest order.

    Args:
        manifest_or_dir: a ``manifest.jsonl`` or the folder holding it.
        split: one of ``"train"``, ``"val"``, ``"test"``, ``"real"``.

    Raises:
        FileNotFoundError: no manifest (generation never finished there).
        ValueError: unknown split, or a corrupt manifest, or a file it lists is missing.
    """
    if split not in SPLITS:
        raise ValueError(f"load_digits: expected split to be one of {SPLITS}, got {split!r}")
    path = Path(manifest_or_dir)
    manifest = path / MANIFEST if path.is_dir() else path
    if not manifest.is_file():
        raise FileNotFoundError(
            f"load_digits: no manifest at {manifest}; run synthesize_digits() to make the data "
            "(a folder without a manifest is an unfinished generation)"
        )
    out = []
    for row in _read_manifest(manifest):
        if row["split"] != split:
            continue
        audio = manifest.parent / row["path"]
        if not audio.is_file():
            raise ValueError(f"load_digits: {audio}, listed in {manifest}, is missing")
        times = row["word_times_s"]
        out.append(
            Utterance(
                id=row["id"],
                path=audio.resolve(),
                transcript=row["transcript"],
                voice=row["voice"],
                split=row["split"],
                params=row["params"],
                duration_s=row["duration_s"],
                word_times_s=None if times is None else tuple(map(tuple, times)),
            )
        )
    return out


# --------------------------------------------------------------------------- the cache


def _build(root: Path, items: list[dict[str, Any]], workers: int, progress: bool) -> Path:
    manifest = root / MANIFEST
    if _is_complete(manifest, items):
        return manifest
    root.mkdir(parents=True, exist_ok=True)
    for folder in {(root / item["path"]).parent for item in items}:
        remove_left_over_temp_files_in(folder)  # of an earlier, killed build
    rows = []
    with ExitStack() as stack:
        if workers == 1:
            results: Iterator[dict[str, Any]] = map(_render, items, repeat(str(root)))
        else:
            context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=context))
            results = pool.map(_render, items, repeat(str(root)), chunksize=4)
        for row in track(results, total=len(items), description="digits", disable=not progress):
            rows.append(row)
    with atomic_write(manifest, "w") as fh:
        fh.write("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
    return manifest


def _is_complete(manifest: Path, items: list[dict[str, Any]]) -> bool:
    """Whether ``manifest`` lists exactly ``items`` and all their files exist."""
    if not manifest.is_file():
        return False
    try:
        rows = _read_manifest(manifest)
    except ValueError as e:
        _log.warning("%s; making the data again", e)
        return False
    planned = [{k: v for k, v in row.items() if k not in _COMPUTED} for row in rows]
    return planned == items and all((manifest.parent / r["path"]).is_file() for r in rows)


def _read_manifest(manifest: Path) -> list[dict[str, Any]]:
    text = manifest.read_text()
    if text and not text.endswith("\n"):
        raise ValueError(f"corrupt manifest {manifest}: its last line is cut off")
    rows = []
    required = {"id", "path", "transcript", "voice", "split", "params", *_COMPUTED}
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"corrupt manifest {manifest}, line {number}: {e}") from e
        if not isinstance(row, dict) or not required <= row.keys():
            raise ValueError(
                f"corrupt manifest {manifest}, line {number}: expected an object with keys "
                f"{sorted(required)}, got {line[:120]!r}"
            )
        if row["split"] not in SPLITS:
            raise ValueError(f"corrupt manifest {manifest}, line {number}: split {row['split']!r}")
        rows.append(row)
    return rows


def _check_int(fn: str, name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{fn}: expected {name} to be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{fn}: expected {name} ≥ {minimum}, got {value}")

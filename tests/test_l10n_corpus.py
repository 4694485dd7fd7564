"""The l10n corpus (issue 24): sentence pairs from gettext catalogues, cleaned on both sides.

Catalogues are made by the test with polib in a temporary locale folder, one entry per rule of
lstmkit.apps.translate.l10n, and read back through the CLI."""

from __future__ import annotations

from pathlib import Path

import polib
from typer.testing import CliRunner

from lstmkit.apps.translate.l10n import catalogue_pairs, clean

ENTRIES = [  # (English, German, flags, kept as)
    ("The _file could not be opened.", "Die _Datei konnte nicht geöffnet werden.", [],
     ("Die Datei konnte nicht geöffnet werden.", "The file could not be opened.")),
    ("Connecting to '%s' failed: the server is down.",
     "Verbinden zu »%s« fehlgeschlagen: der Server ist aus.", [],
     ("Verbinden zu fehlgeschlagen: der Server ist aus.",
      "Connecting to failed: the server is down.")),
    ("Press <b>Enter</b> to go on now.", "Drücken Sie <b>Eingabe</b>, um fortzufahren.", [],
     ("Drücken Sie Eingabe, um fortzufahren.", "Press Enter to go on now.")),
    ("Open", "Öffnen", [], None),  # a label, not a sentence
    ("Wait %d seconds and try again.", "Warten Sie %s Sekunden und versuchen Sie es erneut.", [],
     None),  # placeholders differ
    ("Found 3 files in the folder.", "Im Ordner wurden 4 Dateien gefunden.", [], None),  # numbers
    ("Line one of the message.\nLine two.", "Zeile eins der Nachricht.\nZeile zwei.", [], None),
    ("This one is only a fuzzy guess.", "Das ist nur eine ungefähre Vermutung hier.", ["fuzzy"],
     None),
    ("The file could not be opened.", "Die Datei konnte nicht geöffnet werden.", [], None),  # dup
    ("git remote update now please.", "git remote update now please.", [], None),  # copied
]  # fmt: skip


def make_catalogue(locale: Path) -> None:
    folder = locale / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8"}
    for en, de, flags, _ in ENTRIES:  # a .mo file sorts them by msgid: "The _file" first
        po.append(polib.POEntry(msgid=en, msgstr=de, flags=flags))
    po.save_as_mofile(str(folder / "app.mo"))


def test_catalogue_pairs_apply_every_rule(tmp_path: Path) -> None:
    make_catalogue(tmp_path)
    pairs, stats = catalogue_pairs("de", tmp_path)
    assert sorted(pairs) == sorted(kept for *_, kept in ENTRIES if kept is not None)
    assert stats.catalogues == 1 and stats.kept == 3 and stats.duplicates == 1
    assert stats.format_mismatch == 2 and stats.multi_line == 1


def test_clean_strips_accelerators_markup_and_placeholders() -> None:
    assert clean("_Open &File ~Now") == "Open File Now"
    assert clean("Copy %1$s to %(dest)s in {0} ${HOME}.") == "Copy to in."
    assert clean("a <span weight='bold'>b</span> c") == "a b c"
    assert clean("snake_case stays") == "snake_case stays"  # an inner underscore is no accelerator


def test_the_cli_writes_a_tsv_for_translate_train(tmp_path: Path) -> None:
    from lstmkit.apps.translate.cli import app
    from lstmkit.apps.translate.user_pairs import read_tsv

    make_catalogue(tmp_path / "locale")
    out = tmp_path / "pairs.tsv"
    res = CliRunner().invoke(
        app, ["corpus", "l10n", "--locale-dir", str(tmp_path / "locale"), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "3 sentence pairs from 1 catalogues" in res.output
    assert len(read_tsv(out)) == 3
    res = CliRunner().invoke(app, ["corpus", "l10n", "--lang", "xx", "--locale-dir",
                                   str(tmp_path / "locale"), "--out", str(out)])  # fmt: skip
    assert res.exit_code == 2 and "no gettext catalogues" in res.output

"""The web page in a real browser: headless Chromium (Debian's ``/usr/bin/chromium``) driven by
Playwright's Python API, against a server the test starts on a loopback port.

Each test types or clicks like a user and checks what the page shows against what the HTTP API
answers for the same input. Screenshots are written to ``artifacts/browser/`` (git-ignored).
The browser runs with a fresh profile and no network beyond the loopback server.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from lstmkit.serve import create_app
from test_serve_models import LiveServer, make_all, wav_bytes

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
TIMEOUT_MS = 30_000

if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
    pytest.skip(
        f"browser tests need Chromium at {CHROMIUM} (Debian: apt-get install chromium)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    files = make_all(tmp_path_factory.mktemp("models"), sentiment_epochs=60)
    with LiveServer(create_app(list(files.values()), workers=2)) as live:
        yield live


@pytest.fixture(scope="module")
def api(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1200, "height": 1000},
        )
        ctx.set_default_timeout(TIMEOUT_MS)
        yield ctx
        ctx.close()


@pytest.fixture
def page(context, server):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    outside: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith(server.url) else outside.append(r.url),
    )
    yield page
    page.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert [u for u in outside if not u.startswith(("data:", "blob:"))] == [], (
        f"the page fetched from other hosts: {outside}"
    )


def open_panel(page, server, panel):
    page.goto(f"{server.url}/#{panel}")
    page.wait_for_selector("body[data-ready='true']")
    assert page.locator(f"#panel-{panel}").is_visible()


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_review_updates_prediction_and_gate_heatmap_as_you_type(page, server, api):
    open_panel(page, server, "sentiment")
    assert "sentiment (sentiment)" in page.locator("#models-summary").inner_text()
    review = page.locator("#review")
    review.click()
    page.keyboard.type("a wonderful film", delay=15)
    page.wait_for_function("document.querySelectorAll('#sentiment-tokens .tok').length === 3")
    want = api.post("/v1/gates", json={"text": "a wonderful film"}).json()
    label = page.locator("#sentiment-label").inner_text()
    assert label == want["prediction"]["label"]
    shown = page.locator("#sentiment-prob").inner_text()
    assert f"{100 * want['prediction']['probability']:.1f}%" in shown
    assert page.locator("#sentiment-tokens .tok").all_inner_texts() == want["tokens"]
    # The gate table: one row per gate (mean over units), one column per token.
    rows = page.locator("#sentiment-gates .gate-table tr[data-gate]")
    assert [rows.nth(k).get_attribute("data-gate") for k in range(rows.count())] == list("ifgoch")
    cells = page.locator("#sentiment-gates .gate-table tr[data-gate='f'] td")
    assert cells.count() == 3
    f_mean = want["layers"][0]["mean"]["f"]
    assert cells.all_inner_texts() == [f"{v:.2f}" for v in f_mean]
    assert cells.first.evaluate("td => getComputedStyle(td).backgroundColor") != "rgba(0, 0, 0, 0)"
    # The unit heatmap: units x tokens of the cell state by default.
    canvas = page.locator("#sentiment-gates canvas.units")
    assert canvas.get_attribute("data-gate") == "c"
    assert canvas.get_attribute("data-units") == str(want["layers"][0]["units"])
    assert canvas.get_attribute("data-tokens") == "3"
    shot(page, "sentiment")

    # Keep typing: the page follows.
    updates = int(page.locator("body").get_attribute("data-sentiment-updates"))
    page.keyboard.type(" but boring", delay=15)
    page.wait_for_function("document.querySelectorAll('#sentiment-tokens .tok').length === 5")
    assert int(page.locator("body").get_attribute("data-sentiment-updates")) > updates
    later = api.post("/v1/gates", json={"text": "a wonderful film but boring"}).json()
    label = later["prediction"]["label"]
    page.wait_for_function(f"document.querySelector('#sentiment-label').textContent === {label!r}")
    # Other layer, other gate.
    page.select_option("#sentiment-gates .layer-select", "1")
    page.select_option("#sentiment-gates .gate-select", "f")
    assert canvas.get_attribute("data-gate") == "f"
    assert canvas.get_attribute("data-units") == str(later["layers"][1]["units"])

    # A text without words: the API's message, shown on the page.
    review.fill("!!! ???")
    page.wait_for_selector("#sentiment-error:not([hidden])")
    assert "has no words" in page.locator("#sentiment-error").inner_text()
    review.fill("a good film")
    page.wait_for_selector("#sentiment-error", state="hidden")


def test_generation_streams_with_temperature_and_top_k(page, server, api):
    open_panel(page, server, "generate")
    page.locator("#prompt").fill("JULIET:")
    page.locator("#temperature").fill("1.5")
    page.locator("#top-k").fill("7")
    page.locator("#length").fill("60")
    page.locator("#seed").fill("11")
    assert page.locator("#temperature-value").inner_text() == "1.50"
    assert page.locator("#top-k-value").inner_text() == "7"
    page.click("#generate-btn")
    page.wait_for_selector("#generated[data-done='true']")
    body = {"prompt": "JULIET:", "temperature": 1.5, "top_k": 7, "length": 60, "seed": 11}
    want = api.post("/v1/generate", json={**body, "stream": False}).json()
    assert page.locator("#generated .drawn").inner_text() == want["text"]
    assert page.locator("#generated .prompt").inner_text() == "JULIET:"
    assert "60 tokens" in page.locator("#generate-status").inner_text()
    page.click("#panel-generate details summary")
    page.click("#prompt-gates-btn")
    page.wait_for_selector("#prompt-gates .gate-table")
    assert page.locator("#prompt-gates .gate-table tr[data-gate='c'] td").count() == 7
    shot(page, "generate")
    # An unknown character: the API's 422 message on the page.
    page.locator("#prompt").fill("ROMEO: zzz")
    page.click("#generate-btn")
    page.wait_for_selector("#generate-error:not([hidden])")
    assert "does not know" in page.locator("#generate-error").inner_text()


def test_translation_shows_the_attention(page, server, api):
    open_panel(page, server, "translate")
    page.locator("#source").fill("Das Haus ist gross.")
    page.locator("#beam").fill("2")
    page.click("#translate-btn")
    page.wait_for_selector("#attention tr")
    want = api.post("/v1/translate", json={"text": "Das Haus ist gross.", "beam_size": 2})
    t = want.json()["translations"][0]
    assert page.locator("#translation").inner_text() == (t["text"] or "(empty)")
    assert page.locator("#attention tr").count() == len(t["target_pieces"]) + 1
    assert page.locator("#attention th.src").count() == len(t["source_pieces"])
    assert page.locator("#attention tr:nth-child(2) td").count() == len(t["source_pieces"])
    shot(page, "translate")


def test_upload_a_wav_and_read_the_transcript(page, server, api, tmp_path):
    open_panel(page, server, "transcribe")
    audio = wav_bytes(0.8)
    page.set_input_files(
        "#audio-file", files=[{"name": "tone.wav", "mimeType": "audio/wav", "buffer": audio}]
    )
    assert page.locator("#audio-player").is_visible()
    page.click("#transcribe-btn")
    page.wait_for_selector("#transcript[data-seconds]")
    want = api.post("/v1/transcribe", files={"file": ("tone.wav", audio, "audio/wav")}).json()
    shown = page.locator("#transcript").inner_text()
    assert shown == (f"“{want['text']}”" if want["text"] else "(silence: nothing was said)")
    shot(page, "transcribe")
    # Not audio: the server's 415 message.
    page.set_input_files(
        "#audio-file",
        files=[{"name": "notes.wav", "mimeType": "audio/wav", "buffer": b"no audio here" * 40}],
    )
    page.click("#transcribe-btn")
    page.wait_for_selector("#transcribe-error:not([hidden])")
    assert "415" in page.locator("#transcribe-error").inner_text()


def test_api_reference_works_offline(page, server):
    open_panel(page, server, "api")
    page.wait_for_selector("#api-list .endpoint")
    listed = page.locator("#api-list .endpoint h3 code").all_inner_texts()
    for path in (
        "POST /v1/sentiment",
        "POST /v1/gates",
        "POST /v1/generate",
        "POST /v1/transcribe",
    ):
        assert path in listed

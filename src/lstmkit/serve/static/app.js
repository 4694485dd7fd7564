// lstmkit's web page: plain JavaScript, no build step, nothing fetched from other hosts.
// Talks to the JSON API of lstmkit.serve (see /openapi.json).
"use strict";

const state = {
  models: [],          // GET /v1/models -> models
  colormaps: {},       // name -> anchor colours
  gateScales: {},      // gate -> [cmap, vmin, vmax]
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) node.append(child);
  return node;
}

// -- colours (the glass box's maps, sent by the server) ---------------------------------------

function hexToRgb(hex) {
  const h = hex.replace("#", "");
  return [0, 2, 4].map((k) => parseInt(h.slice(k, k + 2), 16));
}

function colorAt(cmap, t) {
  const anchors = (state.colormaps[cmap] || ["#ffffff", "#000000"]).map(hexToRgb);
  const x = Math.min(Math.max(Number.isFinite(t) ? t : 0.5, 0), 1) * (anchors.length - 1);
  const k = Math.min(Math.floor(x), anchors.length - 2);
  const f = x - k;
  return anchors[k].map((a, j) => Math.round(a + f * (anchors[k + 1][j] - a)));
}

function css(rgb) {
  return `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
}

function textOn(rgb) {
  const lum = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255;
  return lum < 0.5 ? "#fff" : "#111";
}

// The colour scale of a gate, as lstmkit.inspect.colors.scale_for: the gate's fixed range
// (gates 0..1, h/g/n -1..1); the unbounded cell state c symmetric around 0, scaled to the data.
function scaleFor(gate, rows) {
  const [cmap, lo, hi] = state.gateScales[gate] || ["diverging", -1, 1];
  if (gate === "c") {
    let m = 0;
    for (const row of rows) for (const v of [].concat(row)) m = Math.max(m, Math.abs(v));
    return { cmap, lo: -(m || 1), hi: m || 1 };
  }
  return { cmap, lo, hi };
}

function paint(node, value, scale) {
  const rgb = colorAt(scale.cmap, (value - scale.lo) / (scale.hi - scale.lo));
  node.style.background = css(rgb);
  node.style.color = textOn(rgb);
}

// -- talking to the API --------------------------------------------------------------------------

async function api(path, body, signal) {
  const opts = { method: body === undefined ? "GET" : "POST", signal };
  if (body instanceof FormData) opts.body = body;
  else if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers = { "content-type": "application/json" };
  }
  const res = await fetch(path, opts);
  if (!res.ok) throw new Error(await errorText(res));
  return res.json();
}

async function errorText(res) {
  try {
    const data = await res.json();
    return `${res.status}: ${data.detail || res.statusText}`;
  } catch (e) {
    return `${res.status}: ${res.statusText}`;
  }
}

function showError(id, err) {
  const node = $(id);
  if (!err) {
    node.hidden = true;
    node.textContent = "";
    return;
  }
  node.hidden = false;
  node.textContent = err.message || String(err);
}

function selectedModel(panel) {
  const select = document.querySelector(`#panel-${panel} .model-select`);
  return select && select.value ? select.value : undefined;
}

// -- tabs and models --------------------------------------------------------------------------------

const PANELS = {
  sentiment: { app: "sentiment", endpoint: "/v1/sentiment" },
  generate: { app: "textgen", endpoint: "/v1/generate" },
  translate: { app: "translate", endpoint: "/v1/translate" },
  transcribe: { app: "speech", endpoint: "/v1/transcribe" },
};

function showPanel(name) {
  for (const tab of document.querySelectorAll("#tabs button")) {
    const on = tab.dataset.panel === name;
    tab.classList.toggle("active", on);
    tab.setAttribute("aria-selected", on ? "true" : "false");
  }
  for (const panel of document.querySelectorAll(".panel")) panel.hidden = panel.id !== `panel-${name}`;
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

async function loadModels() {
  const data = await api("/v1/models");
  state.models = data.models;
  state.colormaps = data.colormaps;
  state.gateScales = data.gate_scales;
  const summary = data.models.map((m) => `${m.name} (${m.app})`).join(", ");
  $("models-summary").textContent = `Loaded: ${summary || "no models"}`;
  let first = null;
  for (const [panel, info] of Object.entries(PANELS)) {
    const models = data.models.filter((m) => m.app === info.app);
    const section = $(`panel-${panel}`);
    const select = section.querySelector(".model-select");
    select.replaceChildren(...models.map((m) => el("option", { value: m.name, text: m.name })));
    select.closest("label").hidden = models.length < 2;
    const missing = section.querySelector(".unavailable");
    missing.hidden = models.length > 0;
    section.querySelector(".app").hidden = models.length === 0;
    $(`tab-${panel}`).classList.toggle("off", models.length === 0);
    if (models.length === 0) {
      missing.textContent =
        `No ${info.app} model is loaded: ${info.endpoint} is not available. ` +
        `Start the server with a model file written by \`lstmkit ${info.app} train\`.`;
    } else if (first === null) {
      first = panel;
    }
  }
  const wanted = location.hash.slice(1);
  showPanel(wanted && $(`panel-${wanted}`) ? wanted : first || "api");
}

// -- the gates view (shared by sentiment, prompts) --------------------------------------------

function renderGates(container, data) {
  const previous = {
    layer: container.querySelector(".layer-select")?.value,
    gate: container.querySelector(".gate-select")?.value,
  };
  container.replaceChildren();
  if (!data.layers.length) return;
  const layerSelect = el("select", { class: "layer-select" });
  data.layers.forEach((layer, k) => {
    const label = layer.direction === "forward" ? layer.name : `${layer.name} (${layer.direction})`;
    layerSelect.append(el("option", { value: String(k), text: `${label}: ${layer.kind.toUpperCase()}, ${layer.units} units` }));
  });
  const gateSelect = el("select", { class: "gate-select" });
  const controls = el("div", { class: "controls" },
    el("label", {}, "Layer ", layerSelect), el("label", {}, "Unit heatmap of ", gateSelect));
  const table = el("table", { class: "gate-table" });
  const canvasBox = el("div", { class: "scroll" });
  const legend = el("div", { class: "legend" });
  container.append(el("h3", { text: "Gates and cell state, mean over units" }), controls, el("div", { class: "scroll" }, table),
    el("h3", { text: "Every unit" }), legend, canvasBox);

  if (previous.layer !== undefined && Number(previous.layer) < data.layers.length) layerSelect.value = previous.layer;

  function drawLayer() {
    const layer = data.layers[Number(layerSelect.value)];
    const gates = Object.keys(layer.mean);
    gateSelect.replaceChildren(...gates.map((g) => el("option", { value: g, text: g })));
    const keep = gates.includes(previous.gate) ? previous.gate : gates.includes("c") ? "c" : gates[0];
    gateSelect.value = keep;
    // summary table: one row per gate, one column per token
    table.replaceChildren();
    const head = el("tr", {}, el("th", { text: "" }));
    data.tokens.forEach((t) => head.append(el("th", { class: "tok", text: t })));
    table.append(head);
    for (const g of gates) {
      const row = el("tr", { "data-gate": g }, el("th", { text: g }));
      const scale = scaleFor(g, layer.mean[g]);
      layer.mean[g].forEach((v, t) => {
        const cell = el("td", { text: v.toFixed(2), title: `${g} at “${data.tokens[t]}” (t=${t}): mean ${v.toFixed(4)}` });
        paint(cell, v, scale);
        row.append(cell);
      });
      table.append(row);
    }
    drawUnits();
  }

  function drawUnits() {
    previous.gate = gateSelect.value;
    const layer = data.layers[Number(layerSelect.value)];
    const g = gateSelect.value;
    const values = layer.values[g];          // [token][unit]
    const T = values.length;
    const H = T ? values[0].length : 0;
    const scale = scaleFor(g, values);
    const cw = Math.max(6, Math.min(28, Math.floor(900 / Math.max(T, 1))));
    const ch = Math.max(2, Math.min(10, Math.floor(360 / Math.max(H, 1))));
    const canvas = el("canvas", { class: "units", width: T * cw, height: H * ch });
    canvas.dataset.gate = g;
    canvas.dataset.units = String(H);
    canvas.dataset.tokens = String(T);
    const ctx = canvas.getContext("2d");
    for (let t = 0; t < T; t++) {
      for (let u = 0; u < H; u++) {
        ctx.fillStyle = css(colorAt(scale.cmap, (values[t][u] - scale.lo) / (scale.hi - scale.lo)));
        ctx.fillRect(t * cw, u * ch, cw, ch);
      }
    }
    const tip = $("tooltip");
    canvas.onmousemove = (ev) => {
      const r = canvas.getBoundingClientRect();
      const t = Math.floor((ev.clientX - r.left) / cw);
      const u = Math.floor((ev.clientY - r.top) / ch);
      if (t < 0 || t >= T || u < 0 || u >= H) return;
      tip.hidden = false;
      tip.textContent = `${g}, unit ${u}, “${data.tokens[t]}” (t=${t}): ${values[t][u].toFixed(4)}`;
      tip.style.left = `${ev.pageX + 12}px`;
      tip.style.top = `${ev.pageY + 12}px`;
    };
    canvas.onmouseleave = () => { tip.hidden = true; };
    canvasBox.replaceChildren(canvas);
    const bar = el("span", { class: "bar" });
    bar.style.background = `linear-gradient(to right, ${(state.colormaps[scale.cmap] || []).join(", ")})`;
    legend.replaceChildren(
      el("span", { text: `${g}: units (rows) × tokens (columns)` }),
      el("span", { text: scale.lo.toFixed(2) }), bar, el("span", { text: scale.hi.toFixed(2) }));
  }

  layerSelect.onchange = drawLayer;
  gateSelect.onchange = drawUnits;
  drawLayer();
}

// -- sentiment: live -----------------------------------------------------------------------------

let sentimentTimer = null;
let sentimentAbort = null;

function renderSentiment(data) {
  const p = data.prediction;
  const label = $("sentiment-label");
  label.textContent = p.label;
  label.className = `label-badge ${p.label}`;
  const scored = p.scored_class || "positive";
  const pClass = p.p_class ?? p.p_positive;
  $("sentiment-prob").textContent = `${(100 * p.probability).toFixed(1)}% (p(${scored}) = ${pClass.toFixed(3)})`;
  $("sentiment-bar").style.width = `${(100 * pClass).toFixed(1)}%`;
  const tokens = $("sentiment-tokens");
  tokens.replaceChildren();
  const scale = { cmap: "diverging", lo: 0, hi: 1 };
  let before = p.prior;
  data.tokens.forEach((t, k) => {
    const value = p.prefix[k];
    const chip = el("span", { class: "tok", text: t });
    chip.title = `p(${scored}) after “${t}”: ${value.toFixed(3)} (Δ ${(value - before >= 0 ? "+" : "")}${(value - before).toFixed(3)})`;
    before = value;
    paint(chip, value, scale);
    tokens.append(chip);
  });
  renderGates($("sentiment-gates"), data);
}

function clearSentiment() {
  $("sentiment-label").textContent = "–";
  $("sentiment-label").className = "label-badge";
  $("sentiment-prob").textContent = "";
  $("sentiment-bar").style.width = "50%";
  $("sentiment-tokens").replaceChildren();
  $("sentiment-gates").replaceChildren();
}

async function updateSentiment() {
  const text = $("review").value;
  if (sentimentAbort) sentimentAbort.abort();
  if (!text.trim()) {
    clearSentiment();
    showError("sentiment-error", null);
    return;
  }
  sentimentAbort = new AbortController();
  const signal = sentimentAbort.signal;
  try {
    const data = await api("/v1/gates", { text, model: selectedModel("sentiment") }, signal);
    if (signal.aborted) return;
    showError("sentiment-error", null);
    renderSentiment(data);
    document.body.dataset.sentimentUpdates = String(Number(document.body.dataset.sentimentUpdates || 0) + 1);
  } catch (err) {
    if (err.name === "AbortError") return;
    clearSentiment();
    showError("sentiment-error", err);
  }
}

// -- generation: streaming NDJSON ------------------------------------------------------------------

let generateAbort = null;

async function generate() {
  const out = $("generated");
  out.replaceChildren();
  showError("generate-error", null);
  const prompt = $("prompt").value;
  const seed = $("seed").value;
  const body = {
    model: selectedModel("generate"),
    prompt,
    temperature: Number($("temperature").value),
    top_k: Number($("top-k").value),
    length: Number($("length").value),
    stream: true,
  };
  if (seed !== "") body.seed = Number(seed);
  generateAbort = new AbortController();
  $("generate-btn").disabled = true;
  $("stop-btn").disabled = false;
  const status = $("generate-status");
  status.textContent = "generating…";
  const promptNode = el("span", { class: "prompt", text: prompt });
  const textNode = el("span", { class: "drawn" });
  out.append(promptNode, textNode);
  const started = performance.now();
  let count = 0;
  try {
    const res = await fetch("/v1/generate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: generateAbort.signal,
    });
    if (!res.ok) throw new Error(await errorText(res));
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (!line.trim()) continue;
        const msg = JSON.parse(line);
        if (msg.token !== undefined) {
          textNode.textContent += msg.token;
          count += 1;
          status.textContent = `${count} tokens…`;
        } else if (msg.done) {
          const secs = (performance.now() - started) / 1000;
          status.textContent = `${msg.tokens} tokens in ${secs.toFixed(2)} s (${msg.finish_reason || "error"})`;
          if (msg.error) showError("generate-error", new Error(msg.error));
          out.dataset.done = "true";
        }
      }
    }
  } catch (err) {
    if (err.name === "AbortError") status.textContent = `stopped after ${count} tokens`;
    else {
      status.textContent = "";
      showError("generate-error", err);
    }
  } finally {
    $("generate-btn").disabled = false;
    $("stop-btn").disabled = true;
    generateAbort = null;
  }
}

async function promptGates() {
  showError("generate-error", null);
  try {
    const data = await api("/v1/gates", { text: $("prompt").value || "\n", model: selectedModel("generate") });
    renderGates($("prompt-gates"), data);
  } catch (err) {
    showError("generate-error", err);
  }
}

// -- translation -----------------------------------------------------------------------------------

async function translate() {
  showError("translate-error", null);
  $("translate-btn").disabled = true;
  try {
    const data = await api("/v1/translate", {
      text: $("source").value,
      beam_size: Number($("beam").value),
      model: selectedModel("translate"),
    });
    const t = data.translations[0];
    $("translation").textContent = t.text || "(empty)";
    const table = $("attention");
    table.replaceChildren();
    if (!t.attention) return;
    const head = el("tr", {}, el("th", {}));
    t.source_pieces.forEach((p) => head.append(el("th", { class: "src", text: p })));
    table.append(head);
    t.attention.forEach((row, i) => {
      const tr = el("tr", {}, el("th", { text: t.target_pieces[i] ?? "" }));
      row.forEach((w, j) => {
        const td = el("td", { title: `${t.target_pieces[i]} ← ${t.source_pieces[j]}: ${w.toFixed(3)}` });
        td.style.background = `rgba(8, 48, 107, ${Math.min(Math.max(w, 0), 1).toFixed(3)})`;
        tr.append(td);
      });
      table.append(tr);
    });
  } catch (err) {
    showError("translate-error", err);
  } finally {
    $("translate-btn").disabled = false;
  }
}

// -- speech ------------------------------------------------------------------------------------------

async function transcribe() {
  showError("transcribe-error", null);
  const file = $("audio-file").files[0];
  if (!file) {
    showError("transcribe-error", new Error("choose an audio file first"));
    return;
  }
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("decoder", $("decoder").value);
  const model = selectedModel("transcribe");
  if (model) form.append("model", model);
  $("transcribe-btn").disabled = true;
  $("transcript").textContent = "…";
  try {
    const data = await api("/v1/transcribe", form);
    $("transcript").textContent = data.text ? `“${data.text}”` : "(silence: nothing was said)";
    $("transcript").dataset.seconds = String(data.seconds);
  } catch (err) {
    $("transcript").textContent = "";
    showError("transcribe-error", err);
  } finally {
    $("transcribe-btn").disabled = false;
  }
}

// -- API reference -----------------------------------------------------------------------------------

async function loadApi() {
  const spec = await api("/openapi.json");
  const list = $("api-list");
  list.replaceChildren();
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const box = el("div", { class: "endpoint" },
        el("h3", {}, el("code", { text: `${method.toUpperCase()} ${path}` }), ` ${op.summary || ""}`));
      if (op.description) box.append(el("p", { text: op.description }));
      const ref = op.requestBody?.content?.["application/json"]?.schema?.$ref;
      if (ref) {
        const schema = spec.components.schemas[ref.split("/").pop()];
        const rows = Object.entries(schema.properties || {}).map(([k, v]) => el("li", {},
          el("code", { text: k }), `${(schema.required || []).includes(k) ? " (required)" : ""}: ${v.description || ""}`));
        box.append(el("ul", {}, ...rows));
      }
      list.append(box);
    }
  }
}

// -- wiring --------------------------------------------------------------------------------------------

function bindSlider(id, digits) {
  const input = $(id);
  const out = $(`${id}-value`);
  const show = () => { out.textContent = Number(input.value).toFixed(digits); };
  input.addEventListener("input", show);
  show();
}

document.addEventListener("DOMContentLoaded", async () => {
  for (const tab of document.querySelectorAll("#tabs button")) tab.onclick = () => showPanel(tab.dataset.panel);
  bindSlider("temperature", 2);
  bindSlider("top-k", 0);
  bindSlider("length", 0);
  bindSlider("beam", 0);
  $("review").addEventListener("input", () => {
    clearTimeout(sentimentTimer);
    sentimentTimer = setTimeout(updateSentiment, 150);
  });
  document.querySelector("#panel-sentiment .model-select").onchange = updateSentiment;
  $("generate-btn").onclick = generate;
  $("stop-btn").onclick = () => generateAbort && generateAbort.abort();
  $("prompt-gates-btn").onclick = promptGates;
  $("translate-btn").onclick = translate;
  $("transcribe-btn").onclick = transcribe;
  $("audio-file").onchange = () => {
    const file = $("audio-file").files[0];
    const player = $("audio-player");
    player.hidden = !file;
    if (file) player.src = URL.createObjectURL(file);
  };
  try {
    await loadModels();
    await loadApi();
    document.body.dataset.ready = "true";
  } catch (err) {
    $("models-summary").textContent = `Could not reach the server: ${err.message}`;
  }
});

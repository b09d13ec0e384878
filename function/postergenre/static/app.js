"use strict";
// Posts the chosen poster to this same function (with ?explain=1) and renders genres, scores and
// thresholds; a genre chip overlays that genre's heatmap on the poster.
const $ = (id) => document.getElementById(id);
const fileInput = $("file"), drop = $("drop"), preview = $("preview"), heatmap = $("heatmap");
const HOT_ALPHA = 190; // overlay opacity (of 255) where a genre's evidence is strongest

function show(el, on) { el.hidden = !on; }

// The heatmap is drawn at its own resolution (cols x rows pixels); CSS scales it over the poster,
// which the browser smooths. Value v in 0..1 -> yellow (weak) to red (strong), alpha HOT_ALPHA * v.
function drawHeatmap(genre, entry) {
  heatmap.width = entry.cols;
  heatmap.height = entry.rows;
  const ctx = heatmap.getContext("2d");
  const image = ctx.createImageData(entry.cols, entry.rows);
  entry.heatmap.forEach((row, r) => row.forEach((v, c) => {
    const i = 4 * (r * entry.cols + c);
    image.data.set([255, Math.round(220 * (1 - v)), 0, Math.round(HOT_ALPHA * v)], i);
  }));
  ctx.putImageData(image, 0, 0);
  heatmap.dataset.genre = genre;
  heatmap.setAttribute("role", "img");
  heatmap.setAttribute("aria-label", `Where the model sees ${genre}`);
  show(heatmap, true);
}

function choose(genre, explanations) {
  const again = heatmap.dataset.genre === genre && !heatmap.hidden;
  $("genres").querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(!again && b.dataset.genre === genre)));
  if (again) { show(heatmap, false); delete heatmap.dataset.genre; } else { drawHeatmap(genre, explanations[genre]); }
}

function chip(genre, explanations) {
  const button = Object.assign(document.createElement("button"), { type: "button", textContent: genre });
  button.dataset.genre = genre;
  button.setAttribute("aria-pressed", "false");
  if (explanations && explanations[genre]) button.addEventListener("click", () => choose(genre, explanations));
  else button.disabled = true;
  const li = document.createElement("li");
  li.append(button);
  return li;
}

function render(body, ms) {
  const list = $("genres");
  list.replaceChildren(...body.genres.map((g) => chip(g, body.explanations)));
  show($("genres-title"), true);
  show($("hint"), Boolean(body.explanations));
  const tbody = $("scores").querySelector("tbody");
  const rows = Object.entries(body.scores).sort((a, b) => b[1] - a[1]);
  tbody.replaceChildren(...rows.map(([genre, score]) => {
    const tr = document.createElement("tr");
    const bar = document.createElement("div"); bar.className = "bar";
    const fill = document.createElement("div");
    fill.className = "fill" + (body.genres.includes(genre) ? " on" : "");
    fill.style.width = (score * 100).toFixed(1) + "%";
    bar.append(fill);
    const t = body.thresholds && body.thresholds[genre];
    if (t !== undefined) {
      const mark = document.createElement("div"); mark.className = "mark";
      mark.style.left = (t * 100).toFixed(1) + "%"; mark.title = "threshold " + t;
      bar.append(mark);
    }
    const cells = [genre, score.toFixed(3)].map((text) => Object.assign(document.createElement("td"), { textContent: text }));
    const barCell = document.createElement("td"); barCell.append(bar);
    bar.setAttribute("role", "img");
    bar.setAttribute("aria-label", `${genre} ${(score * 100).toFixed(0)}%` + (t !== undefined ? `, threshold ${(t * 100).toFixed(0)}%` : ""));
    tr.append(...cells, barCell);
    return tr;
  }));
  show($("scores"), true);
  $("meta").textContent = `Model ${body.model.name} ${body.model.version} - ${ms.toFixed(0)} ms`;
}

function post(file, explain) {
  const form = new FormData();
  form.append("image", file);
  return fetch(explain ? "?explain=1" : ".", { method: "POST", body: form, headers: { "Accept": "application/json" } });
}

async function classify(file) {
  show($("error"), false);
  $("genres").replaceChildren();
  show($("scores"), false);
  show($("hint"), false);
  show(heatmap, false);
  delete heatmap.dataset.genre;
  $("status").textContent = "Classifying...";
  if (preview.src) URL.revokeObjectURL(preview.src);
  if (file.type.startsWith("image/")) { preview.src = URL.createObjectURL(file); show($("poster"), true); } else { show($("poster"), false); }
  const started = performance.now();
  try {
    let r = await post(file, true);
    let body = await r.json();
    if (r.status === 400 && body.error && body.error.code === "explanations_unavailable") {
      r = await post(file, false); // a model without heatmaps: genres and scores only
      body = await r.json();
    }
    const ms = performance.now() - started;
    $("status").textContent = "";
    if (!r.ok) throw new Error(body.error ? body.error.message : `HTTP ${r.status}`);
    render(body, ms);
  } catch (err) {
    $("status").textContent = "";
    $("error").textContent = err.message || String(err);
    show($("error"), true);
  }
}

fileInput.addEventListener("change", () => { if (fileInput.files[0]) classify(fileInput.files[0]); });
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); fileInput.click(); } });
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", (e) => { const f = e.dataTransfer.files[0]; if (f) classify(f); });

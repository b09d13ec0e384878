"use strict";
// Posts the chosen poster to this same function and renders genres, scores and thresholds.
const $ = (id) => document.getElementById(id);
const fileInput = $("file"), drop = $("drop"), preview = $("preview");

function show(el, on) { el.hidden = !on; }

function render(body, ms) {
  const list = $("genres");
  list.replaceChildren(...body.genres.map((g) => Object.assign(document.createElement("li"), { textContent: g })));
  show($("genres-title"), true);
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

async function classify(file) {
  show($("error"), false);
  $("genres").replaceChildren();
  show($("scores"), false);
  $("status").textContent = "Classifying...";
  if (preview.src) URL.revokeObjectURL(preview.src);
  if (file.type.startsWith("image/")) { preview.src = URL.createObjectURL(file); show(preview, true); } else { show(preview, false); }
  const form = new FormData();
  form.append("image", file);
  const started = performance.now();
  try {
    const r = await fetch(".", { method: "POST", body: form, headers: { "Accept": "application/json" } });
    const body = await r.json();
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

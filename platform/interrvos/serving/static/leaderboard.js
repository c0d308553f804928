// The leaderboard page: GET /eval/v1/datasets, then GET /eval/v1/leaderboard?dataset=... per choice.
"use strict";

const EVAL_API = "/eval";  // the evaluation app's route prefix (serve/evaluate.yaml)

const byId = (id) => document.getElementById(id);
let datasets = [];
let loadSeq = 0;  // a new API key or dataset reloads: only the newest answer is shown

async function loadDatasets() {
  const seq = ++loadSeq;
  clearError();
  setStatus("loading", "Loading datasets…");
  try {
    const answer = await apiJson(`${EVAL_API}/v1/datasets`);
    if (seq !== loadSeq) return;
    datasets = answer.datasets || [];
    const select = byId("dataset");
    const previous = new URLSearchParams(location.search).get("dataset") || select.value;
    select.replaceChildren(...datasets.map((d) => el("option", { value: d.name, text: d.name })));
    if (!datasets.length) {
      select.append(el("option", { value: "", text: "(no registered datasets)", disabled: true }));
      setStatus("done", "No datasets");
      return;
    }
    if (datasets.some((d) => d.name === previous)) select.value = previous;
    await loadLeaderboard();
  } catch (err) {
    if (seq === loadSeq) showError(err);
  }
}

async function loadLeaderboard() {
  const name = byId("dataset").value;
  const d = datasets.find((x) => x.name === name);
  const items = d && d.items ? Object.entries(d.items).map(([k, v]) => `${v} ${k}`).join(", ") : "";
  byId("dataset-counts").textContent = d ? `${d.videos} videos, ${d.expressions} expressions${items ? ` (${items})` : ""}` : "";
  const seq = ++loadSeq;
  clearError();
  setStatus("loading", `Loading the leaderboard of ${name}…`);
  try {
    const board = await apiJson(`${EVAL_API}/v1/leaderboard?dataset=${encodeURIComponent(name)}`);
    if (seq !== loadSeq) return;
    renderRows(board.rows || []);
    setStatus("done", `${(board.rows || []).length} result(s) on ${board.dataset || name}`);
    window.interrvos.rows = board.rows || [];
  } catch (err) {
    if (seq !== loadSeq) return;
    renderRows([]);
    showError(err);
  }
}

// A setting's score: the server sends {J, F, JF} (x100, null when a setting has no items).
function score(setting, key) {
  if (setting === null || setting === undefined) return "–";
  const v = typeof setting === "number" ? setting : setting[key];
  return v === null || v === undefined ? "–" : Number(v).toFixed(1);
}

// ISO text or Unix seconds, shown in the viewer's locale.
function when(value) {
  if (value === null || value === undefined || value === "") return "";
  const date = new Date(typeof value === "number" ? value * 1000 : value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

function renderRows(rows) {
  const body = byId("leaderboard").tBodies[0];
  body.replaceChildren(...rows.map((r) => {
    const what = r.checkpoint ? `checkpoint ${r.checkpoint}` : `file ${String(r.file_sha256 || "").slice(0, 12)}`;
    const cells = [
      [r.rank, "num"], [r.name, ""], [what, ""],
      [score(r.overall, "JF"), "num"], [score(r.overall, "J"), "num"], [score(r.overall, "F"), "num"],
      [score(r.referring, "JF"), "num"], [score(r.actor_target, "JF"), "num"],
      [r.submitted_by || "", ""], [when(r.submitted_at), ""],
    ];
    const tr = el("tr", { "data-id": String(r.id) }, ...cells.map(([text, cls]) => el("td", { text: String(text ?? ""), class: cls })));
    if (r.file_sha256) tr.title = `sha256 ${r.file_sha256}`;
    return tr;
  }));
  if (!rows.length) body.append(el("tr", {}, el("td", { text: "no results yet", colSpan: 10 })));
}

bindApiKeyField(byId("api-key"), loadDatasets);
byId("dataset").addEventListener("change", () => {
  const url = new URL(location.href);
  url.searchParams.set("dataset", byId("dataset").value);
  history.replaceState(null, "", url);
  loadLeaderboard();
});
loadDatasets();

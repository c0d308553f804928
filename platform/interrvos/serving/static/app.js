// The segmentation page: pick a clip or upload a video, type expressions, pick one checkpoint (or two
// to compare), POST /v1/segment (or /v1/compare) with output "rle+frames", then play the returned
// frames on a canvas with the actor and target masks drawn over them.
"use strict";

const API = "";                 // the model app's route prefix ("/" in serve/model.yaml)
const PLAY_FPS = 10;
const OVERLAY_ALPHA = 140;      // of 255: masks stay see-through
const COLOURS = { actor: [0xff, 0x3b, 0x30], target: [0x0a, 0x84, 0xff] };  // #ff3b30, #0a84ff (style.css)

const $ = (id) => document.getElementById(id);
const view = {
  clips: [],
  answers: [],      // one answer (segment) or two (compare), in the server's shape
  iou: null,        // compare only: the server's per-expression IoU
  images: [],       // per panel, per output frame: a decoded <img> (or undefined while loading)
  panels: [],       // per panel: {canvas, ctx, overlay, overlayCtx, info}
  frame: 0,
  expression: 0,
  timer: null,
  abort: null,
  streaming: false,  // an NDJSON answer still arriving: the view follows the newest frame
  downloadUrl: null,
  listSeq: 0,
};
Object.assign(window.interrvos, { lastMaskPixels: 0, frame: 0, colours: COLOURS, overlayAlpha: OVERLAY_ALPHA, view });

// ---------------------------------------------------------------- lists: checkpoints and clips

async function loadLists() {
  const seq = ++view.listSeq;  // a new API key reloads: only the newest answer counts
  clearError();
  setStatus("loading", "Loading checkpoints and clips…");
  try {
    const [models, clips] = await Promise.all([apiJson(`${API}/v1/models`), apiJson(`${API}/v1/clips`)]);
    if (seq !== view.listSeq) return;
    fillModels(models);
    fillClips(clips.clips || []);
    setStatus("ready", `${(models.models || []).length} checkpoint(s), ${view.clips.length} clip(s)`);
  } catch (err) {
    if (seq === view.listSeq) showError(err);
  }
}

function fillModels(models) {
  for (const select of [$("checkpoint-a"), $("checkpoint-b")]) {
    select.replaceChildren();
    for (const m of models.models || []) {
      const label = `${m.id} (${m.name || "?"}, ${m.mode || "?"}, ${m.kind || "?"})`;
      select.append(el("option", { value: m.id, text: label, title: `content hash ${m.content_hash || "?"}` }));
    }
  }
  const ids = (models.models || []).map((m) => m.id);
  if (models.default && ids.includes(models.default)) $("checkpoint-a").value = models.default;
  const other = ids.find((id) => id !== $("checkpoint-a").value);
  if (other) $("checkpoint-b").value = other;
}

function fillClips(clips) {
  view.clips = clips;
  const select = $("clip");
  select.replaceChildren();
  clips.forEach((c, i) => select.append(el("option", { value: String(i), text: `${c.dataset}/${c.clip} (${c.frames} frames)` })));
  if (!clips.length) select.append(el("option", { value: "", text: "(no registered clips)", disabled: true }));
  onClipChange();
}

function selectedClip() {
  const i = $("clip").value;
  return i === "" ? null : view.clips[Number(i)];
}

function onClipChange() {
  const clip = selectedClip();
  const box = $("suggestions");
  box.replaceChildren();
  if (!clip) return;
  for (const text of clip.expressions || []) {
    const chip = el("button", { type: "button", class: "chip", text });
    chip.addEventListener("click", () => {
      const area = $("expressions");
      area.value = area.value.trim() ? `${area.value.trim()}\n${text}` : text;
    });
    box.append(chip);
  }
  if (!$("expressions").value.trim() && clip.expressions && clip.expressions.length) $("expressions").value = clip.expressions[0];
  showPreview(clip);
}

async function showPreview(clip) {
  // Fetched (not <img src>) so the API key header goes with it.
  const url = `${API}/v1/clips/${encodeURIComponent(clip.dataset)}/${encodeURIComponent(clip.clip)}/frames/0`;
  try {
    const blob = await (await apiFetch(url)).blob();
    const img = await loadImage(URL.createObjectURL(blob), true);
    const canvas = $("preview");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    canvas.getContext("2d").drawImage(img, 0, 0);
  } catch (err) {
    $("preview").width = 0;  // a missing preview is no reason to block segmenting
  }
}

function loadImage(src, revoke = false) {
  const img = new Image();
  img.src = src;
  return img.decode().then(() => {
    if (revoke) URL.revokeObjectURL(src);
    return img;
  });
}

// ---------------------------------------------------------------- the request

function buildRequest() {
  const expressions = $("expressions").value.split("\n").map((s) => s.trim()).filter(Boolean);
  if (!expressions.length) throw new Error("type at least one expression");
  const upload = document.querySelector('input[name="source"]:checked').value === "upload";
  const body = { expressions, output: "rle+frames", start: intOr($("start"), 0), stride: intOr($("stride"), 1) };
  const end = intOr($("end"), null);
  if (end !== null) body.end = end;
  const k = intOr($("num-frames"), null);
  if (k !== null) body.num_frames = k;
  if ($("sampling").value) body.sampling = $("sampling").value;
  // Advanced: one teacher-forced answer for every expression (the API's force_answers), e.g.
  // "It is [SEG_ACT] and [SEG_TAR]." so an untrained checkpoint still draws masks.
  const forced = $("force-answer").value.trim();
  if (forced) body.force_answers = expressions.map(() => forced);
  let file = null;
  if (upload) {
    file = $("video-file").files[0];
    if (!file) throw new Error("choose a video file to upload");
    body.video = null;
  } else {
    const clip = selectedClip();
    if (!clip) throw new Error("no sample clip to pick: upload a video instead");
    body.video = { dataset: clip.dataset, clip: clip.clip };
  }
  const compare = $("compare").checked;
  if (compare) body.checkpoints = [$("checkpoint-a").value, $("checkpoint-b").value];
  else body.checkpoint = $("checkpoint-a").value || null;  // null: the server's default
  return { body, file, compare };
}

function intOr(input, fallback) {
  return input.value === "" ? fallback : Number.parseInt(input.value, 10);
}

async function submit(event) {
  event.preventDefault();
  clearError();
  let req;
  try {
    req = buildRequest();
  } catch (err) {
    showError(err);
    return;
  }
  const stream = $("stream").checked && !req.compare;
  const options = { method: "POST", headers: {} };
  if (req.file) {
    const form = new FormData();
    form.append("video", req.file, req.file.name);
    form.append("request", JSON.stringify(req.body));
    options.body = form;  // the browser sets the multipart boundary
  } else {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(req.body);
  }
  if (stream) options.headers.Accept = "application/x-ndjson";
  view.abort = new AbortController();
  options.signal = view.abort.signal;
  stop();
  setBusy(true);
  setStatus("running", req.compare ? "Running both checkpoints…" : "Segmenting…");
  const started = performance.now();
  try {
    const response = await apiFetch(`${API}${req.compare ? "/v1/compare" : "/v1/segment"}`, options);
    if (stream) {
      await readStream(response);
    } else {
      const answer = await response.json();
      await showResult(req.compare ? [answer.a, answer.b] : [answer], req.compare ? answer.iou : null);
    }
    if (!window.interrvos.lastError) setStatus("done", `Done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    if (err.name === "AbortError") setStatus("ready", "Cancelled");
    else showError(err);
  } finally {
    setBusy(false);
    view.abort = null;
  }
}

function setBusy(busy) {
  $("submit").textContent = busy ? "Cancel" : "Segment";
  $("submit").dataset.busy = busy ? "1" : "";
}

// NDJSON: start, then one line per frame as SAM2 propagates, then end (or error).
async function readStream(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let answer = null;
  const handle = (line) => {
    if (!line.trim()) return;
    const event = JSON.parse(line);
    if (event.type === "error") throw new ApiError(event.status, `HTTP ${event.status}: ${describeDetail(event.detail)}`, event);
    if (event.type === "start") {
      answer = { checkpoint: event.checkpoint, video: event.video, mllm_frames: event.mllm_frames, frames: [],
                 expressions: event.expressions.map((e) => ({ expression: e.expression, answers: e.answers,
                                                              actor: [], target: e.has_target ? [] : null })) };
      showResult([answer], null, true);
    } else if (event.type === "frame") {
      event.masks.forEach((m, i) => {
        answer.expressions[i].actor[event.index] = m.actor;
        if (answer.expressions[i].target) answer.expressions[i].target[event.index] = m.target;
      });
      if (event.image) answer.frames[event.index] = event.image;
      addFrame(0, event.index, event.image);
      setStatus("running", `Segmented ${event.index + 1} / ${answer.video.frames} frames`);
    } else if (event.type === "end") {
      view.streaming = false;
      answer.timings = event.timings;
      updateInfo();
      updateDownload();
    }
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      handle(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
  }
  handle(buffer);
  if (!answer) throw new Error("the stream ended before its start line");
}

// ---------------------------------------------------------------- result: panels, player, overlays

async function showResult(answers, iou, streaming = false) {
  view.answers = answers;
  view.iou = iou;
  view.streaming = streaming;
  view.frame = 0;
  view.images = answers.map(() => []);
  $("preview-section").hidden = true;
  $("result").hidden = false;
  const select = $("expression-view");
  select.replaceChildren(...answers[0].expressions.map((e, i) => el("option", { value: String(i), text: e.expression })));
  view.expression = 0;
  const panels = $("panels");
  panels.replaceChildren();
  view.panels = answers.map((answer, p) => {
    const canvas = el("canvas", { id: `canvas-${"ab"[p]}`, width: answer.video.width, height: answer.video.height });
    canvas.dataset.checkpoint = answer.checkpoint.id;
    const overlay = el("canvas", { width: answer.video.width, height: answer.video.height });
    const info = el("div", { class: "info" });
    panels.append(el("figure", { class: "panel" }, canvas, info));
    return { canvas, ctx: canvas.getContext("2d", { willReadFrequently: true }), overlay,
             overlayCtx: overlay.getContext("2d"), info, pixels: null };
  });
  updateInfo();
  updateScrubber();
  if (!streaming) {
    await Promise.all(answers.map((answer, p) => Promise.all((answer.frames || []).map((url, t) => addFrame(p, t, url)))));
    updateDownload();
  }
  render();
}

async function addFrame(p, t, url) {
  updateScrubber();
  if (!url) {
    if (t === view.frame || view.timer === null) render();
    return;
  }
  view.images[p][t] = await loadImage(url);
  // While streaming (and not playing), follow the newest frame.
  if (t === view.frame) render();
  else if (view.streaming && view.timer === null && t === frameCount() - 1) showFrame(t);
}

function frameCount() {
  return view.answers.length ? Math.max(...view.answers.map((a) => a.expressions[0] ? a.expressions[0].actor.length : 0)) : 0;
}

function updateScrubber() {
  const n = frameCount();
  $("scrubber").max = String(Math.max(0, n - 1));
  $("scrubber").value = String(view.frame);
  const answer = view.answers[0];
  const source = answer && answer.video.frame_indices ? answer.video.frame_indices[view.frame] : undefined;
  const saw = answer && (answer.mllm_frames || []).includes(view.frame) ? " · seen by the MLLM" : "";
  $("frame-label").textContent = n ? `frame ${view.frame + 1} / ${n}${source !== undefined ? ` (source #${source})` : ""}${saw}` : "";
}

function showFrame(t) {
  view.frame = Math.max(0, Math.min(t, frameCount() - 1));
  updateScrubber();
  render();
}

function render() {
  let total = 0;
  try {
    view.panels.forEach((panel, p) => {
      panel.pixels = drawPanel(panel, view.answers[p], view.images[p][view.frame]);
      total += panel.pixels.union;
    });
  } catch (err) {  // a malformed mask in the answer: say so rather than leave a stale canvas
    stop();
    showError(new Error(`cannot draw frame ${view.frame}: ${err.message}`));
    return;
  }
  window.interrvos.lastMaskPixels = total;
  window.interrvos.frame = view.frame;
  window.interrvos.panelPixels = view.panels.map((panel) => panel.pixels);
  updateIou();
  $("result").dataset.frame = String(view.frame);
  $("result").dataset.maskPixels = String(total);
}

// Draws frame t with its masks; returns the mask pixel counts drawn.
function drawPanel(panel, answer, image) {
  const { canvas, ctx } = panel;
  const w = canvas.width;
  const h = canvas.height;
  ctx.globalAlpha = 1;
  if (image) ctx.drawImage(image, 0, 0, w, h);
  else { ctx.fillStyle = "#222"; ctx.fillRect(0, 0, w, h); }
  const exp = answer.expressions[view.expression];
  const t = view.frame;
  const actor = exp && exp.actor[t] ? decodeRle(exp.actor[t]) : null;
  const target = exp && exp.target && exp.target[t] ? decodeRle(exp.target[t]) : null;
  for (const m of [actor, target]) {
    if (m && (m.width !== w || m.height !== h)) throw new Error(`mask is ${m.height}x${m.width}, video ${h}x${w}`);
  }
  const overlay = ctx.createImageData(w, h);
  const px = overlay.data;
  let actorPixels = 0, targetPixels = 0, union = 0;
  for (let i = 0; i < w * h; i++) {
    const a = actor ? actor.data[i] : 0;
    const b = target ? target.data[i] : 0;
    if (!a && !b) continue;
    const c = a && b ? COLOURS.actor.map((v, k) => (v + COLOURS.target[k]) >> 1) : a ? COLOURS.actor : COLOURS.target;
    px[4 * i] = c[0]; px[4 * i + 1] = c[1]; px[4 * i + 2] = c[2]; px[4 * i + 3] = OVERLAY_ALPHA;
    actorPixels += a; targetPixels += b; union++;
  }
  // putImageData replaces pixels; drawing through a second canvas blends the overlay over the frame.
  panel.overlayCtx.putImageData(overlay, 0, 0);
  ctx.drawImage(panel.overlay, 0, 0);
  return { actor: actorPixels, target: targetPixels, union };
}

function updateInfo() {
  view.panels.forEach((panel, p) => {
    const a = view.answers[p];
    const exp = a.expressions[view.expression];
    const timings = a.timings ? Object.entries(a.timings).map(([k, v]) => `${k} ${Number(v).toFixed(2)}`).join(", ") : "…";
    panel.info.replaceChildren(
      el("div", { class: "ckpt", text: `${a.checkpoint.id} · ${a.checkpoint.config_name || ""} · ${a.checkpoint.mode || ""} · ${String(a.checkpoint.content_hash || "").slice(0, 12)}` }),
      el("div", { text: `${a.video.source} · ${a.video.frames} frames ${a.video.width}x${a.video.height} · MLLM frames [${(a.mllm_frames || []).join(", ")}]` }),
      el("div", { class: "answer", text: exp ? `“${(exp.answers || []).join(" | ")}”${exp.target ? "" : " (no target)"}` : "" }),
      el("div", { class: "timings", text: `timings (s): ${timings}` }),
    );
  });
}

function updateIou() {
  const box = $("iou");
  if (!view.iou) { box.replaceChildren(); return; }
  const fmt = (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(3));
  const rows = view.iou.map((e) => el("tr", {},
    el("td", { text: e.expression }), el("td", { text: fmt(e.mean_actor) }), el("td", { text: fmt(e.mean_target) }),
    el("td", { text: fmt(e.actor[view.frame]) }), el("td", { text: e.target ? fmt(e.target[view.frame]) : "–" })));
  const head = el("tr", {}, ...["expression", "mean IoU actor", "mean IoU target", "IoU actor (this frame)", "IoU target (this frame)"].map((t) => el("th", { text: t })));
  box.replaceChildren(el("h2", { text: "A/B mask IoU" }), el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)));
}

// The answer as the server sent it, without the (large) frame images.
function updateDownload() {
  const strip = (a) => { const { frames, ...rest } = a; return rest; };
  const data = view.answers.length === 2 ? { a: strip(view.answers[0]), b: strip(view.answers[1]), iou: view.iou } : strip(view.answers[0]);
  if (view.downloadUrl) URL.revokeObjectURL(view.downloadUrl);
  view.downloadUrl = URL.createObjectURL(new Blob([JSON.stringify(data, null, 1)], { type: "application/json" }));
  $("download").href = view.downloadUrl;
  window.interrvos.download = data;
}

function play() {
  if (view.timer !== null) { stop(); return; }
  if (frameCount() < 2) return;
  $("play").textContent = "⏸ pause";
  $("play").setAttribute("aria-label", "pause");
  view.timer = setInterval(() => showFrame((view.frame + 1) % frameCount()), 1000 / PLAY_FPS);
}

function stop() {
  if (view.timer !== null) clearInterval(view.timer);
  view.timer = null;
  $("play").textContent = "▶ play";
  $("play").setAttribute("aria-label", "play");
}

// ---------------------------------------------------------------- wiring

function init() {
  bindApiKeyField($("api-key"), loadLists);
  $("clip").addEventListener("change", onClipChange);
  $("compare").addEventListener("change", () => { $("checkpoint-b").disabled = !$("compare").checked; });
  $("video-file").addEventListener("change", () => { document.querySelector('input[value="upload"]').checked = true; });
  $("segment-form").addEventListener("submit", (e) => {
    if (view.abort) { e.preventDefault(); view.abort.abort(); return; }  // the button is "Cancel" while running
    submit(e);
  });
  $("play").addEventListener("click", play);
  $("scrubber").addEventListener("input", () => { stop(); showFrame(Number($("scrubber").value)); });
  $("expression-view").addEventListener("change", () => {
    view.expression = Number($("expression-view").value);
    updateInfo();
    render();
  });
  loadLists();
}

init();

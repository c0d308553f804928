// Shared by both pages: the optional API key (kept in localStorage), fetch with the bearer header,
// the server's {"detail"} errors, and the status element the browser tests wait on.
"use strict";

const KEY_STORAGE = "interrvos.apiKey";

window.interrvos = window.interrvos || {};

function apiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch (e) {  // storage can be disabled (private mode, file://): fall back to no key
    return "";
  }
}

function bindApiKeyField(input, onChange) {
  input.value = apiKey();
  input.addEventListener("change", () => {
    try {
      if (input.value) localStorage.setItem(KEY_STORAGE, input.value);
      else localStorage.removeItem(KEY_STORAGE);
    } catch (e) { /* not persisted; still used for this page's requests via apiKey() fallback */ }
    if (onChange) onChange();
  });
}

// An error carrying the HTTP status and the server's message (and its extra fields, e.g. problems).
class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.body = body;
  }
}

function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  // FastAPI's own validation errors: [{loc: [...], msg: "..."}]
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && d.msg ? `${(d.loc || []).join(".")}: ${d.msg}` : JSON.stringify(d))).join("; ");
  }
  return JSON.stringify(detail);
}

async function errorFromResponse(response) {
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch (e) { /* not JSON: a proxy's HTML page or plain text */ }
  let message = body && body.detail !== undefined ? describeDetail(body.detail) : (text.trim() || response.statusText);
  if (body && Array.isArray(body.problems) && body.problems.length) {
    message += "\n" + body.problems.map((p) => "• " + (typeof p === "string" ? p : JSON.stringify(p))).join("\n");
  }
  return new ApiError(response.status, `HTTP ${response.status}: ${message}`, body);
}

// fetch() with the API key; resolves to the Response when it is ok, else throws ApiError.
async function apiFetch(url, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = document.getElementById("api-key") ? document.getElementById("api-key").value : apiKey();
  if (key) headers.set("Authorization", "Bearer " + key);
  let response;
  try {
    response = await fetch(url, { ...options, headers });
  } catch (e) {
    throw new ApiError(0, `cannot reach the server (${url}): ${e.message}`, null);
  }
  if (!response.ok) throw await errorFromResponse(response);
  return response;
}

async function apiJson(url, options) {
  return (await apiFetch(url, options)).json();
}

// The status line; data-state is what tests wait for: idle | loading | running | done | error.
function setStatus(state, text) {
  const el = document.getElementById("status");
  el.dataset.state = state;
  el.textContent = text || "";
  window.interrvos.state = state;
}

function showError(err) {
  const el = document.getElementById("error");
  const message = err instanceof Error ? err.message : String(err);
  el.textContent = message;
  el.hidden = false;
  setStatus("error", "Failed");
  window.interrvos.lastError = message;
}

function clearError() {
  const el = document.getElementById("error");
  el.textContent = "";
  el.hidden = true;
  window.interrvos.lastError = null;
}

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

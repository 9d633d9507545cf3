// Hearth's UI: talks to the same ComfyUI-compatible API as any client (/api/... and /ws), nothing private but /api/hearth.

const clientId = sessionStorage.getItem("hearth-client-id") || crypto.randomUUID().replaceAll("-", "");
sessionStorage.setItem("hearth-client-id", clientId);

const $ = (id) => document.getElementById(id);
const VIDEO = /\.(mp4|webm|mov|mkv)$/i;

async function api(path, options = {}) {
  const response = await fetch(`/api${path}`, options);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!response.ok) {
    const err = new Error(describeError(body) || `${response.status} ${response.statusText}`);
    err.body = body;
    throw err;
  }
  return body;
}

function describeError(body) {
  if (!body || typeof body !== "object") return typeof body === "string" ? body : "";
  const lines = [];
  if (body.error) lines.push(`${body.error.type}: ${body.error.message}${body.error.details ? ` (${body.error.details})` : ""}`);
  for (const [id, entry] of Object.entries(body.node_errors || {})) {
    for (const e of entry.errors) lines.push(`node ${id} (${entry.class_type}): ${e.message}${e.details ? ` — ${e.details}` : ""}`);
  }
  return lines.join("\n");
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

const bytes = (n) => (n == null ? "–" : `${(n / 2 ** 30).toFixed(2)} GiB`);

function viewUrl(file) {
  const q = new URLSearchParams({ filename: file.filename, subfolder: file.subfolder || "", type: file.type || "output" });
  return `/api/view?${q}`;
}

function outputMedia(outputs) {
  const media = [];
  for (const ui of Object.values(outputs || {})) {
    for (const key of ["images", "gifs", "videos"]) {
      for (const file of ui[key] || []) {
        if (!file || !file.filename) continue;
        const src = viewUrl(file);
        media.push(VIDEO.test(file.filename)
          ? el("video", { class: "output", src, controls: "", loop: "", muted: "" })
          : el("img", { class: "output", src, alt: file.filename, loading: "lazy" }));
      }
    }
  }
  return media;
}

// -- queue and history ------------------------------------------------------------------------------------------

async function refreshQueue() {
  const queue = await api("/queue");
  const list = $("queue-list");
  list.replaceChildren();
  for (const [state, items] of [["running", queue.queue_running], ["pending", queue.queue_pending]]) {
    for (const [number, promptId, prompt] of items) {
      const remove = state === "pending"
        ? el("button", { type: "button", onclick: () => api("/queue", { method: "POST", body: JSON.stringify({ delete: [promptId] }) }).then(refreshQueue) }, "remove")
        : "";
      list.append(el("li", { class: state, "data-prompt-id": promptId },
        el("span", { class: "pill" }, state), ` #${number} `, el("code", {}, promptId.slice(0, 8)),
        ` ${Object.keys(prompt).length} nodes `, remove));
    }
  }
  if (!list.children.length) list.append(el("li", { class: "empty" }, "nothing queued"));
}

async function refreshHistory() {
  const history = await api("/history?max_items=50");
  const list = $("history-list");
  list.replaceChildren();
  for (const [promptId, entry] of Object.entries(history).reverse()) {
    const status = entry.status || {};
    const error = (status.messages || []).find(([event]) => event === "execution_error");
    const item = el("li", { class: `history-entry ${status.status_str}`, "data-prompt-id": promptId },
      el("span", { class: "pill" }, status.status_str || "?"), " ", el("code", {}, promptId.slice(0, 8)));
    if (error) item.append(el("div", { class: "error" }, `${error[1].node_type ? `${error[1].node_type}: ` : ""}${error[1].exception_message}`));
    const media = outputMedia(entry.outputs);
    if (media.length) item.append(el("div", { class: "outputs" }, ...media));
    list.append(item);
  }
  if (!list.children.length) list.append(el("li", { class: "empty" }, "no finished prompts"));
}

// -- running a workflow file ------------------------------------------------------------------------------------

async function queueWorkflow(event) {
  event.preventDefault();
  const file = $("workflow-file").files[0];
  const message = $("run-message");
  if (!file) return;
  message.className = "";
  message.textContent = `queueing ${file.name}…`;
  try {
    const converted = await api("/hearth/workflow", { method: "POST", body: await file.text() });
    const body = { prompt: converted.prompt, client_id: clientId, front: $("queue-front").checked };
    if (converted.workflow) body.extra_data = { extra_pnginfo: { workflow: converted.workflow } };
    const queued = await api("/prompt", { method: "POST", body: JSON.stringify(body) });
    const skipped = describeError({ node_errors: queued.node_errors });
    message.textContent = `queued ${file.name} as ${queued.prompt_id.slice(0, 8)}${skipped ? `; skipped:\n${skipped}` : ""}`;
    refreshQueue();
  } catch (err) {
    message.className = "error";
    message.textContent = `${file.name}: ${err.message}`;
  }
}

// -- live events ------------------------------------------------------------------------------------------------

let previewUrl = null;

function onEvent({ type, data }) {
  const progress = $("progress");
  switch (type) {
    case "status":
      $("queue-remaining").textContent = `queue: ${data.status.exec_info.queue_remaining}`;
      refreshQueue();
      break;
    case "execution_start":
      progress.hidden = false;
      $("progress-label").textContent = "starting…";
      break;
    case "executing":
      if (data.node === null) {
        progress.hidden = true;
        refreshHistory();
        refreshQueue();
      } else {
        $("progress-label").textContent = `node ${data.display_node || data.node}`;
        $("progress-bar").value = 0;
      }
      break;
    case "progress":
      $("progress-bar").max = data.max;
      $("progress-bar").value = data.value;
      $("progress-label").textContent = `node ${data.node}: ${data.value}/${data.max}`;
      break;
    case "execution_error":
      $("run-message").className = "error";
      $("run-message").textContent = `node ${data.node_id} (${data.node_type}) failed: ${data.exception_message}`;
      break;
  }
}

function onPreview(buffer) {
  const view = new DataView(buffer);
  const kind = view.getUint32(0);
  let offset = 8;
  let mime = view.getUint32(4) === 2 ? "image/png" : "image/jpeg";
  if (kind === 4) {
    const length = view.getUint32(4);
    mime = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, length))).image_type || mime;
    offset = 8 + length;
  } else if (kind !== 1) {
    return;
  }
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(new Blob([buffer.slice(offset)], { type: mime }));
  $("preview").src = previewUrl;
  $("preview").hidden = false;
}

function connect(delay = 500) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws?clientId=${clientId}`);
  socket.binaryType = "arraybuffer";
  const state = $("connection");
  socket.onopen = () => {
    state.dataset.state = "open";
    state.textContent = "connected";
    socket.send(JSON.stringify({ type: "feature_flags", data: { supports_preview_metadata: true } }));
    delay = 500;
    refreshAll();
  };
  socket.onmessage = (message) => (typeof message.data === "string" ? onEvent(JSON.parse(message.data)) : onPreview(message.data));
  socket.onclose = () => {
    state.dataset.state = "closed";
    state.textContent = "disconnected — retrying";
    setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
  };
}

// -- packs, nodes, memory ---------------------------------------------------------------------------------------

async function refreshPacks() {
  const { plugins, nodes } = await api("/hearth/plugins");
  $("packs-body").replaceChildren(...plugins.map((p) => el("tr", { class: p.error ? "error" : "" },
    el("td", {}, p.name), el("td", {}, p.tier), el("td", {}, p.version || ""), el("td", {}, p.node_count),
    el("td", { title: p.traceback || "" }, p.error || "loaded"))));
  const names = Object.keys(nodes).sort();
  $("nodes-summary").textContent = `${names.length} nodes`;
  const render = () => {
    const filter = $("node-filter").value.toLowerCase();
    $("nodes-list").replaceChildren(...names.filter((n) => n.toLowerCase().includes(filter))
      .map((n) => el("li", {}, el("code", {}, n), ` — ${nodes[n]}`)));
  };
  $("node-filter").oninput = render;
  render();
}

async function refreshSystem() {
  const [stats, memory] = await Promise.all([api("/system_stats"), api("/hearth/memory")]);
  const sys = stats.system;
  $("system-info").replaceChildren(
    el("dt", {}, "Hearth"), el("dd", {}, `${sys.hearth_version} (ComfyUI API ${sys.comfyui_version})`),
    el("dt", {}, "Python / torch"), el("dd", {}, `${sys.python_version.split(" ")[0]} / ${sys.pytorch_version || "not installed"}`),
    el("dt", {}, "RAM"), el("dd", {}, `${bytes(sys.ram_free)} free of ${bytes(sys.ram_total)}`));
  $("devices-body").replaceChildren(...stats.devices.map((d) => el("tr", {},
    el("td", {}, d.name), el("td", {}, d.type), el("td", {}, bytes(d.vram_total)), el("td", {}, bytes(d.vram_free)))));
  const models = memory.models || [];
  $("models-loaded").textContent = models.length
    ? `loaded: ${models.map((m) => m.name).join(", ")}` : `no models loaded (memory figures from ${memory.source})`;
}

function refreshAll() {
  for (const refresh of [refreshQueue, refreshHistory, refreshPacks, refreshSystem]) {
    refresh().catch((err) => console.error(refresh.name, err));
  }
}

$("run-form").addEventListener("submit", queueWorkflow);
$("interrupt-button").addEventListener("click", () => api("/interrupt", { method: "POST", body: "{}" }));
$("clear-queue").addEventListener("click", () => api("/queue", { method: "POST", body: JSON.stringify({ clear: true }) }).then(refreshQueue));
$("clear-history").addEventListener("click", () => api("/history", { method: "POST", body: JSON.stringify({ clear: true }) }).then(refreshHistory));
$("free-memory").addEventListener("click", () => api("/free", { method: "POST", body: JSON.stringify({ unload_models: true, free_memory: true }) }).then(() => setTimeout(refreshSystem, 500)));
connect();

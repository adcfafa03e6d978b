// BatTorrent's page: the torrent list from /api/v1/events, commands over /api/v1.
// Every text from the daemon (names, paths, errors) goes in with textContent, never as HTML.
"use strict";

const api = "/api/v1";
let openFiles = null; // the id whose files are shown

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function size(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function duration(s) {
  if (s === null || s === undefined) return "";
  if (s < 60) return s + " s";
  if (s < 3600) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function say(text, ok) {
  const m = document.getElementById("message");
  m.textContent = text;
  m.className = ok ? "message ok" : "message";
}

async function call(method, path, body, type) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = body;
    init.headers["Content-Type"] = type || "application/json";
  }
  let reply;
  try {
    reply = await fetch(api + path, init);
  } catch (e) {
    throw new Error("the daemon does not answer");
  }
  const text = await reply.text();
  let value = null;
  try { value = JSON.parse(text); } catch (e) { /* not JSON */ }
  if (!reply.ok) throw new Error(value && value.error ? value.error : "HTTP " + reply.status);
  return value;
}

function bar(fraction) {
  const b = el("div", null, "bar");
  const fill = el("div");
  fill.style.width = (fraction * 100).toFixed(1) + "%";
  b.appendChild(fill);
  b.appendChild(el("span", (fraction * 100).toFixed(1) + "%", "percent"));
  return b;
}

function button(text, action) {
  const b = el("button", text);
  b.type = "button";
  b.addEventListener("click", () => action().catch((e) => say(e.message)));
  return b;
}

function render(torrents) {
  const rows = document.getElementById("torrent-rows");
  const fresh = document.createDocumentFragment();
  for (const t of torrents) {
    const tr = el("tr");
    tr.dataset.id = t.id;
    tr.className = "torrent";
    tr.appendChild(el("td", t.name, "name"));
    tr.appendChild(el("td", t.error ? t.state + ": " + t.error : t.state, "state"));
    const p = el("td", null, "progress");
    p.dataset.progress = t.progress;
    p.appendChild(bar(t.progress));
    tr.appendChild(p);
    tr.appendChild(el("td", size(t.download_rate) + "/s", "down"));
    tr.appendChild(el("td", size(t.upload_rate) + "/s", "up"));
    tr.appendChild(el("td", t.peers, "peers"));
    tr.appendChild(el("td", duration(t.eta), "eta"));
    const actions = el("td", null, "actions");
    if (t.state === "paused") {
      actions.appendChild(button("Resume", () => call("POST", `/torrents/${t.id}/resume`)));
    } else {
      actions.appendChild(button("Pause", () => call("POST", `/torrents/${t.id}/pause`)));
    }
    actions.appendChild(button("Files", () => showFiles(t.id, t.name)));
    actions.appendChild(button("Remove", async () => {
      if (!confirm("Remove this torrent? (its files stay on disk)")) return;
      await call("DELETE", `/torrents/${t.id}`);
      if (openFiles === t.id) hideFiles();
    }));
    tr.appendChild(actions);
    fresh.appendChild(tr);
  }
  rows.replaceChildren(fresh);
  document.getElementById("empty").hidden = torrents.length > 0;
  if (openFiles !== null && !torrents.some((t) => t.id === openFiles)) hideFiles();
}

function hideFiles() {
  openFiles = null;
  document.getElementById("files").hidden = true;
}

async function showFiles(id, name) {
  const reply = await call("GET", `/torrents/${id}/files`);
  openFiles = id;
  document.getElementById("files-name").textContent = name;
  const rows = document.getElementById("file-rows");
  const fresh = document.createDocumentFragment();
  for (const f of reply.files) {
    const tr = el("tr", null, "file");
    const box = el("input");
    box.type = "checkbox";
    box.checked = f.wanted;
    box.dataset.index = f.index;
    box.addEventListener("change", () => {
      const wanted = {};
      wanted[f.index] = box.checked;
      call("PUT", `/torrents/${id}/files`, JSON.stringify({ wanted }))
        .then(() => say(box.checked ? "File selected." : "File left out.", true))
        .catch((e) => { box.checked = !box.checked; say(e.message); });
    });
    const cell = el("td");
    cell.appendChild(box);
    tr.appendChild(cell);
    tr.appendChild(el("td", f.path, "path"));
    tr.appendChild(el("td", size(f.length)));
    const p = el("td");
    p.appendChild(bar(f.length ? f.done / f.length : 1));
    tr.appendChild(p);
    const play = el("td");
    const link = el("a", "open");
    link.href = `/stream/${id}/` + f.path.split("/").map(encodeURIComponent).join("/");
    link.target = "_blank";
    link.rel = "noopener";
    play.appendChild(link);
    tr.appendChild(play);
    fresh.appendChild(tr);
  }
  rows.replaceChildren(fresh);
  document.getElementById("files").hidden = false;
}

function added(reply) {
  say(reply.duplicate ? `Already there: ${reply.name}` : `Added: ${reply.name}`, true);
}

function paused() {
  return document.getElementById("add-paused").checked;
}

function setup() {
  document.getElementById("torrent-file").addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    if (!file) return;
    try {
      const bytes = await file.arrayBuffer();
      added(await call("POST", "/torrents?paused=" + paused(), bytes, "application/x-bittorrent"));
    } catch (e) {
      say(e.message);
    }
    ev.target.value = "";
  });
  document.getElementById("magnet-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = document.getElementById("magnet");
    try {
      added(await call("POST", "/torrents", JSON.stringify({ magnet: input.value, paused: paused() })));
      input.value = "";
    } catch (e) {
      say(e.message);
    }
  });
  document.getElementById("files-close").addEventListener("click", hideFiles);
  const status = document.getElementById("status");
  const events = new EventSource(api + "/events");
  events.addEventListener("open", () => { status.textContent = "live"; });
  events.addEventListener("error", () => { status.textContent = "reconnecting…"; });
  events.addEventListener("torrents", (ev) => render(JSON.parse(ev.data).torrents));
  events.addEventListener("completed", () => {
    if (openFiles !== null) {
      const name = document.getElementById("files-name").textContent;
      showFiles(openFiles, name).catch(() => {});
    }
  });
  call("GET", "/torrents").then((r) => render(r.torrents)).catch((e) => say(e.message));
}

setup();

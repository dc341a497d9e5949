// The wray dashboard: polls /api/state once a second and draws the view the
// URL's fragment names. Every value goes into the page as text (never as
// HTML), so nothing a job names — a function, an actor, an error — can
// inject markup. No libraries: the charts are drawn on a canvas here.
"use strict";

const POLL_MS = 1000;
const HISTORY = 120; // samples kept for the overview's charts (two minutes)
const ROWS = 200; // rows a table shows (the API keeps up to 1000 tasks per node)

let state = null; // the last /api/state
let session = { can_act: false, has_token: false, job_logs: false };
let history = []; // { t, finished, failed, memory, running }
let error = "";
let filters = {}; // view -> filter text
let log = { id: null, offset: 0, text: "", status: "" };
let nodeLog = { id: null, offset: null, text: "", error: "" };
const NODE_LOG_KEEP = 1 << 20; // characters of a node's log the page keeps

// ---- small DOM helpers --------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function table(id, columns, rows) {
  const head = h("tr", {}, columns.map(c => h("th", { class: c.num ? "num" : "" }, c.title)));
  const body = rows.slice(0, ROWS).map(r =>
    h("tr", {}, columns.map(c => h("td", { class: c.num ? "num" : "" }, c.cell(r)))));
  const more = rows.length > ROWS ? h("p", { class: "muted" }, `showing ${ROWS} of ${rows.length}`) : null;
  if (rows.length === 0) return h("p", { class: "muted", id }, "none");
  return h("div", {}, h("table", { id }, h("thead", {}, head), h("tbody", {}, body)), more);
}

function card(label, value, id) {
  return h("div", { class: "card" }, h("div", { class: "value", id }, value), h("div", { class: "label" }, label));
}

function stateTag(s) {
  return h("span", { class: `state state-${s}` }, s);
}

function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : "";
}

function duration(from, to) {
  if (!from) return "";
  const ms = (to || Date.now()) - from;
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

// A job is labelled with the path it was submitted from: show the file.
function baseName(path) {
  return String(path || "").split("/").pop();
}

function resources(pairs) {
  return (pairs || []).map(([k, v]) => `${k}: ${Number.isInteger(v) ? v : v.toFixed(2)}`).join(", ");
}

function resource(pairs, key) {
  const p = (pairs || []).find(([k]) => k === key);
  return p ? p[1] : 0;
}

function usage(used, total) {
  const pct = total > 0 ? Math.min(100, (100 * used) / total) : 0;
  // Through the CSSOM: the page's policy forbids inline style attributes.
  const fill = h("span", {});
  fill.style.width = `${pct.toFixed(0)}%`;
  return h("span", {}, h("span", { class: "bar" }, fill), ` ${pct.toFixed(0)}%`);
}

function filterBox(view, placeholder) {
  const input = h("input", {
    type: "search", placeholder, value: filters[view] || "", id: `${view}-filter`,
    oninput: e => { filters[view] = e.target.value; render(); },
  });
  return h("div", { class: "toolbar" }, input);
}

function matches(view, row, fields) {
  const f = (filters[view] || "").trim().toLowerCase();
  if (!f) return true;
  return f.split(/\s+/).every(word => {
    const [k, v] = word.includes("=") ? word.split("=", 2) : [null, word];
    return fields.some(([name, value]) =>
      (k === null || k === name) && String(value ?? "").toLowerCase().includes(v));
  });
}

// ---- the cluster, merged over nodes -------------------------------------

const alive = () => state.nodes.filter(n => n.alive);
const all = key => state.nodes.flatMap(n => n[key] || []);

function jobs() {
  // The head lists submitted jobs from its records; the node running one
  // lists it too: keep one row per id, preferring the running node's.
  const byId = new Map();
  for (const j of all("jobs")) {
    const seen = byId.get(j.id);
    if (!seen || (seen.status !== "RUNNING" && j.status === "RUNNING")) byId.set(j.id, j);
  }
  return [...byId.values()].sort((a, b) => (b.start_ms - a.start_ms));
}

function totals() {
  const t = { pending: 0, running: 0, finished: 0, failed: 0, cancelled: 0 };
  for (const n of alive()) for (const k of Object.keys(t)) t[k] += n.task_counts[k];
  return t;
}

// ---- views ---------------------------------------------------------------

const views = {
  overview() {
    const nodes = alive();
    const cpus = nodes.reduce((s, n) => s + resource(n.total, "CPU"), 0);
    const free = nodes.reduce((s, n) => s + resource(n.available, "CPU"), 0);
    const mem = nodes.reduce((s, n) => s + n.store.memory_bytes, 0);
    const budget = nodes.reduce((s, n) => s + n.store.budget_bytes, 0);
    const spilled = nodes.reduce((s, n) => s + n.store.spilled_bytes, 0);
    const t = totals();
    const running = jobs().filter(j => j.status === "RUNNING");
    return [
      h("h1", {}, "Cluster"),
      h("div", { class: "cards" },
        card("nodes alive", nodes.length, "node-count"),
        card("CPUs in use", `${(cpus - free).toFixed(1)} / ${cpus}`, "cpu-use"),
        card("object store", `${bytes(mem)} / ${bytes(budget)}`, "store-use"),
        card("spilled", bytes(spilled), "spilled"),
        card("running jobs", running.length, "running-jobs"),
        card("tasks running", t.running, "tasks-running"),
        card("tasks finished", t.finished, "tasks-finished"),
        card("tasks failed", t.failed, "tasks-failed")),
      h("h2", {}, "Tasks finished per second"),
      chart("finished-chart", history.map(s => s.rate), v => v.toFixed(1)),
      h("h2", {}, "Object store memory"),
      chart("memory-chart", history.map(s => s.memory), bytes),
      h("h2", {}, "Running jobs"),
      jobTable("overview-jobs", running),
    ];
  },

  nodes() {
    return [
      h("h1", {}, "Nodes"),
      table("nodes-table", [
        { title: "node", cell: n => h("a", { href: `#node/${encodeURIComponent(n.id)}` }, n.id) },
        { title: "role", cell: n => n.role },
        { title: "state", cell: n => stateTag(n.alive ? "alive" : "dead") },
        { title: "CPU", cell: n => n.alive ? usage(resource(n.total, "CPU") - resource(n.available, "CPU"), resource(n.total, "CPU")) : "" },
        { title: "resources", cell: n => resources(n.total) },
        { title: "memory (RSS)", num: true, cell: n => bytes(n.memory_rss) },
        { title: "GPUs", cell: n => (n.gpus || []).join(", ") || "none" },
        { title: "queued", num: true, cell: n => n.queued },
        { title: "tasks running", num: true, cell: n => n.task_counts.running },
        { title: "actors", num: true, cell: n => (n.actors || []).filter(a => a.state !== "DEAD").length },
        { title: "objects", num: true, cell: n => n.store.objects },
        { title: "object memory", num: true, cell: n => `${bytes(n.store.memory_bytes)} / ${bytes(n.store.budget_bytes)}` },
        { title: "spilled", num: true, cell: n => bytes(n.store.spilled_bytes) },
        { title: "last heartbeat", num: true, cell: n => n.role === "worker" ? `${(n.net.last_heartbeat_ms / 1000).toFixed(1)} s ago` : "" },
        { title: "sent / received", num: true, cell: n => `${bytes(n.net.bytes_sent)} / ${bytes(n.net.bytes_received)}` },
        { title: "up", num: true, cell: n => n.alive ? duration(Date.now() - n.uptime_ms) : "" },
      ], state.nodes),
    ];
  },

  node(id) {
    const n = state.nodes.find(n => n.id === id);
    if (nodeLog.id !== id) nodeLog = { id, offset: null, text: "", error: "" };
    const parts = [h("h1", {}, `Node ${id}`)];
    if (!n) { parts.push(h("p", { class: "muted" }, "no such node in this cluster")); return parts; }
    parts.push(h("div", { class: "cards" },
      card("state", stateTag(n.alive ? "alive" : "dead")),
      card("role", n.role),
      card("CPU in use", n.alive ? `${(resource(n.total, "CPU") - resource(n.available, "CPU")).toFixed(1)} / ${resource(n.total, "CPU")}` : ""),
      card("memory (RSS)", bytes(n.memory_rss)),
      card("tasks running", n.task_counts.running),
      card("objects", `${n.store.objects} · ${bytes(n.store.memory_bytes)}`)));
    parts.push(h("h2", {}, "Log"));
    if (nodeLog.error) parts.push(h("p", { class: "muted", id: "node-log-error" }, nodeLog.error));
    else parts.push(h("pre", { class: "log", id: "node-log" }, nodeLog.text || "(loading)"));
    return parts;
  },

  jobs() {
    const rows = jobs().filter(j => matches("jobs", j, [["id", j.id], ["name", j.name], ["status", j.status], ["node", j.node]]));
    return [h("h1", {}, "Jobs"), filterBox("jobs", "filter: status=RUNNING, a name…"), jobTable("jobs-table", rows)];
  },

  job(id) {
    const j = jobs().find(j => j.id === id);
    if (log.id !== id) { log = { id, offset: 0, text: "", status: "" }; }
    const parts = [h("h1", {}, `Job ${id}`)];
    if (!j) { parts.push(h("p", { class: "muted" }, "no such job on this cluster")); return parts; }
    parts.push(h("div", { class: "cards" },
      card("status", stateTag(j.status), "job-status"),
      card("name", baseName(j.name)),
      card("node", j.node),
      card("started", time(j.start_ms)),
      card("duration", duration(j.start_ms, j.end_ms))));
    if (j.message) parts.push(h("p", { class: "error", id: "job-message" }, j.message));
    if (j.status === "RUNNING" && j.submitted) parts.push(stopButton(j));
    parts.push(h("h2", {}, "Driver output"));
    if (j.submitted && session.job_logs) parts.push(h("pre", { class: "log", id: "job-log" }, log.text || "(no output yet)"));
    else parts.push(h("p", { class: "muted" }, "only jobs submitted with wray job submit keep their output on the head"));
    const tasks = all("tasks").filter(t => t.job === id);
    parts.push(h("h2", {}, "Its recent tasks"), taskTable("job-tasks", tasks));
    return parts;
  },

  tasks() {
    const t = totals();
    const rows = all("tasks")
      .filter(r => matches("tasks", r, [["function", r.function], ["state", r.state], ["node", r.node], ["job", r.job], ["id", r.id]]))
      .sort((a, b) => b.submitted_ms - a.submitted_ms);
    return [
      h("h1", {}, "Tasks"),
      h("div", { class: "cards" },
        card("pending", t.pending, "count-PENDING"), card("running", t.running, "count-RUNNING"),
        card("finished", t.finished, "count-FINISHED"), card("failed", t.failed, "count-FAILED"),
        card("cancelled", t.cancelled, "count-CANCELLED")),
      h("h2", {}, "Recent tasks"),
      filterBox("tasks", "filter: state=FAILED, function=work…"),
      taskTable("tasks-table", rows),
    ];
  },

  actors() {
    const rows = all("actors").filter(a =>
      matches("actors", a, [["class", a.class], ["name", a.name], ["state", a.state], ["node", a.node], ["job", a.job]]));
    return [
      h("h1", {}, "Actors"),
      filterBox("actors", "filter: state=ALIVE, class=Counter…"),
      table("actors-table", [
        { title: "class", cell: a => a.class },
        { title: "name", cell: a => a.name },
        { title: "state", cell: a => stateTag(a.state) },
        { title: "node", cell: a => a.node },
        { title: "restarts", num: true, cell: a => a.restarts },
        { title: "pending calls", num: true, cell: a => a.pending_calls },
        { title: "calls", num: true, cell: a => a.calls },
        { title: "job", cell: a => a.detached ? "(detached)" : a.job },
        { title: "id", cell: a => a.id.slice(0, 12) },
        { title: "death", cell: a => a.death },
      ], rows),
    ];
  },

  objects() {
    const rows = state.nodes.flatMap(n => (n.objects || []).map(o => ({ ...o, node: n.id })))
      .sort((a, b) => b.size - a.size);
    const st = alive().reduce((s, n) => ({ objects: s.objects + n.store.objects, spilled: s.spilled + n.store.spilled_objects,
      spills: s.spills + n.store.spills, restores: s.restores + n.store.restores }), { objects: 0, spilled: 0, spills: 0, restores: 0 });
    return [
      h("h1", {}, "Objects"),
      h("div", { class: "cards" }, card("objects", st.objects, "object-count"), card("spilled now", st.spilled),
        card("spills", st.spills), card("restores", st.restores)),
      h("h2", {}, "Largest objects"),
      table("objects-table", [
        { title: "id", cell: o => o.id.slice(0, 16) },
        { title: "node", cell: o => o.node },
        { title: "job", num: true, cell: o => o.job },
        { title: "size", num: true, cell: o => bytes(o.size) },
        { title: "refs", num: true, cell: o => o.refs },
        { title: "state", cell: o => stateTag(o.state) },
      ], rows),
    ];
  },

  groups() {
    return [
      h("h1", {}, "Placement groups"),
      table("groups-table", [
        { title: "id", cell: g => g.id },
        { title: "bundles", num: true, cell: g => g.bundles.length },
        { title: "placement", cell: g => g.bundles.map(([node, r], i) => `#${i} on ${node}: ${resources(r)}`).join("; ") },
      ], all("groups")),
    ];
  },

  experiments() {
    const rows = all("published").sort((a, b) => b.updated_ms - a.updated_ms);
    const parts = [h("h1", {}, "Experiments")];
    if (!rows.length) {
      parts.push(h("p", { class: "muted", id: "experiments-none" },
        "nothing published yet: Tune experiments and Train runs appear here, and anything a job publishes with wray::publish_status"));
    }
    for (const r of rows) parts.push(...experiment(r));
    return parts;
  },

  serve() {
    const apps = (state.serve && state.serve.applications) || [];
    const parts = [h("h1", {}, "Serve")];
    if (!state.serve) { parts.push(h("p", { class: "muted" }, "this node serves no HTTP (wray start --head --serve-port, or wray serve run)")); return parts; }
    if (!apps.length) parts.push(h("p", { class: "muted", id: "serve-apps" }, "no applications"));
    for (const app of apps) {
      parts.push(h("h2", {}, `Application ${app.name}`));
      parts.push(table(`serve-${app.name}`, [
        { title: "deployment", cell: d => d.name },
        { title: "status", cell: d => stateTag(d.status) },
        { title: "route", cell: d => d.route_prefix || "" },
        { title: "replicas", num: true, cell: d => `${(d.replicas || []).length} / ${d.target_replicas ?? ""}` },
        { title: "queued", num: true, cell: d => d.queued_requests ?? "" },
        { title: "ongoing", num: true, cell: d => (d.replicas || []).reduce((s, r) => s + (r.ongoing_requests || 0), 0) },
        { title: "requests", num: true, cell: d => (d.requests || {}).total ?? "" },
        { title: "req/s", num: true, cell: d => rate(`${app.name}/${d.name}`) },
        { title: "5xx", num: true, cell: d => (d.requests || {}).server_errors ?? "" },
        { title: "p50", num: true, cell: d => quantile(d.requests, 0.5) },
        { title: "p99", num: true, cell: d => quantile(d.requests, 0.99) },
        { title: "last error", cell: d => d.last_error || "" },
      ], app.deployments || []));
    }
    return parts;
  },
};

const PALETTE = ["#2f6fdf", "#d9480f", "#2b8a3e", "#ae3ec9", "#e67700", "#0c8599", "#c2255c", "#5c940d"];

// One published document: a Tune experiment or Train run as a trial table
// and curves, anything else as its JSON.
function experiment(r) {
  let doc = null;
  try { doc = JSON.parse(r.body); } catch (e) { /* shown as text below */ }
  const title = h("h2", { id: `exp-${r.topic}` }, r.topic, h("span", { class: "muted" }, ` · job ${r.job} · updated ${time(r.updated_ms)}`));
  if (!doc || !Array.isArray(doc.trials)) return [title, h("pre", { class: "log" }, doc ? JSON.stringify(doc, null, 2) : r.body)];
  const metric = doc.metric;
  const summary = h("div", { class: "cards" },
    card("state", stateTag(doc.state)),
    card("trials", doc.trial_count),
    card("elapsed", `${Number(doc.elapsed_s || 0).toFixed(1)} s`),
    doc.best ? card(`best ${metric} (${doc.mode})`, `${fmt(doc.best.value)} · ${doc.best.name}`, `best-${doc.name}`) : null);
  const lastCols = doc.kind === "tune" && metric ? [metric]
    : [...new Set(doc.trials.flatMap(t => Object.keys(t.last || {})))].slice(0, 6);
  const table_ = table(`trials-${doc.name}`, [
    { title: "trial", cell: t => t.name },
    { title: "status", cell: t => stateTag(t.status) },
    { title: "config", cell: t => t.config },
    { title: "iterations", num: true, cell: t => t.iterations },
    ...lastCols.map(m => ({ title: m, num: true, cell: t => fmt((t.last || {})[m]) })),
    { title: "error", cell: t => t.error || "" },
  ], doc.trials);
  // Curves: the experiment's metric per trial (Tune), or every metric of
  // the run (Train), by iteration.
  const series = doc.kind === "tune" && metric
    ? doc.trials.filter(t => (t.series || {})[metric]).slice(-PALETTE.length).map(t => ({ label: t.name, values: t.series[metric] }))
    : Object.entries((doc.trials[0] || {}).series || {}).slice(0, PALETTE.length).map(([k, v]) => ({ label: k, values: v }));
  // One metric over trials shares a scale; a run's different metrics are
  // each scaled to their own range (the legend gives it).
  const shared = doc.kind === "tune";
  const charts = series.length ? [h("h2", {}, shared ? `${metric} per iteration` : "metrics per iteration"),
    lines(`chart-${doc.name}`, series, shared)] : [];
  return [title, summary, table_, ...charts];
}

function fmt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v !== "number") return String(v);
  return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(v) : v.toPrecision(4);
}

// Several series on one canvas by iteration: on one scale (`shared`), or
// each on its own; a legend under it names the colours (and each range
// when the scales differ).
function lines(id, series, shared) {
  const canvas = h("canvas", { id, width: 720, height: 200 });
  const ctx = canvas.getContext && canvas.getContext("2d");
  const range = values => {
    const v = values.filter(x => typeof x === "number");
    return v.length ? [Math.min(...v), Math.max(...v)] : [0, 1];
  };
  const common = range(series.flatMap(s => s.values));
  const W = canvas.width, H = canvas.height, pad = 24;
  const longest = Math.max(...series.map(s => s.values.length), 2);
  if (ctx) {
    series.forEach((s, i) => {
      const [min, max] = shared ? common : range(s.values);
      const span = max - min || 1;
      const y = v => H - pad - ((H - 2 * pad) * ((v ?? min) - min)) / span;
      ctx.strokeStyle = PALETTE[i % PALETTE.length]; ctx.lineWidth = 2; ctx.beginPath();
      s.values.forEach((v, j) => {
        const x = pad + ((W - 2 * pad) * j) / (longest - 1);
        j ? ctx.lineTo(x, y(v)) : ctx.moveTo(x, y(v));
      });
      if (s.values.length === 1) ctx.arc(pad, y(s.values[0]), 2, 0, 7);
      ctx.stroke();
    });
    if (shared) {
      ctx.fillStyle = "#6b7385"; ctx.font = "12px system-ui";
      ctx.fillText(`max ${fmt(common[1])}`, pad, 14);
      ctx.fillText(`min ${fmt(common[0])}`, pad, H - 6);
    }
  }
  const legend = h("div", { class: "legend" }, series.map((s, i) => {
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = PALETTE[i % PALETTE.length];
    const [min, max] = range(s.values);
    return h("span", {}, swatch, shared ? ` ${s.label} ` : ` ${s.label} ${fmt(min)}–${fmt(max)} `);
  }));
  return h("div", {}, canvas, legend);
}

// Requests per second of each deployment, from the totals of successive
// polls (kept across renders).
const serveTotals = new Map(); // key -> [{ t, total }] (the last few)
function noteServeTotals() {
  for (const app of (state.serve && state.serve.applications) || []) {
    for (const d of app.deployments || []) {
      const key = `${app.name}/${d.name}`;
      const seen = serveTotals.get(key) || [];
      seen.push({ t: state.generated_ms, total: (d.requests || {}).total || 0 });
      serveTotals.set(key, seen.slice(-5));
    }
  }
}

function rate(key) {
  const seen = serveTotals.get(key) || [];
  if (seen.length < 2) return "";
  const a = seen[0], b = seen[seen.length - 1];
  return b.t > a.t ? ((b.total - a.total) / ((b.t - a.t) / 1000)).toFixed(1) : "";
}

// The bucket bound under which a share `q` of the requests finished: an
// upper estimate, as Prometheus' histogram_quantile without interpolation.
function quantile(req, q) {
  if (!req || !req.total) return "";
  const want = q * req.total;
  let seen = 0;
  for (let i = 0; i < req.latency_buckets.length; i++) {
    seen += req.latency_buckets[i];
    if (seen >= want) {
      const b = req.latency_bucket_bounds[i];
      return b === "+Inf" ? `> ${req.latency_bucket_bounds[i - 1]} s` : `≤ ${b * 1000} ms`;
    }
  }
  return "";
}

function jobTable(id, rows) {
  return table(id, [
    { title: "job", cell: j => h("a", { href: `#job/${encodeURIComponent(j.id)}` }, j.id) },
    { title: "name", cell: j => h("span", { title: j.name }, baseName(j.name)) },
    { title: "status", cell: j => stateTag(j.status) },
    { title: "node", cell: j => j.node },
    { title: "started", cell: j => time(j.start_ms) },
    { title: "duration", num: true, cell: j => duration(j.start_ms, j.end_ms) },
    { title: "message", cell: j => j.message },
    { title: "", cell: j => (j.status === "RUNNING" && j.submitted) ? stopButton(j) : "" },
  ], rows);
}

function taskTable(id, rows) {
  return table(id, [
    { title: "function", cell: t => t.function },
    { title: "state", cell: t => stateTag(t.state) },
    { title: "node", cell: t => t.node },
    { title: "job", cell: t => t.job },
    { title: "submitted", cell: t => time(t.submitted_ms) },
    { title: "duration", num: true, cell: t => t.started_ms ? duration(t.started_ms, t.ended_ms) : "" },
    { title: "attempts", num: true, cell: t => t.attempts },
    { title: "error", cell: t => t.error },
  ], rows);
}

function stopButton(j) {
  if (!session.can_act) return h("a", { href: "/login", class: "muted" }, "log in to stop");
  return h("button", {
    class: "danger",
    onclick: async () => {
      if (!confirm(`Stop ${j.id}?`)) return;
      const r = await fetch(`/api/jobs/${encodeURIComponent(j.id)}/stop`, { method: "POST" });
      if (!r.ok) alert(await r.text());
      poll();
    },
  }, "Stop");
}

function chart(id, values, format) {
  const canvas = h("canvas", { id, width: 720, height: 140 });
  const ctx = canvas.getContext && canvas.getContext("2d");
  if (!ctx || values.length < 2) return canvas;
  const max = Math.max(...values, 1e-9);
  const W = canvas.width, H = canvas.height, pad = 24;
  ctx.strokeStyle = "#e3e6ec";
  ctx.beginPath(); ctx.moveTo(pad, H - pad); ctx.lineTo(W, H - pad); ctx.stroke();
  ctx.strokeStyle = "#2f6fdf"; ctx.lineWidth = 2; ctx.beginPath();
  values.forEach((v, i) => {
    // A short history spans the width it would take at 30 samples.
    const x = pad + ((W - pad) * i) / Math.max(values.length - 1, 30);
    const y = H - pad - ((H - 2 * pad) * v) / max;
    i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#6b7385"; ctx.font = "12px system-ui";
  ctx.fillText(`max ${format(max)}`, pad, 14);
  ctx.fillText(`now ${format(values[values.length - 1])}`, W - 140, 14);
  return canvas;
}

// ---- the loop --------------------------------------------------------------

function route() {
  const hash = decodeURIComponent(location.hash.slice(1)) || "overview";
  const [name, ...rest] = hash.split("/");
  return { name, arg: rest.join("/") };
}

function render() {
  const view = document.getElementById("view");
  const { name, arg } = route();
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === `#${name}` || (name === "job" && a.getAttribute("href") === "#jobs") || (name === "node" && a.getAttribute("href") === "#nodes"));
  }
  const focused = document.activeElement && document.activeElement.id;
  view.replaceChildren();
  if (error) view.append(h("p", { class: "error", id: "error" }, error));
  if (!state) return;
  const make = views[name] || (() => [h("h1", {}, "Not found"), h("p", {}, `no view named ${name}`)]);
  view.append(...[make(arg)].flat());
  if (focused) { const el = document.getElementById(focused); if (el) { el.focus(); } }
  document.getElementById("updated").textContent = `updated ${new Date(state.generated_ms).toLocaleTimeString()}`;
}

// The node view's log: its last 64 KiB first, then what is appended.
async function followNodeLog(arg) {
  if (nodeLog.id !== arg) nodeLog = { id: arg, offset: null, text: "", error: "" };
  const q = nodeLog.offset === null ? "tail=65536" : `offset=${nodeLog.offset}`;
  const r = await fetch(`/api/nodes/${encodeURIComponent(arg)}/log?${q}`);
  if (!r.ok) { nodeLog.error = await r.text(); render(); return; }
  nodeLog.text = (nodeLog.text + await r.text()).slice(-NODE_LOG_KEEP);
  nodeLog.offset = Number(r.headers.get("x-next-offset"));
  const pre = document.getElementById("node-log");
  if (pre) { pre.textContent = nodeLog.text || "(empty)"; }
}

async function followLog() {
  const { name, arg } = route();
  if (name === "node") return followNodeLog(arg);
  if (name !== "job" || !session.job_logs) return;
  if (log.id !== arg) log = { id: arg, offset: 0, text: "", status: "" };
  if (log.status && log.status !== "RUNNING") return;
  const r = await fetch(`/api/jobs/${encodeURIComponent(arg)}/logs?offset=${log.offset}`);
  if (!r.ok) return;
  log.text += await r.text();
  log.offset = Number(r.headers.get("x-next-offset")) || log.offset;
  log.status = r.headers.get("x-job-status") || "";
  const pre = document.getElementById("job-log");
  if (pre) { pre.textContent = log.text || "(no output yet)"; }
}

async function poll() {
  try {
    const r = await fetch("/api/state");
    if (r.status === 401) { location.href = "/login"; return; }
    if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
    state = await r.json();
    error = "";
    noteServeTotals();
    const t = totals();
    const mem = alive().reduce((s, n) => s + n.store.memory_bytes, 0);
    const prev = history[history.length - 1];
    const done = t.finished + t.failed;
    const rate = prev ? Math.max(0, (done - prev.done) / Math.max(0.001, (state.generated_ms - prev.t) / 1000)) : 0;
    history.push({ t: state.generated_ms, done, rate, memory: mem });
    if (history.length > HISTORY) history.shift();
  } catch (e) {
    error = `cannot reach the node: ${e.message}`;
  }
  render();
  try { await followLog(); } catch (e) { /* the next poll tries again */ }
}

async function start() {
  try {
    const r = await fetch("/api/session");
    if (r.ok) session = await r.json();
  } catch (e) { /* read-only until it answers */ }
  const el = document.getElementById("session");
  if (session.can_act) {
    el.replaceChildren(h("form", { method: "post", action: "/logout" }, "token holder ", h("button", { type: "submit" }, "Log out")));
  } else if (session.has_token) {
    el.replaceChildren(h("span", {}, "read-only · "), h("a", { href: "/login" }, "log in"));
  } else {
    el.textContent = "read-only";
  }
  window.addEventListener("hashchange", () => { render(); followLog(); });
  await poll();
  setInterval(() => { if (!document.hidden) poll(); }, POLL_MS);
}

start();

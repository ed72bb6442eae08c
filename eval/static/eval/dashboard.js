/* Staff dashboard: active alerts, queue counts, oldest wait, workers, recent failures,
   polled from /api/status (paused while the tab is hidden). */
import "./site.js";
import { pageUrl } from "./api.js";
import { byId, cell, setText } from "./dom.js";
import { duration, time } from "./format.js";
import { Poller } from "./poller.js";

const root = byId("dashboard");
let lastKey = "";

function age(seconds) {
  return seconds == null ? "nothing queued" : duration(seconds);
}

// A list's items, or one muted line saying it is empty.
function fillList(id, items, emptyText) {
  if (!items.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = emptyText;
    items.push(li);
  }
  document.getElementById(id).replaceChildren(...items);
}

function renderAlerts(alerts) {
  const items = alerts.map((a) => {
    const li = document.createElement("li");
    li.className = "alert-active";
    li.dataset.rule = a.rule;
    const rule = document.createElement("strong");
    rule.textContent = a.rule;
    li.appendChild(rule);
    li.appendChild(document.createTextNode(" — " + a.message + " (since " + time(a.since) + ")"));
    return li;
  });
  fillList("alerts", items, "No active alerts.");
}

function render(data) {
  const key = JSON.stringify(data);
  if (key === lastKey) return true;
  lastKey = key;
  renderAlerts(data.alerts || []);
  for (const [status, n] of Object.entries(data.counts)) {
    const el = root.querySelector('[data-count="' + status + '"]');
    if (el) setText(el, String(n));
  }
  setText(document.getElementById("oldest-wait"), age(data.oldest_queued_age_s));

  const rows = data.workers.map((w) => {
    const tr = document.createElement("tr");
    tr.className = w.online ? "online" : "offline";
    tr.append(
      cell(w.worker_id),
      cell(w.hostname),
      cell(String(w.pid)),
      cell(w.online ? "yes" : "no"),
      cell(time(w.last_seen)),
      cell(String(w.in_flight)),
      cell(String(w.jobs_done)),
      cell(String(w.jobs_failed)),
    );
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    const none = cell("No workers have reported.", "muted");
    none.colSpan = 8;
    tr.append(none);
    rows.push(tr);
  }
  document.getElementById("workers").replaceChildren(...rows);

  const items = (data.recent_failures || []).map((f) => {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = pageUrl("task", f.task);
    link.textContent = f.provider + "/" + f.model + " on task " + f.task;
    li.appendChild(link);
    li.appendChild(document.createTextNode(" — " + f.error.code + ": " + f.error.message + " (" + time(f.finished_at) + ")"));
    return li;
  });
  fillList("failures", items, "No failures.");
  return true;
}

const poller = new Poller({
  url: root.dataset.statusUrl,
  interval: Number(root.dataset.pollInterval) || 2000,
  notice: document.getElementById("poll-notice"),
  owner: root,
  onData: render,
});
poller.start();

/* Staff dashboard: active alerts, queue counts, oldest wait, workers, recent failures,
   polled from /api/status (paused while the tab is hidden). */
(function () {
  "use strict";

  const E = window.Eval;
  const root = document.getElementById("dashboard");
  if (!root) return;
  let lastKey = "";

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function age(seconds) {
    if (seconds == null) return "nothing queued";
    if (seconds < 90) return Math.round(seconds) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
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
      li.appendChild(document.createTextNode(" — " + a.message + " (since " + E.localTime(a.since) + ")"));
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
      if (el) E.setText(el, String(n));
    }
    E.setText(document.getElementById("oldest-wait"), age(data.oldest_queued_age_s));

    const rows = data.workers.map((w) => {
      const tr = document.createElement("tr");
      tr.className = w.online ? "online" : "offline";
      cell(tr, w.worker_id);
      cell(tr, w.hostname);
      cell(tr, String(w.pid));
      cell(tr, w.online ? "yes" : "no");
      cell(tr, E.localTime(w.last_seen));
      cell(tr, String(w.in_flight));
      cell(tr, String(w.jobs_done));
      cell(tr, String(w.jobs_failed));
      return tr;
    });
    if (!rows.length) {
      const tr = document.createElement("tr");
      cell(tr, "No workers have reported.", "muted").colSpan = 8;
      rows.push(tr);
    }
    document.getElementById("workers").replaceChildren(...rows);

    const items = (data.recent_failures || []).map((f) => {
      const li = document.createElement("li");
      const link = document.createElement("a");
      link.href = "/tasks/" + f.task + "/";
      link.textContent = f.provider + "/" + f.model + " on task " + f.task;
      li.appendChild(link);
      li.appendChild(document.createTextNode(" — " + f.error.code + ": " + f.error.message + " (" + E.localTime(f.finished_at) + ")"));
      return li;
    });
    fillList("failures", items, "No failures.");
    return true;
  }

  const poller = new E.Poller({
    url: root.dataset.statusUrl,
    interval: Number(root.dataset.pollInterval) || 2000,
    notice: document.getElementById("poll-notice"),
    onData: render,
  });
  E.dashboardPoller = poller;
  poller.start();
})();

/* A run as text: Eval.Runs (money, counts, progress, its row in the runs
   list), shared with runs.js. And one run's page (/runs/<id>/), polled from
   /api/runs/<id> like the review page (If-None-Match and 304, paused while
   the tab is hidden, backing off on errors and saying so: poller.js): counts
   per status, cost so far against the estimate, next firing, the latest
   failures with their errors, cancel (after a confirm) and "Run now" for a
   scheduled run. The page lists failures itself too (with task titles); the
   poll's list replaces it, and says when more failed than it lists. */
(function () {
  "use strict";

  const E = window.Eval;
  function num(value) {
    return value == null || value === "" ? null : Number(value);
  }

  /* "$0", "$0.0042", "$12.40". */
  function money(value) {
    const usd = num(value);
    if (usd == null || isNaN(usd)) return "–";
    if (usd === 0) return "$0";
    if (usd < 0.01) return "$" + usd.toPrecision(2);
    return "$" + usd.toFixed(2);
  }

  function plural(n, word) {
    return n.toLocaleString() + " " + word + (n === 1 ? "" : "s");
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text != null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function badge(status) {
    return el("span", status, "badge badge-" + status);
  }

  /* {jobs, live, ended}: the server counts which statuses are which. */
  function totals(run) {
    return run.totals || { jobs: 0, live: 0, ended: 0 };
  }

  /* "12 of 30 done · 2 failed" */
  function progressText(run) {
    const c = run.counts || {};
    const t = totals(run);
    if (run.status === "scheduled" && !t.jobs) return "waiting for " + (run.schedule ? "its schedule" : "launch");
    let text = t.ended + " of " + plural(t.jobs, "job") + " finished";
    if (c.failed) text += " · " + c.failed + " failed";
    return text;
  }

  function percent(run) {
    const p = num(run.progress);
    return p != null && !isNaN(p) ? Math.max(0, Math.min(100, Math.round(p))) : 0;
  }

  function runRow(run) {
    const tr = document.createElement("tr");
    tr.className = "run-row status-" + run.status;
    const name = el("td", null, "run-name");
    const link = el("a", run.name || "Run " + run.id);
    link.href = "/runs/" + run.id + "/";
    name.append(link, el("span", " #" + run.id + " · " + run.provider + "/" + run.model + (run.kind === "judge" ? " · judge" : "") + (run.template_name ? " · template " + run.template_name : ""), "muted small"));
    const status = el("td");
    status.append(badge(run.status));
    const progress = el("td", null, "run-progress");
    const bar = el("progress");
    bar.max = 100;
    bar.value = percent(run);
    bar.setAttribute("aria-label", "Progress of " + (run.name || "run " + run.id));
    progress.append(bar, el("span", " " + progressText(run), "small"));
    const cost = el("td", money(run.cost_usd), "num");
    if (num(run.estimated_cost_usd)) cost.append(el("span", " of ~" + money(run.estimated_cost_usd), "muted small"));
    const schedule = el("td", null, "secondary");
    if (run.schedule) {
      schedule.append(el("code", run.schedule));
      if (run.next_run_at) schedule.append(el("span", " next " + E.clockTime(run.next_run_at), "small"));
    } else {
      schedule.textContent = run.parent ? "firing of #" + run.parent : "";
    }
    const created = el("td", E.clockTime(run.created_at) + (run.created_by ? " · " + run.created_by : ""), "secondary small");
    tr.append(name, status, progress, cost, schedule, created);
    return tr;
  }

  E.Runs = { money, plural, el, num, badge, totals, progressText, percent, row: runRow };

  const R = E.Runs;
  const root = document.getElementById("run-page");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const failedShown = Number(root.dataset.failedShown) || 0;
  let run = null;

  function paramsText(params) {
    const parts = [];
    if (params && params.max_tokens != null) parts.push("max tokens " + params.max_tokens);
    if (params && params.temperature != null) parts.push("temperature " + params.temperature);
    return parts.length ? parts.join(", ") : "default parameters";
  }

  function checksText(checks) {
    return (checks || []).map((c) => c.type + (c.pattern ? " " + c.pattern : "") +
      (c.passed != null ? ": " + c.passed + " passed, " + c.failed + " failed" : "")).join(" · ");
  }

  function summary(data) {
    const c = data.counts || {};
    const all = R.totals(data).jobs;
    if (data.status === "scheduled") {
      return data.next_run_at ? "Waits for its schedule: next firing " + E.localTime(data.next_run_at) + "." : "Waits to be launched.";
    }
    if (data.status === "cancelled") return "Cancelled. " + R.progressText(data) + ".";
    if (data.status === "done") {
      return "Done: " + (c.succeeded || 0) + " of " + R.plural(all, "job") + " succeeded" + (c.failed ? ", " + c.failed + " failed" : "") +
        (c.cancelled ? ", " + c.cancelled + " cancelled" : "") + ".";
    }
    const left = R.totals(data).live;
    return "Running: " + R.progressText(data) + "; " + (c.running || 0) + " generating, " + left + " still to finish.";
  }

  function costText(data) {
    const spent = R.money(data.cost_usd);
    if (data.estimated_cost_usd == null) return spent;
    const est = Number(data.estimated_cost_usd);
    if (!est) return spent;
    return spent + " (" + Math.round((100 * Number(data.cost_usd || 0)) / est) + "% of the estimate)";
  }

  function render(data) {
    run = data;
    E.setText($("run-name"), data.name);
    document.title = data.name + " · Runs · LLM review";
    const badge = $("run-status");
    E.setText(badge, data.status);
    badge.className = "badge badge-" + data.status;
    E.setText($("run-params"), paramsText(data.params));
    const p = R.percent(data);
    $("run-progress").value = p;
    E.setText($("run-percent"), p + "%");
    E.setText($("run-progress-text"), summary(data));
    for (const [status, n] of Object.entries(data.counts || {})) {
      const cell = root.querySelector('[data-count="' + status + '"]');
      if (cell) E.setText(cell, String(n));
    }
    E.setText($("run-cost"), costText(data));
    E.setText($("run-estimate"), data.estimated_cost_usd == null ? "made at launch" : R.money(data.estimated_cost_usd));
    E.setText($("run-max-cost"), data.max_cost_usd == null ? "none" : R.money(data.max_cost_usd));
    E.setText($("run-schedule"), data.schedule || "none (runs once)");
    $("next-box").hidden = !data.schedule;
    E.setText($("run-next"), data.next_run_at ? E.localTime(data.next_run_at) : "none planned");
    $("checks-box").hidden = !(data.checks && data.checks.length);
    E.setText($("run-checks"), checksText(data.checks));
    const refused = $("run-refused");
    refused.hidden = !data.refused_reason;
    E.setText(refused, data.refused_reason ? "Last firing refused: " + data.refused_reason : "");
    drawFailures(data);
    drawActions(data);
    drawBaseline(data);
    document.dispatchEvent(new CustomEvent("eval:run", { detail: data })); // runjobs.js
    return data.status === "running";
  }

  /* The poll's recent failures (Run JSON "failures"), else what the page listed. */
  const titles = {};
  for (const link of document.querySelectorAll("#failures [data-task]")) titles[link.dataset.task] = link.textContent;

  function failureItem(f) {
    const li = document.createElement("li");
    const link = R.el("a", titles[f.task] || "Task " + f.task);
    link.href = "/tasks/" + f.task + "/";
    li.append(link, " ", R.el("span", f.code || "failed", "badge badge-failed"), R.el("span", " job " + E.shortId(f.job), "muted small"));
    if (f.message) li.append(R.el("pre", f.message, "text failure-text"));
    return li;
  }

  function drawFailures(data) {
    const failed = (data.counts && data.counts.failed) || 0;
    E.setText($("failures-count"), String(failed));
    const listed = Array.isArray(data.failures) ? data.failures.length : failedShown;
    if (Array.isArray(data.failures)) {
      $("failures").replaceChildren(...data.failures.map(failureItem));
      $("no-failures").hidden = failed > 0;
    }
    const more = failed - listed;
    $("failures-more").hidden = more <= 0;
    if (more > 0) {
      E.setText($("failures-more-text"), Array.isArray(data.failures)
        ? "The latest " + listed + " of " + failed + " failures are listed."
        : R.plural(more, "more job") + " failed since this page was loaded.");
    }
  }

  /* Run JSON "baseline" and "regression" (a schedule's firing compared with it). */
  function drawBaseline(data) {
    $("baseline-badge").hidden = !data.baseline;
    $("baseline-button").hidden = !(root.dataset.canLaunch && data.status === "done" && data.kind !== "judge" && !data.baseline);
    const regression = $("run-regression");
    regression.hidden = !data.regression;
    E.setText(regression, data.regression ? "Regressed against the baseline: " + data.regression : "");
  }

  function drawActions(data) {
    const live = data.status === "scheduled" || data.status === "running";
    $("cancel-button").hidden = !(root.dataset.canCancel && live);
    $("launch-button").hidden = !(root.dataset.canLaunch && data.status === "scheduled");
    E.setText($("cancel-button"), data.status === "scheduled" && data.schedule ? "Cancel schedule…" : "Cancel run…");
  }

  const poller = new E.Poller({
    url: root.dataset.runUrl,
    interval: Number(root.dataset.pollInterval) || 2000,
    notice: $("poll-notice"),
    onData: render,
  });
  poller.start();

  async function act(button, path, doing) {
    const status = $("action-status");
    button.disabled = true;
    status.classList.remove("error");
    E.setText(status, doing);
    const result = await E.api("POST", root.dataset.runUrl + "/" + path);
    button.disabled = false;
    if (result.ok && result.data && result.data.id != null) {
      E.setText(status, "");
      poller.etag = null;
      render(result.data);
      poller.kick();
    } else if (result.ok) {
      E.setText(status, "");
      poller.kick();
    } else {
      status.classList.add("error");
      E.setText(status, "Refused: " + E.errorText(result));
    }
  }

  $("cancel-button").addEventListener("click", async () => {
    if (!run) return;
    const c = run.counts || {};
    const pending = (c.queued || 0) + (c.running || 0);
    const schedule = run.status === "scheduled" && Boolean(run.schedule);
    const lines = schedule
      ? ["No further firing will start. Runs it already launched go on (cancel them on their own pages)."]
      : [R.plural(pending, "job") + " not finished will be cancelled; running ones stop within a few seconds.",
         "Outputs already written are kept. This cannot be undone."];
    const answer = await E.confirmDialog({
      title: (schedule ? "Cancel the schedule “" : "Cancel “") + run.name + "”?",
      lines: lines,
      buttons: [
        { label: schedule ? "Keep the schedule" : "Keep it running", value: false },
        { label: schedule ? "Cancel the schedule" : "Cancel the run", value: true },
      ],
      cancelValue: false,
    });
    if (answer === true) act($("cancel-button"), "cancel", "Cancelling…");
  });

  $("launch-button").addEventListener("click", () => act($("launch-button"), "launch", "Launching…"));
  $("baseline-button").addEventListener("click", () => act($("baseline-button"), "baseline", "Marking…"));
})();

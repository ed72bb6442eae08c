/* One run's page (/runs/<id>/), polled from its API URL like the review
   page (If-None-Match and 304, paused while the tab is hidden, backing off
   on errors and saying so: poller.js): counts per status, cost so far against
   the estimate, next firing, the latest failures with their errors, cancel
   (after a confirm) and "Run now" for a scheduled run. The page lists
   failures itself too (with task titles); the poll's list replaces it, and
   says when more failed than it lists. Its jobs: runjobs.js. */
import "./site.js";
import { api, errorText, pageUrl } from "./api.js";
import { confirmDialog } from "./dialog.js";
import { byId as $, el, setText } from "./dom.js";
import { money, paramsText, plural, shortId, time } from "./format.js";
import { Poller } from "./poller.js";
import { runJobs } from "./runjobs.js";
import { percent, progressText, totals } from "./runtext.js";

const root = document.getElementById("run-page");
const urls = root.dataset;
const failedShown = Number(root.dataset.failedShown) || 0;
let run = null;

function checksText(checks) {
  return (checks || []).map((c) => c.type + (c.pattern ? " " + c.pattern : "") +
    (c.passed != null ? ": " + c.passed + " passed, " + c.failed + " failed" : "")).join(" · ");
}

function summary(data) {
  const c = data.counts || {};
  const all = totals(data).jobs;
  if (data.status === "scheduled") {
    return data.next_run_at ? "Waits for its schedule: next firing " + time(data.next_run_at) + "." : "Waits to be launched.";
  }
  if (data.status === "cancelled") return "Cancelled. " + progressText(data) + ".";
  if (data.status === "done") {
    return "Done: " + (c.succeeded || 0) + " of " + plural(all, "job") + " succeeded" + (c.failed ? ", " + c.failed + " failed" : "") +
      (c.cancelled ? ", " + c.cancelled + " cancelled" : "") + ".";
  }
  const left = totals(data).live;
  return "Running: " + progressText(data) + "; " + (c.running || 0) + " generating, " + left + " still to finish.";
}

function costText(data) {
  const spent = money(data.cost_usd);
  if (data.estimated_cost_usd == null) return spent;
  const est = Number(data.estimated_cost_usd);
  if (!est) return spent;
  return spent + " (" + Math.round((100 * Number(data.cost_usd || 0)) / est) + "% of the estimate)";
}

function render(data) {
  run = data;
  setText($("run-name"), data.name);
  document.title = data.name + " · Runs · LLM review";
  const badge = $("run-status");
  setText(badge, data.status);
  badge.className = "badge badge-" + data.status;
  setText($("run-params"), paramsText(data.params));
  const p = percent(data);
  $("run-progress").value = p;
  setText($("run-percent"), p + "%");
  setText($("run-progress-text"), summary(data));
  for (const [status, n] of Object.entries(data.counts || {})) {
    const cell = root.querySelector('[data-count="' + status + '"]');
    if (cell) setText(cell, String(n));
  }
  setText($("run-cost"), costText(data));
  setText($("run-estimate"), data.estimated_cost_usd == null ? "made at launch" : money(data.estimated_cost_usd));
  setText($("run-max-cost"), data.max_cost_usd == null ? "none" : money(data.max_cost_usd));
  setText($("run-schedule"), data.schedule || "none (runs once)");
  $("next-box").hidden = !data.schedule;
  setText($("run-next"), data.next_run_at ? time(data.next_run_at) : "none planned");
  $("checks-box").hidden = !(data.checks && data.checks.length);
  setText($("run-checks"), checksText(data.checks));
  const refused = $("run-refused");
  refused.hidden = !data.refused_reason;
  setText(refused, data.refused_reason ? "Last firing refused: " + data.refused_reason : "");
  drawFailures(data);
  drawActions(data);
  drawBaseline(data);
  jobs.runChanged(data);
  return data.status === "running";
}

/* The poll's recent failures (Run JSON "failures"), else what the page listed. */
const titles = {};
for (const link of document.querySelectorAll("#failures [data-task]")) titles[link.dataset.task] = link.textContent;

function failureItem(f) {
  const li = document.createElement("li");
  const link = el("a", titles[f.task] || "Task " + f.task);
  link.href = pageUrl("task", f.task);
  li.append(link, " ", el("span", f.code || "failed", "badge badge-failed"), el("span", " job " + shortId(f.job), "muted small"));
  if (f.message) li.append(el("pre", f.message, "text failure-text"));
  return li;
}

function drawFailures(data) {
  const failed = (data.counts && data.counts.failed) || 0;
  setText($("failures-count"), String(failed));
  const listed = Array.isArray(data.failures) ? data.failures.length : failedShown;
  if (Array.isArray(data.failures)) {
    $("failures").replaceChildren(...data.failures.map(failureItem));
    $("no-failures").hidden = failed > 0;
  }
  const more = failed - listed;
  $("failures-more").hidden = more <= 0;
  if (more > 0) {
    setText($("failures-more-text"), Array.isArray(data.failures)
      ? "The latest " + listed + " of " + failed + " failures are listed."
      : plural(more, "more job") + " failed since this page was loaded.");
  }
}

/* Run JSON "baseline" and "regression" (a schedule's firing compared with it). */
function drawBaseline(data) {
  $("baseline-badge").hidden = !data.baseline;
  $("baseline-button").hidden = !(root.dataset.canLaunch && data.status === "done" && data.kind !== "judge" && !data.baseline);
  const regression = $("run-regression");
  regression.hidden = !data.regression;
  setText(regression, data.regression ? "Regressed against the baseline: " + data.regression : "");
}

function drawActions(data) {
  const live = data.status === "scheduled" || data.status === "running";
  $("cancel-button").hidden = !(root.dataset.canCancel && live);
  $("launch-button").hidden = !(root.dataset.canLaunch && data.status === "scheduled");
  setText($("cancel-button"), data.status === "scheduled" && data.schedule ? "Cancel schedule…" : "Cancel run…");
}

const jobs = runJobs(root);
const poller = new Poller({
  url: urls.runUrl,
  interval: Number(root.dataset.pollInterval) || 2000,
  notice: $("poll-notice"),
  onData: render,
});
poller.start();

async function act(button, url, doing) {
  const status = $("action-status");
  button.disabled = true;
  status.classList.remove("error");
  setText(status, doing);
  const result = await api("POST", url);
  button.disabled = false;
  if (result.ok && result.data && result.data.id != null) {
    setText(status, "");
    poller.etag = null;
    render(result.data);
    poller.kick();
  } else if (result.ok) {
    setText(status, "");
    poller.kick();
  } else {
    status.classList.add("error");
    setText(status, "Refused: " + errorText(result));
  }
}

$("cancel-button").addEventListener("click", async () => {
  if (!run) return;
  const c = run.counts || {};
  const pending = (c.queued || 0) + (c.running || 0);
  const schedule = run.status === "scheduled" && Boolean(run.schedule);
  const lines = schedule
    ? ["No further firing will start. Runs it already launched go on (cancel them on their own pages)."]
    : [plural(pending, "job") + " not finished will be cancelled; running ones stop within a few seconds.",
       "Outputs already written are kept. This cannot be undone."];
  const answer = await confirmDialog({
    title: (schedule ? "Cancel the schedule “" : "Cancel “") + run.name + "”?",
    lines: lines,
    buttons: [
      { label: schedule ? "Keep the schedule" : "Keep it running", value: false },
      { label: schedule ? "Cancel the schedule" : "Cancel the run", value: true },
    ],
    cancelValue: false,
  });
  if (answer === true) act($("cancel-button"), urls.cancelUrl, "Cancelling…");
});

$("launch-button").addEventListener("click", () => act($("launch-button"), urls.launchUrl, "Launching…"));
$("baseline-button").addEventListener("click", () => act($("baseline-button"), urls.baselineUrl, "Marking…"));

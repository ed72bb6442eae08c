/* A run as text, shared by the runs list (runs.js) and a run's page
   (run.js): its counts, progress and its row in the runs list. Money, counts
   and times are worded by format.js. */
import { pageUrl } from "./api.js";
import { el } from "./dom.js";
import { money, num, plural, time } from "./format.js";

export function badge(status) {
  return el("span", status, "badge badge-" + status);
}

/* {jobs, live, ended}: the server counts which statuses are which. */
export function totals(run) {
  return run.totals || { jobs: 0, live: 0, ended: 0 };
}

/* "12 of 30 done · 2 failed" */
export function progressText(run) {
  const c = run.counts || {};
  const t = totals(run);
  if (run.status === "scheduled" && !t.jobs) return "waiting for " + (run.schedule ? "its schedule" : "launch");
  let text = t.ended + " of " + plural(t.jobs, "job") + " finished";
  if (c.failed) text += " · " + c.failed + " failed";
  return text;
}

export function percent(run) {
  const p = num(run.progress);
  return p != null && !isNaN(p) ? Math.max(0, Math.min(100, Math.round(p))) : 0;
}

export function runRow(run) {
  const tr = document.createElement("tr");
  tr.className = "run-row status-" + run.status;
  const name = el("td", null, "run-name");
  const link = el("a", run.name || "Run " + run.id);
  link.href = pageUrl("run", run.id);
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
    if (run.next_run_at) schedule.append(el("span", " next " + time(run.next_run_at), "small"));
  } else {
    schedule.textContent = run.parent ? "firing of #" + run.parent : "";
  }
  const created = el("td", time(run.created_at) + (run.created_by ? " · " + run.created_by : ""), "secondary small");
  tr.append(name, status, progress, cost, schedule, created);
  return tr;
}

/* Two runs task by task (/runs/compare?a=A&b=B), from the compare API:
   the summary (per check regressions, fixes and p; per judge wins and p;
   human verdict counts; totals), then one row per task with A's and B's
   outputs side by side as a word diff (diff.js: <del> only in A, <ins> only
   in B), each check in A and B, the judges' verdicts, and the token, cost
   and duration deltas. Filters (regressions only, changed output only, by
   check) and keyset pages; j/k step through the rows, o opens the task.
   Outputs are text nodes only: never HTML. */
import "./site.js";
import { api, errorText, pageUrl, urlFor } from "./api.js";
import { diff, renderDiff } from "./diff.js";
import { byId as $, el, setText, typingInField } from "./dom.js";
import { count, duration, jobDuration, money, signed, tokens } from "./format.js";

const root = $("compare-page");
const data = root.dataset;
const base = data.compareUrl + "?a=" + encodeURIComponent(data.a) + "&b=" + encodeURIComponent(data.b);
let cursors = [null];
let next = null;
let selected = -1;
let checksFilled = false;

function p(value) {
  if (value == null) return "–";
  return value < 0.001 ? value.toExponential(1) : value.toFixed(3);
}

function cells(tr, values) {
  values.forEach((value, i) => tr.append(el(i ? "td" : "th", value, i ? "num" : null)));
  if (tr.firstChild) tr.firstChild.scope = "row";
  return tr;
}

/* A side's token totals ({input, output}, null where unknown) as format.js words them. */
function sideTokens(side) {
  return tokens({ input_tokens: side && side.input, output_tokens: side && side.output });
}

/* What `manage.py runs compare` decides on, in words: each test's p after Holm's
   correction across them all, and whether B regressed. */
function drawGate(gate) {
  const found = gate.tests.filter((t) => t.significant);
  const line = $("summary-gate");
  line.className = found.length ? "gate worse" : "gate";
  setText(line, found.length
    ? "B regressed: " + found.map((t) => (t.kind === "check" ? "check " : "") + t.name + " (" + t.regressions +
        " regressions, " + t.fixes + " fixes, p = " + p(t.p_holm) + " after Holm)").join("; ") + "."
    : "No significant regression (alpha " + gate.alpha + ", Holm across " + gate.tests.length + " test" +
        (gate.tests.length === 1 ? "" : "s") + ").");
}

function holmOf(gate, kind, name) {
  const test = gate.tests.find((t) => t.kind === kind && t.name === name);
  return test || { p_holm: null, significant: false };
}

function drawSummary(summary, gate) {
  drawGate(gate);
  $("compare-summary").hidden = false;
  const t = summary.tasks;
  setText($("summary-tasks"), t.compared + " tasks compared (" + t.changed_output + " with a changed output)" +
    (t.prompt_changed ? "; " + t.prompt_changed + " left out: their prompt or reference changed between the runs" : "") +
    (t.only_a ? "; " + t.only_a + " only in A" : "") + (t.only_b ? "; " + t.only_b + " only in B" : "") + ".");
  $("summary-checks").replaceChildren(...summary.checks.map((c) => {
    const test = holmOf(gate, "check", c.check);
    const tr = cells(el("tr"), [c.check, c.regressions, c.fixes, c.tasks, p(c.p_value), p(test.p_holm)]);
    if (test.significant) tr.className = "worse";
    return tr;
  }));
  if (!summary.checks.length) $("summary-checks").append(cells(el("tr"), ["No check ran in both runs alike", "", "", "", "", ""]));
  const leftOut = $("summary-left-out");
  leftOut.hidden = !summary.checks_left_out.length;
  setText(leftOut, "Not compared (only one run ran them, or with other settings): " + summary.checks_left_out.join(", ") + ".");
  $("summary-verdicts-table").hidden = !summary.verdicts.length;
  $("summary-verdicts").replaceChildren(...summary.verdicts.map((v) => {
    const test = holmOf(gate, "judge", v.by);
    const tr = cells(el("tr"), [v.by, v.a_wins, v.b_wins, v.ties, v.both_bad, p(v.p_value), p(test.p_holm)]);
    if (test.significant) tr.className = "worse";
    return tr;
  }));
  const h = summary.humans;
  const humans = h.a_wins + h.b_wins + h.ties + h.both_bad;
  setText($("summary-humans"), humans ? "Reviewers' verdicts: A better " + h.a_wins + ", B better " + h.b_wins +
    ", ties " + h.ties + ", both bad " + h.both_bad + "." : "No reviewer has compared these two runs' outputs.");
  const totals = [
    ["Cost A", money(summary.cost_usd.a)], ["Cost B", money(summary.cost_usd.b)],
    ["Tokens A", sideTokens(summary.tokens.a)],
    ["Tokens B", sideTokens(summary.tokens.b)],
  ];
  $("summary-totals").replaceChildren(...totals.map(([name, value]) => {
    const div = el("div");
    div.append(el("dt", name), el("dd", value));
    return div;
  }));
  if (!checksFilled) {
    checksFilled = true;
    for (const c of summary.checks) {
      const option = el("option", c.check);
      option.value = c.check;
      $("filter-check").append(option);
    }
    $("filter-check").value = new URLSearchParams(window.location.search).get("check") || "";
  }
}

function diffPanes(a, b) {
  const left = el("pre", null, "text diff");
  const right = el("pre", null, "text diff");
  const parts = diff(a, b);
  renderDiff(left, parts.filter(([op]) => op !== "+"));
  renderDiff(right, parts.filter(([op]) => op !== "-"));
  return [left, right];
}

function side(label, job) {
  const box = el("div", null, "compare-side");
  const head = el("p", null, "compare-side-head");
  head.append(el("strong", label + " · " + job.model), " ", el("span", job.status, "badge badge-" + job.status));
  if (job.error) head.append(" ", el("span", job.error.code, "error small"));
  box.append(head);
  return box;
}

function checkLine(c) {
  const mark = (v) => (v == null ? "n/a" : v ? "✓" : "✗");
  const li = el("li", c.check + ": " + mark(c.a) + " → " + mark(c.b), "check-change");
  if (c.change) li.append(" ", el("span", c.change, "badge change-" + c.change));
  return li;
}

function facts(row) {
  const d = row.delta;
  const dl = el("dl", null, "compare-facts");
  const items = [
    ["Tokens A", tokens(row.a.usage)], ["Tokens B", tokens(row.b.usage)],
    ["Δ output tokens", signed(d.output_tokens)], ["Δ cost", signed(d.cost_usd, money)],
    ["Duration A / B", jobDuration(row.a) + " / " + jobDuration(row.b)], ["Δ duration", signed(d.duration_s, duration)],
  ];
  for (const [name, value] of items) {
    const div = el("div");
    div.append(el("dt", name), el("dd", value));
    dl.append(div);
  }
  return dl;
}

function verdictText(row) {
  const words = { a: "A better", b: "B better", tie: "tie", both_bad: "both bad" };
  const parts = row.verdicts.map((v) => v.by + ": " + words[v.outcome]);
  const h = row.humans;
  if (h.a_wins + h.b_wins + h.ties + h.both_bad) {
    parts.push("reviewers: A better " + h.a_wins + ", B better " + h.b_wins + ", ties " + h.ties + ", both bad " + h.both_bad);
  }
  if (row.reviewers && row.reviewers.length) {
    parts.push(row.reviewers.map((r) => r.reviewer + ": " + words[r.outcome]).join(", "));
  }
  return parts.join(" · ");
}

async function fullText(job) {
  if (!job.output_truncated) return job.output;
  const result = await api("GET", urlFor(data.jobUrl, job.id) + "?output_from=" + job.output.length);
  return result.ok && result.data ? job.output + result.data.output : job.output + " […]";
}

function rowItem(row) {
  const li = el("li", null, "compare-row");
  li.tabIndex = -1;
  li.dataset.task = row.task;
  if (row.checks.some((c) => c.change === "regression")) li.classList.add("has-regression");
  const head = el("p", null, "compare-row-head");
  const link = el("a", row.title || "Task " + row.task);
  link.href = pageUrl("task", row.task);
  link.className = "compare-task-link";
  head.append(link, " ", el("span", row.changed_output ? "output changed" : "same output", "muted small"));
  const checks = el("ul", null, "compare-row-checks");
  checks.append(...row.checks.map(checkLine));
  const panes = el("div", null, "compare-sides");
  const a = side("A", row.a);
  const b = side("B", row.b);
  panes.append(a, b);
  const verdicts = verdictText(row);
  li.append(head, checks, panes, facts(row));
  if (verdicts) li.append(el("p", verdicts, "compare-verdicts small"));
  Promise.all([fullText(row.a), fullText(row.b)]).then(([textA, textB]) => {
    const [left, right] = diffPanes(textA, textB);
    a.append(left);
    b.append(right);
  });
  return li;
}

function url() {
  const params = new URLSearchParams();
  if ($("filter-only").value) params.set("only", $("filter-only").value);
  if ($("filter-check").value) params.set("check", $("filter-check").value);
  const after = cursors[cursors.length - 1];
  if (after) params.set("after", after);
  const query = params.toString();
  return base + (query ? "&" + query : "");
}

async function load() {
  setText($("compare-status"), "Loading…");
  const result = await api("GET", url());
  if (!result.ok || !result.data) {
    setText($("compare-status"), "Could not load the comparison: " + errorText(result));
    return;
  }
  const answer = result.data;
  setText($("compare-status"), "");
  drawSummary(answer.summary, answer.gate);
  next = answer.next;
  selected = -1;
  $("compare-rows").replaceChildren(...answer.rows.map(rowItem));
  $("rows-none").hidden = answer.rows.length > 0;
  setText($("rows-count"), count(answer.count) + " task" + (answer.count === 1 ? "" : "s") +
    (answer.count > 50 ? " · page " + cursors.length + " of " + Math.ceil(answer.count / 50) : ""));
  $("rows-next").hidden = !next;
  $("rows-prev").hidden = cursors.length <= 1;
}

/* The filters live in the page's address too, so a filtered view can be linked. */
function keepFiltersInAddress() {
  const params = new URLSearchParams(window.location.search);
  for (const [name, id] of [["only", "filter-only"], ["check", "filter-check"]]) {
    if ($(id).value) params.set(name, $(id).value);
    else params.delete(name);
  }
  window.history.replaceState(null, "", "?" + params.toString());
}

function restart() {
  keepFiltersInAddress();
  cursors = [null];
  load();
}

function step(delta) {
  const rows = Array.from(document.querySelectorAll("#compare-rows > li"));
  if (!rows.length) return;
  selected = Math.max(0, Math.min(rows.length - 1, selected + delta));
  rows.forEach((row, i) => row.classList.toggle("selected", i === selected));
  rows[selected].focus();
  rows[selected].scrollIntoView({ block: "start" });
}

/* The two runs' rows; before two runs are chosen the page is only their picker. */
function start() {
  const asked = new URLSearchParams(window.location.search);
  $("filter-only").value = asked.get("only") || "";
  if (asked.get("check")) {
    // Its options come with the first answer; until then the asked check is the only one.
    const option = el("option", asked.get("check"));
    option.value = asked.get("check");
    $("filter-check").append(option);
    $("filter-check").value = option.value;
  }
  $("filter-only").addEventListener("change", restart);
  $("filter-check").addEventListener("change", restart);
  $("rows-next").addEventListener("click", () => {
    if (!next) return;
    cursors.push(next);
    load();
  });
  $("rows-prev").addEventListener("click", () => {
    if (cursors.length > 1) cursors.pop();
    load();
  });
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typingInField(event)) return;
    if (event.key === "j") step(1);
    else if (event.key === "k") step(-1);
    else if (event.key === "o" && selected >= 0) {
      const link = document.querySelectorAll("#compare-rows > li")[selected].querySelector(".compare-task-link");
      if (link) window.location.href = link.href;
    } else return;
    event.preventDefault();
  });
  load();
}

if (data.a && data.b) start();

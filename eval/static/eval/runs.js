/* Evaluation runs (/runs/): the runs list, polled from the runs API (rows
   drawn by runtext.js), today's spend from the budget API, the "Judge two
   runs" form (judgerun.js), and the "New run" form: a live
   count of the tasks selected, an estimate, the confirm step a 409
   confirm_cost asks for, and a plain statement of a budget refusal. Text is
   always inserted as text. */

import "./site.js";
import { api, errorField, errorText, pageUrl } from "./api.js";
import { confirmDialog } from "./dialog.js";
import { byId, el, setText } from "./dom.js";
import { count, money, num, plural } from "./format.js";
import { judgeForm } from "./judgerun.js";
import { Poller } from "./poller.js";
import { runRow, totals } from "./runtext.js";

const COUNT_DELAY_MS = 300; // debounce of the live task count

const root = byId("runs-page");
const config = JSON.parse(document.getElementById("runs-config").textContent);

// --- the list --------------------------------------------------------------------------

const body = document.getElementById("runs-body");
const older = document.getElementById("older-runs");
let olderRows = [];
let nextCursor = null;

function drawRuns(firstPage) {
  const rows = firstPage.map(runRow).concat(olderRows);
  if (!rows.length) {
    const td = el("td", config && root.dataset.canLaunch ? "No runs yet: start one with the form above." : "No runs yet.", "muted");
    td.colSpan = 6;
    const tr = el("tr");
    tr.append(td);
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

let firstPage = [];
const poller = new Poller({
  url: root.dataset.runsUrl,
  interval: Number(root.dataset.pollInterval) || 2000,
  notice: document.getElementById("poll-notice"),
  owner: root,
  onData: (data) => {
    firstPage = data.runs || [];
    if (!olderRows.length) nextCursor = data.next;
    older.hidden = !nextCursor;
    drawRuns(firstPage);
    return firstPage.some((run) => run.status === "running");
  },
});
poller.start();

older.addEventListener("click", async () => {
  older.disabled = true;
  const result = await api("GET", root.dataset.runsUrl + "?after=" + encodeURIComponent(nextCursor));
  older.disabled = false;
  if (!result.ok || !result.data) return setText(document.getElementById("run-form-status") || older, errorText(result));
  olderRows = olderRows.concat(result.data.runs.map(runRow));
  nextCursor = result.data.next;
  older.hidden = !nextCursor;
  drawRuns(firstPage);
});

// --- today's spend -----------------------------------------------------------------------

let budget = null;
function pick(data, names) {
  for (const name of names) if (data && data[name] != null) return data[name];
  return null;
}
async function loadBudget() {
  const result = await api("GET", root.dataset.budgetUrl);
  const text = document.getElementById("budget-text");
  if (!result.ok || !result.data) return setText(text, "unknown (" + errorText(result) + ")");
  const spent = pick(result.data, ["spent_usd", "spent_today_usd"]);
  const reserved = pick(result.data, ["reserved_usd"]);
  const limit = pick(result.data, ["budget_usd"]);
  const left = pick(result.data, ["left_usd"]);
  budget = { spent: spent, reserved: reserved, limit: limit, left: left };
  let line = money(spent || 0);
  if (num(reserved)) line += " (launches reserved " + money(reserved) + ")";
  line += limit != null ? " of " + money(limit) + " a day · " + money(left) + " left" : " · no daily budget set";
  setText(text, line);
}
loadBudget();

// A judge run made here shows in the list at once, with its spend.
const judge = judgeForm(root, config.judge, () => {
  poller.kick();
  loadBudget();
});

if (root.dataset.canLaunch) newRunForm();

/* The "New run" form: only for those who may launch runs. */
function newRunForm() {
  const form = document.getElementById("run-form");
  const field = (id) => document.getElementById(id);
  const status = field("run-form-status");

  // --- models ----------------------------------------------------------------------------

  const modelSelect = field("run-model");
  for (const provider of config.providers) {
    const group = document.createElement("optgroup");
    group.label = provider.label;
    for (const model of provider.models) {
      const option = el("option", model.name + (provider.demo ? " (demo)" : ""));
      option.value = provider.name + "/" + model.name;
      group.append(option);
    }
    modelSelect.append(group);
  }
  function chosenModel() {
    const [providerName, modelName] = modelSelect.value.split("/");
    const provider = config.providers.find((p) => p.name === providerName);
    const model = provider && provider.models.find((m) => m.name === modelName);
    return { provider: provider, model: model };
  }

  // --- the selection and its live count --------------------------------------------------

  function ids() {
    const raw = field("run-ids").value.trim();
    if (!raw) return { ids: [] };
    const parts = raw.split(/[\s,]+/).filter(Boolean);
    const bad = parts.find((part) => !/^\d+$/.test(part));
    if (bad) return { error: "“" + bad + "” is not a task id (a whole number)" };
    return { ids: Array.from(new Set(parts.map(Number))) };
  }

  let countTimer = null;
  let countSeq = 0;
  let selected = null; // tasks the selection matches (an upper bound when ids are given)
  async function updateCount() {
    const out = field("task-count");
    const seq = ++countSeq;
    const source = field("run-source").value;
    const taskStatus = field("run-status").value;
    const chosen = ids();
    if (chosen.error) {
      selected = null;
      return setText(out, chosen.error + ".");
    }
    let n;
    let note = "";
    if (source) {
      const bySource = config.sources[source] || {};
      n = taskStatus ? bySource[taskStatus] || 0 : Object.values(bySource).reduce((a, b) => a + b, 0);
      note = " in " + source;
    } else {
      const result = await api("GET", root.dataset.tasksUrl + "?status=" + encodeURIComponent(taskStatus));
      if (seq !== countSeq) return; // a newer count is on its way
      if (!result.ok || !result.data) return setText(out, "Cannot count the tasks: " + errorText(result));
      const missing = config.missing || {};
      const gone = taskStatus ? missing[taskStatus] || 0 : Object.values(missing).reduce((a, b) => a + b, 0);
      n = Math.max(0, result.data.count - gone); // a run leaves out tasks gone from their source
    }
    let text;
    const limitText = field("run-limit").value.trim();
    if (limitText && !(/^\d+$/.test(limitText) && Number(limitText) >= 1)) {
      selected = null;
      return setText(out, "The limit must be a whole number of at least 1 (or empty for all).");
    }
    if (chosen.ids.length) {
      n = Math.min(n, chosen.ids.length);
      // The exact count (and any id that names no task) comes with the server's estimate.
      text = "Checking the " + plural(chosen.ids.length, "id") + " given…";
      selected = n;
      setText(out, text);
      return estimateSoon();
    } else {
      text = plural(n, "task") + " selected" + note + (taskStatus ? " (" + taskStatus + ")" : "");
    }
    const limit = num(field("run-limit").value);
    if (limit && limit < n) {
      text = plural(limit, "task") + " selected: the first " + limit + " of " + n + note;
      n = limit;
    }
    selected = n;
    setText(out, text + ".");
    out.classList.toggle("none", n === 0);
    estimateSoon();
  }
  function countSoon() {
    clearTimeout(countTimer);
    countTimer = setTimeout(updateCount, COUNT_DELAY_MS);
  }
  for (const id of ["run-source", "run-status", "run-ids", "run-limit"]) field(id).addEventListener("input", countSoon);

  /* The server's estimate of launching the form as it stands (POST /api/runs with
     dry_run: the same body, nothing created), put in words; nothing is computed here. */
  let estimateTimer = null;
  let estimateSeq = 0;
  async function estimate() {
    const out = field("run-estimate");
    const { provider, model } = chosenModel();
    const collected = collect();
    if (!provider || !model || selected == null || collected.error) return setText(out, "");
    const seq = ++estimateSeq;
    const draft = Object.assign({}, collected.body, { name: collected.body.name || "estimate", dry_run: true });
    const result = await api("POST", root.dataset.runsUrl, draft);
    if (seq !== estimateSeq) return; // a newer estimate is on its way
    if (!result.ok || !result.data) {
      if (errorField(result).startsWith("tasks")) setText(field("task-count"), errorText(result) + ".");
      return setText(out, "No estimate: " + errorText(result));
    }
    if (collected.body.tasks && collected.body.tasks.ids && result.data.tasks != null) {
      selected = result.data.tasks;
      setText(field("task-count"), plural(result.data.tasks, "task") + " selected (of the " + plural(collected.body.tasks.ids.length, "id") + " given).");
    }
    setText(out, estimateText(result.data, provider));
  }
  function estimateText(answer, provider) {
    const e = answer.estimate;
    if (!e.price) return "No price is known for this model: the estimate counts it as free.";
    if (!e.usd) return provider.demo ? "A demo model: free." : "Free.";
    return "At most about " + money(e.usd) + " for " + plural(e.calls, "call") + ": " +
      count(e.input_tokens) + " input tokens (the prompts' " + count(e.prompt_chars) + " characters ÷ " +
      e.chars_per_token + ") at $" + e.price.input + " per million, plus up to " + count(e.output_tokens) +
      " output tokens (max tokens) at $" + e.price.output + " per million. Most answers stop sooner.";
  }
  function estimateSoon() {
    clearTimeout(estimateTimer);
    estimateTimer = setTimeout(estimate, COUNT_DELAY_MS);
  }
  modelSelect.addEventListener("change", estimateSoon);
  for (const id of ["run-max-tokens", "run-temperature"]) field(id).addEventListener("input", estimateSoon);
  updateCount();

  // --- submitting ------------------------------------------------------------------------

  function invalid(input, message) {
    input.setAttribute("aria-invalid", "true");
    status.classList.add("error");
    input.focus();
    setText(status, message);
    return null;
  }
  form.addEventListener("input", (event) => event.target.removeAttribute("aria-invalid"));

  /* The create body from the form: {body} or {error: [input, message]} (the name may be
     empty: the estimate needs none). */
  function collect() {
    const name = field("run-name");
    const { provider, model } = chosenModel();
    if (!provider || !model) return { error: [modelSelect, "Choose a model."] };
    const params = {};
    for (const [key, id] of [["max_tokens", "run-max-tokens"], ["temperature", "run-temperature"]]) {
      const input = field(id);
      if (input.validity.badInput) return { error: [input, input.labels[0].firstChild.textContent.trim() + " must be a number."] };
      if (input.value.trim() !== "") params[key] = Number(input.value);
    }
    const tasks = {};
    if (field("run-source").value) tasks.source = field("run-source").value;
    if (field("run-status").value) tasks.status = field("run-status").value;
    const chosen = ids();
    if (chosen.error) return { error: [field("run-ids"), chosen.error + "."] };
    if (chosen.ids.length) tasks.ids = chosen.ids;
    if (field("run-limit").value.trim()) tasks.limit = Number(field("run-limit").value);
    const body = { name: name.value.trim(), provider: provider.name, model: model.name, params: params, tasks: tasks };
    if (field("run-schedule").value.trim()) body.schedule = field("run-schedule").value.trim();
    if (field("run-max-cost").value.trim()) body.max_cost_usd = Number(field("run-max-cost").value);
    if (field("run-template").value) body.template = Number(field("run-template").value);
    const checks = [];
    for (const box of form.querySelectorAll('input[name="check"]:checked')) {
      const check = { type: box.value };
      if (box.value === "regex") {
        const pattern = field("check-regex-pattern");
        if (!pattern.value) return { error: [pattern, "Give the regex the outputs must match."] };
        check.pattern = pattern.value;
      }
      checks.push(check);
    }
    if (checks.length) body.checks = checks;
    return { body: body };
  }

  function build() {
    const name = field("run-name");
    if (!name.value.trim()) return invalid(name, "Give the run a name.");
    const collected = collect();
    return collected.error ? invalid(...collected.error) : collected.body;
  }

  async function submit(body) {
    const button = field("run-submit");
    button.disabled = true;
    status.classList.remove("error");
    setText(status, body.schedule ? "Scheduling…" : "Launching…");
    const result = await api("POST", root.dataset.runsUrl, body);
    button.disabled = false;
    const error = result.data && result.data.error;
    if (result.status === 201 && result.data) return created(result.data);
    if (error && error.code === "confirm_cost") return confirmCost(body, error);
    status.classList.add("error");
    if (error && error.code === "budget_exceeded") {
      await loadBudget();
      const left = budget && budget.left != null ? money(budget.left) : "less";
      const reserved = budget && budget.reserved != null ? money(budget.reserved) : "–";
      return setText(status, "Not launched: over your daily budget. Its estimate is " + money(error.estimated_cost_usd) + "; " + left +
        " is left today (" + reserved + " reserved by today's launches). Narrow the selection, lower max tokens, or wait for tomorrow.");
    }
    const input = error && error.field ? form.querySelector('[name="' + error.field.split(".").pop() + '"]') : null;
    if (input) input.setAttribute("aria-invalid", "true");
    setText(status, "Not launched: " + errorText(result));
  }

  async function confirmCost(body, error) {
    const usd = num(error.estimated_cost_usd);
    const answer = await confirmDialog({
      title: "Launch “" + body.name + "”?",
      lines: [
        "Estimated " + money(usd) + " — above the " + money(config.confirm_cost_usd) + " confirmation threshold. Launch anyway?",
        "The estimate counts each prompt by its length (no tokenizer) and up to max tokens of output per task: " +
          "an upper bound, most answers stop sooner.",
      ],
      buttons: [{ label: "Launch anyway (" + money(usd) + ")", value: true }, { label: "Don’t launch", value: false }],
      cancelValue: false,
    });
    if (answer !== true) {
      status.classList.remove("error");
      return setText(status, "Not launched: you chose not to spend " + money(usd) + ".");
    }
    return submit(Object.assign({}, body, { confirm_cost_usd: usd }));
  }

  function created(run) {
    status.replaceChildren();
    const what = run.status === "scheduled" ? "Scheduled" : "Launched";
    const link = el("a", "“" + run.name + "” (#" + run.id + ")");
    link.href = pageUrl("run", run.id);
    status.append(what + " ", link, ": estimated " + money(run.estimated_cost_usd) + ", " + plural(totals(run).jobs, "job") + ".");
    if (run.status !== "scheduled") judge.offer(run); // judged at once
    poller.kick();
    loadBudget();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = build();
    if (body) submit(body);
  });
  field("run-schedule").addEventListener("input", () => {
    setText(field("run-submit"), field("run-schedule").value.trim() ? "Schedule run" : "Launch run");
  });
}

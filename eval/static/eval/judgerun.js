/* "Judge two runs" on /runs/: run A and run B, the judge model (judge-only
   models such as echo-judge are offered here and nowhere else), the rubric
   and swap (on by default), posted to the runs API as a judge run, the same
   call `manage.py runs create --judge-compare` makes. A 409 confirm_cost asks
   first, like the "New run" form; a created run is announced with its link and
   the runs list (runs.js) is told through onCreated. Text is
   always inserted as text. */
import { api, errorText, pageUrl } from "./api.js";
import { confirmDialog } from "./dialog.js";
import { el, setText } from "./dom.js";
import { money, num, plural } from "./format.js";
import { totals } from "./runtext.js";

/* Sets up the form on `root` (the runs page's <main>) from the page's judge
   config; returns {offer(run)}. */
export function judgeForm(root, config, onCreated) {
  const form = document.getElementById("judge-form");
  const none = { offer() {} };
  if (!form || !config) return none;
  const field = (id) => document.getElementById(id);
  const status = field("judge-form-status");

  function runLabel(run) {
    return "#" + run.id + " " + run.name + " (" + run.provider + "/" + run.model + (run.status === "done" ? "" : ", " + run.status) + ")";
  }
  function fillRuns(select, placeholder) {
    select.append(new Option(placeholder, ""));
    for (const run of config.runs) select.append(new Option(runLabel(run), String(run.id)));
  }
  fillRuns(field("judge-a"), config.runs.length ? "choose run A" : "no runs to judge yet");
  fillRuns(field("judge-b"), config.runs.length ? "choose run B" : "no runs to judge yet");
  if (config.runs.length >= 2) {
    // The two newest, the older as A: the usual "did the new one do better?".
    field("judge-a").value = String(config.runs[1].id);
    field("judge-b").value = String(config.runs[0].id);
  }


  const judgeSelect = field("judge-model");
  for (const provider of config.providers) {
    const group = document.createElement("optgroup");
    group.label = provider.label;
    for (const model of provider.models) {
      const option = el("option", model.name + (model.judge_only ? " (judge)" : provider.demo ? " (demo)" : ""));
      option.value = provider.name + "/" + model.name;
      group.append(option);
    }
    judgeSelect.append(group);
  }
  // A judge-only model first when there is one: it is what this form is for.
  const judgeOnly = config.providers.flatMap((p) => p.models.filter((m) => m.judge_only).map((m) => p.name + "/" + m.name));
  if (judgeOnly.length) judgeSelect.value = judgeOnly[0];

  for (const rubric of config.rubrics) field("judge-rubric").append(new Option(rubric.label, String(rubric.id)));

  function invalid(input, message) {
    input.setAttribute("aria-invalid", "true");
    status.classList.add("error");
    input.focus();
    setText(status, message);
    return null;
  }
  form.addEventListener("input", (event) => event.target.removeAttribute("aria-invalid"));

  function runName(id) {
    const run = config.runs.find((r) => String(r.id) === id);
    return run ? run.name : "#" + id;
  }

  function build() {
    const a = field("judge-a");
    const b = field("judge-b");
    if (!a.value) return invalid(a, "Choose run A.");
    if (!b.value) return invalid(b, "Choose run B.");
    if (a.value === b.value) return invalid(b, "Choose two different runs.");
    const [provider, ...rest] = judgeSelect.value.split("/");
    const model = rest.join("/");
    if (!provider || !model) return invalid(judgeSelect, "Choose the judge model.");
    const maxTokens = field("judge-max-tokens");
    if (maxTokens.validity.badInput) return invalid(maxTokens, "Max tokens must be a number.");
    const name = field("judge-name").value.trim() || model + ": " + runName(a.value) + " vs " + runName(b.value);
    const judge = { compare: [Number(a.value), Number(b.value)], swap: field("judge-swap").checked };
    if (field("judge-rubric").value) judge.rubric = Number(field("judge-rubric").value);
    const body = { name: name.slice(0, 200), kind: "judge", provider: provider, model: model, judge: judge };
    if (maxTokens.value.trim() !== "") body.params = { max_tokens: Number(maxTokens.value) };
    return body;
  }

  async function confirmCost(body, error) {
    const usd = num(error.estimated_cost_usd);
    const answer = await confirmDialog({
      title: "Launch “" + body.name + "”?",
      lines: ["Estimated " + money(usd) + " — above the confirmation threshold. Launch anyway?"],
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
    const link = el("a", "“" + run.name + "” (#" + run.id + ")");
    link.href = pageUrl("run", run.id);
    // Judge jobs follow the judged runs' outputs: more come only while a judged run is live.
    const judged = [field("judge-a").value, field("judge-b").value].map((id) => config.runs.find((r) => String(r.id) === id));
    const live = judged.some((r) => r && !r.ended);
    status.append("Launched judge run ", link, ": " + plural(totals(run).jobs, "judge job") +
      (live ? " so far; more follow as the runs' outputs arrive." : "."));
    onCreated(run);
  }

  async function submit(body) {
    const button = field("judge-submit");
    button.disabled = true;
    status.classList.remove("error");
    setText(status, "Launching…");
    const result = await api("POST", root.dataset.runsUrl, body);
    button.disabled = false;
    const error = result.data && result.data.error;
    if (result.status === 201 && result.data) return created(result.data);
    if (error && error.code === "confirm_cost") return confirmCost(body, error);
    status.classList.add("error");
    setText(status, "Not launched: " + errorText(result));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = build();
    if (body) submit(body);
  });

  return {
    // A run launched from the "New run" form (runs.js) can be judged at once.
    offer(run) {
      if (config.runs.some((r) => r.id === run.id)) return;
      config.runs.unshift(run);
      for (const select of [field("judge-a"), field("judge-b")]) select.insertBefore(new Option(runLabel(run), String(run.id)), select.options[1] || null);
    },
  };
}

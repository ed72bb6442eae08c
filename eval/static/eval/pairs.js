/* Blind pairs (/pairs/): two outputs of one prompt, left and right, from
   models the reviewer is not told. The page knows a pair only by the opaque
   token /api/pairs/next hands out; nothing it shows, stores in the DOM or
   asks the server names a task id, a job, a model or a provider before the
   verdict. After the verdict the answer reveals the models: the strip at the
   top keeps that reveal (and the undo) while the next pair is shown below.

   Keys: a / ArrowLeft left better, b / ArrowRight right better, t tie,
   x both bad, Enter save and next, s skip, u undo the last verdict,
   m raw text, r try again after an error. Text is inserted as text. */
import "./site.js";
import { api, errorText, urlFor } from "./api.js";
import { byId as $, setText, show, typingInField } from "./dom.js";
import { bindRawToggle, rawMode, setRawMode, showText } from "./markdown.js";

const root = document.getElementById("pairs");

const urls = {
  next: root.dataset.nextUrl,
  verdict: root.dataset.verdictUrl,
  skip: root.dataset.skipUrl,
  withdraw: root.dataset.withdrawUrl,
};
const source = root.dataset.source || "";
const VERDICT_TEXT = { left: "Left is better", right: "Right is better", tie: "Tie", both_bad: "Both bad" };
const KEY_VERDICT = { a: "left", arrowleft: "left", b: "right", arrowright: "right", t: "tie", x: "both_bad" };
const state = { pair: null, choice: null, busy: false, last: null, retry: null, saved: 0 };

/* --- rendering ------------------------------------------------------------------- */

function renderOutput(container, text) {
  container.scrollTop = 0;
  container.classList.toggle("empty-output", !text);
  showText(container, text || "(empty output)");
}

/* A conversation as its turns (role, then text); a one-prompt task as its prompt. */
function showPrompt(task) {
  const turns = task.messages || [];
  const list = $("pair-conversation");
  list.replaceChildren();
  for (const turn of turns) {
    const item = document.createElement("li");
    item.className = "turn turn-" + turn.role;
    const role = document.createElement("span");
    role.className = "turn-role";
    setText(role, turn.role.charAt(0).toUpperCase() + turn.role.slice(1));
    const text = document.createElement("div");
    text.className = "text-view";
    showText(text, turn.content);
    item.append(role, text);
    list.append(item);
  }
  setText($("pair-prompt-title"), turns.length ? "Conversation (the models answered the last turn)" : "Prompt");
  show(list, turns.length > 0);
  show($("pair-prompt"), turns.length === 0);
  if (!turns.length) showText($("pair-prompt"), task.prompt);
}

function showPair(data) {
  state.pair = data;
  state.retry = null;
  show($("pair-loading"), false);
  show($("pair-error"), false);
  show($("pairs-done"), false);
  setText($("pair-title"), data.task.title || "Untitled task");
  showPrompt(data.task);
  showText($("pair-reference"), data.task.reference || "");
  show($("pair-reference-box"), Boolean(data.task.reference));
  const guidelines = (data.rubric && data.rubric.guidelines) || "";
  setText($("guidelines-text"), guidelines);
  show($("guidelines"), Boolean(guidelines));
  renderOutput($("left-output"), data.left.output);
  renderOutput($("right-output"), data.right.output);
  buildQuestions((data.rubric && data.rubric.questions) || []);
  choose(null);
  setRemaining(data.remaining);
  show($("pair"), true);
  if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
  window.scrollTo(0, 0);
}

function setRemaining(n) {
  setText($("remaining-count"), String(n));
  $("remaining").title = n === 1 ? "This is the last pair for you" : n + " pairs for you, this one included";
  show($("remaining"), true);
}

function showDone() {
  state.pair = null;
  state.retry = null;
  choose(null);
  show($("pair-loading"), false);
  show($("pair-error"), false);
  show($("pair"), false);
  setText(
    $("done-count"),
    state.saved ? "You saved " + state.saved + " verdict" + (state.saved === 1 ? "" : "s") + " here. Thank you." : ""
  );
  show($("pairs-done"), true);
  setRemaining(0);
}

function showNotice(text) {
  setText($("pair-notice"), text || "");
  show($("pair-notice"), Boolean(text));
}

function showError(result, retry) {
  state.retry = retry || null;
  show($("pair-loading"), false);
  setText($("pair-error-text"), errorText(result));
  show($("login-link"), result.status === 401);
  show($("retry-button"), Boolean(retry));
  show($("pair-error"), true);
}

/* --- rubric questions (optional for a pair) ---------------------------------------- */

function field(question) {
  const name = "q-" + question.key;
  if (question.type === "rating") return ratingField(question, name);
  if (question.type === "text") {
    const area = document.createElement("textarea");
    area.name = name;
    area.rows = 2;
    return labelled(question.label, area);
  }
  const select = document.createElement("select");
  select.name = name;
  const options = question.type === "boolean" ? ["yes", "no"] : question.options || [];
  for (const value of ["", ...options]) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = value || "—";
    select.append(option);
  }
  return labelled(question.label, select);
}

function labelled(text, control) {
  const label = document.createElement("label");
  label.className = "question";
  label.append(text + " ", control);
  return label;
}

function ratingField(question, name) {
  const set = document.createElement("fieldset");
  set.className = "question rating";
  const legend = document.createElement("legend");
  legend.textContent = question.label;
  set.append(legend);
  const scale = question.scale || [1, 5];
  for (let value = scale[0]; value <= scale[1]; value++) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio";
    input.name = name;
    input.value = String(value);
    label.append(input, " " + value);
    set.append(label);
  }
  return set;
}

function buildQuestions(questions) {
  state.questions = questions;
  $("question-fields").replaceChildren(...questions.map(field));
  $("pair-notes").value = "";
  // A rubric with its own text question needs no second box for notes.
  show($("pair-notes-label"), !questions.some((q) => q.type === "text"));
  show($("questions"), true);
}

function answerOf(question, form) {
  const control = form.elements["q-" + question.key];
  if (!control) return undefined;
  const value = control.value;
  if (value === "" || value === undefined) return undefined;
  if (question.type === "rating") return Number(value);
  if (question.type === "boolean") return value === "yes";
  return value;
}

function collectAnswers() {
  const form = $("answers-form");
  const answers = {};
  for (const question of state.questions || []) {
    const value = answerOf(question, form);
    if (value !== undefined && !(question.type === "text" && !value.trim())) answers[question.key] = value;
  }
  return Object.keys(answers).length ? answers : null;
}

/* --- verdicts ------------------------------------------------------------------ */

function choose(verdict) {
  state.choice = verdict;
  for (const button of root.querySelectorAll("button.verdict")) {
    button.setAttribute("aria-pressed", String(button.value === verdict));
  }
  $("save-button").disabled = !verdict;
  $("verdict-bar").classList.toggle("chosen", Boolean(verdict));
  $("verdict-bar").classList.remove("nudge");
  setText(
    $("choice-status"),
    verdict ? VERDICT_TEXT[verdict] + ". Enter saves it and opens the next pair." : "Choose a verdict."
  );
}

function pairUrl(action) {
  return urlFor(urls[action], state.pair.pair);
}

async function save() {
  if (!state.pair || state.busy) return;
  if (!state.choice) {
    setText($("choice-status"), "Choose a verdict first: a or ←, b or →, t for a tie, x if both are bad.");
    $("verdict-bar").classList.add("nudge");
    return;
  }
  const pair = state.pair;
  const body = { verdict: state.choice };
  const answers = collectAnswers();
  const notes = $("pair-notes").value.trim();
  if (answers) body.answers = answers;
  if (notes) body.notes = notes;
  state.busy = true;
  setText($("choice-status"), "Saving…");
  const result = await api("POST", pairUrl("verdict"), body);
  state.busy = false;
  if (result.status === 201) {
    state.saved += 1;
    showReveal(result.data, pair, body.verdict);
    return loadNext("");
  }
  if (result.status === 410) {
    return loadNext("That pair had expired, so the verdict was not saved. Here is the next one.", {
      pair: pair,
      note: "That pair had expired, so the verdict was not saved: here it is again, under a new token.",
    });
  }
  if (result.status === 409) return loadNext("That pair already had your verdict (from another tab?). Here is the next one.");
  if (result.status === 404) return loadNext("That pair is no longer yours to judge. Here is the next one.");
  choose(state.choice);
  showError(result, save);
}

function modelName(side) {
  return side.model + (side.model.indexOf(side.provider) === 0 ? "" : " (" + side.provider + ")");
}

function showReveal(judgement, pair, verdict) {
  const revealed = judgement.revealed || {};
  const left = revealed.left ? modelName(revealed.left) : "?";
  const right = revealed.right ? modelName(revealed.right) : "?";
  state.last = { id: judgement.id, title: pair.task.title || "Untitled task" };
  const blind = judgement.blind ? "" : " Not blind: you had seen the model of one of these outputs before.";
  setText(
    $("reveal-verdict"),
    "Saved for the previous pair, “" + state.last.title + "”: " + VERDICT_TEXT[verdict].toLowerCase() + "." + blind
  );
  setText($("reveal-models"), "Left was " + left + ", right was " + right + ".");
  show($("undo-button"), true);
  const strip = $("reveal");
  strip.classList.remove("withdrawn", "fresh");
  void strip.offsetWidth; // restart the highlight
  strip.classList.add("fresh");
  show(strip, true);
}

/* The next pair; ``again`` ({pair, note}) words the note when the server
   hands back the same pair (the only one left). */
async function loadNext(note, again) {
  state.busy = true;
  const url = urls.next + (source ? "?source=" + encodeURIComponent(source) : "");
  const result = await api("GET", url);
  state.busy = false;
  if (result.status === 204) {
    showNotice(note);
    return showDone();
  }
  if (!result.ok || !result.data) {
    return showError(result, function () {
      return loadNext(note, again);
    });
  }
  if (again && samePair(again.pair, result.data)) note = again.note;
  showNotice(note);
  showPair(result.data);
}

function samePair(a, b) {
  const outputs = function (p) {
    return [p.left.output, p.right.output].sort().join("\u0000");
  };
  return (
    a.task.prompt === b.task.prompt &&
    JSON.stringify(a.task.messages || null) === JSON.stringify(b.task.messages || null) &&
    outputs(a) === outputs(b)
  );
}

async function skip() {
  if (!state.pair || state.busy) return;
  const pair = state.pair;
  state.busy = true;
  const result = await api("POST", pairUrl("skip"));
  state.busy = false;
  if (result.status === 204) {
    return loadNext("Skipped. That pair comes back after the others.", {
      pair: pair,
      note: "Skipped, but it is the only pair left for you, so here it is again.",
    });
  }
  if (result.status === 410) return loadNext("That pair had expired. Here is the next one.");
  if (result.status === 409 || result.status === 404) return loadNext("");
  showError(result, skip);
}

async function undo() {
  if (!state.last || state.busy) return;
  const last = state.last;
  state.busy = true;
  const result = await api("DELETE", urlFor(urls.withdraw, last.id));
  state.busy = false;
  if (!result.ok && result.status !== 409) return showError(result, undo);
  state.last = null;
  show($("undo-button"), false);
  const strip = $("reveal");
  strip.classList.remove("fresh");
  strip.classList.add("withdrawn");
  if (result.status === 409) {
    setText($("reveal-verdict"), "Too late to undo your verdict on “" + last.title + "”: the undo window has passed.");
    return;
  }
  /* The pair does not come back: its models were revealed, so a new verdict
     on it could not be blind (judge it on its task's review page instead). */
  setText(
    $("reveal-verdict"),
    "Undone: your verdict on “" + last.title + "” is withdrawn. Its models were revealed to you, so that pair " +
      "will not come back here blind."
  );
}

/* --- keys and buttons ------------------------------------------------------------ */

function fieldKey(event) {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    save();
  } else if (event.key === "Escape") {
    event.target.blur();
  }
}

function nativeEnter(target) {
  if (!target || !target.tagName) return false;
  if (target.tagName === "BUTTON") return !target.classList.contains("verdict");
  return ["A", "SUMMARY", "LABEL"].includes(target.tagName);
}

function letterKey(key) {
  if (KEY_VERDICT[key] && state.pair) return choose(KEY_VERDICT[key]);
  if (key === "s") return skip();
  if (key === "u") return undo();
  if (key === "m" && state.pair) return setRawMode(!rawMode());
  if (key === "r" && state.retry && !$("pair-error").hidden) return state.retry();
  return false;
}

/* A radio button or a checkbox takes no letters: the keys still work there
   (its arrows stay its own). */
function choiceInput(target) {
  return target.tagName === "INPUT" && ["radio", "checkbox"].includes(target.type);
}

function onKey(event) {
  if (event.defaultPrevented || event.altKey) return;
  const choice = choiceInput(event.target);
  if (choice && event.key.startsWith("Arrow")) return;
  if (typingInField(event) && !choice) return fieldKey(event);
  if (event.ctrlKey || event.metaKey) return;
  if (event.key === "Enter") {
    if (nativeEnter(event.target)) return;
    event.preventDefault();
    if (!state.busy) save();
    return;
  }
  if (state.busy) return;
  const key = event.key.toLowerCase();
  if (!(key in KEY_VERDICT) && !["s", "u", "m", "r"].includes(key)) return;
  event.preventDefault();
  letterKey(key);
}

document.addEventListener("DOMContentLoaded", function () {
  document.addEventListener("keydown", onKey);
  for (const button of root.querySelectorAll("button.verdict")) {
    button.addEventListener("click", function () {
      choose(button.value);
    });
  }
  $("save-button").addEventListener("click", save);
  $("skip-button").addEventListener("click", skip);
  $("undo-button").addEventListener("click", undo);
  $("check-again").addEventListener("click", function () {
    loadNext("");
  });
  $("retry-button").addEventListener("click", function () {
    if (state.retry) state.retry();
  });
  bindRawToggle($("raw-toggle"));
  loadNext("");
});

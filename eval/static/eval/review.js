/* The review page, wired together: job cards kept live by the poll (cards.js),
   launching (launch.js), scores per output (scores.js), the overall review
   (reviewform.js), drafts and the leave guard (drafts.js), selection and
   scroll lock (panes.js), the judgement list, the diff, and the keyboard.
   Every API URL comes from the page (data-*-url, "__id__" for a job's id). */
import "./site.js";
import { api, errorText, urlFor } from "./api.js";
import { JobCards } from "./cards.js";
import { dialogOpen } from "./dialog.js";
import { byId as $, copyText, say as sayIn, setText, typingInField } from "./dom.js";
import { DraftKeeper, LeaveGuard } from "./drafts.js";
import { time } from "./format.js";
import { JobLists } from "./joblists.js";
import { Launcher } from "./launch.js";
import { bindRawToggle, rawMode, setRawMode, upgradeText } from "./markdown.js";
import { ScrollLock, Selection } from "./panes.js";
import { Poller } from "./poller.js";
import { ReviewForm } from "./reviewform.js";
import { Scores } from "./scores.js";

const root = document.getElementById("review");
const data = root.dataset;
const rubric = JSON.parse(document.getElementById("rubric-data").textContent);
const preferred = $("preferred-job");

upgradeText(document);
bindRawToggle($("raw-toggle"));
setText($("primary-question"), (rubric.questions.find((q) => q.type === "rating") || { label: "–" }).label);

// --- the parts --------------------------------------------------------------------------
const cards = new JobCards({
  container: $("jobs"),
  template: $("job-card-template"),
  jobUrl: data.jobUrl,
  noJobs: $("no-jobs"),
  hiddenLine: $("hidden-jobs"),
  hiddenText: $("hidden-jobs-text"),
  hiddenToggle: $("hidden-jobs-toggle"),
  onCreate: (card) => scores.build(card),
  onUpdate: (card) => scores.paint(card),
  onAction: (card, action) => cardAction(card, action),
});
const selection = new Selection(cards);
selection.follow($("jobs"));
const scrollLock = new ScrollLock($("jobs"), $("scroll-lock"));
const scores = new Scores({
  rubric: rubric,
  url: data.judgementsUrl,
  withdrawUrl: data.withdrawUrl,
  username: data.username,
  undoSeconds: data.undoSeconds,
  cards: cards,
  onDirty: () => unsavedChanged(),
  onSaved: () => renderJudgements(),
});
const form = new ReviewForm({
  form: $("review-form"),
  url: data.reviewUrl,
  status: $("review-status"),
  preferred: preferred,
  savedAt: data.reviewUpdated,
  onChange: () => unsavedChanged(),
});
const lists = new JobLists({
  cards: cards,
  preferred: preferred,
  diffA: $("diff-a"),
  diffB: $("diff-b"),
  diffButton: $("diff-button"),
  diffOut: $("diff-output"),
  list: $("judgement-list"),
  empty: $("judgements-empty"),
  rubric: rubric,
  username: data.username,
  onOptions: () => form.optionsChanged(),
});
const drafts = new DraftKeeper({
  url: data.draftUrl,
  collect: collectDraft,
  onState: () => paintStatus(),
});
const guard = new LeaveGuard({
  hasUnsaved: hasUnsaved,
  describe: () => (form.isDirty() ? ["your review of the task"] : []).concat(scores.describeUnsaved()),
  saveAll: saveAll,
  drafts: drafts,
});
const launcher = new Launcher({
  buttons: Array.from(document.querySelectorAll(".run-button")),
  maxTokens: $("run-max-tokens"),
  temperature: $("run-temperature"),
  template: $("run-template"),
  status: $("run-status"),
  url: data.pollUrl,
  estimateUrl: data.estimateUrl,
  onJob: (job) => {
    const card = cards.upsert(job);
    afterJobs();
    flash(card);
    poller.kick();
  },
});
const poller = new Poller({
  url: data.pollUrl,
  interval: Number(data.pollInterval) || 2000,
  notice: $("poll-notice"),
  owner: root,
  onData: (answer) => {
    // An LLM judge's jobs are not outputs to compare: their verdicts are in the judgements list.
    cards.apply(answer.jobs.filter((job) => job.kind !== "judge"));
    afterJobs();
    return !answer.all_terminal;
  },
});

// --- unsaved work and drafts ------------------------------------------------------------
function hasUnsaved() {
  return form.isDirty() || Object.keys(scores.unsaved()).length > 0;
}

function collectDraft() {
  if (!hasUnsaved()) return null;
  const draft = { v: 1, scores: scores.unsaved() };
  if (form.isDirty()) draft.review = form.values();
  return draft;
}

function paintStatus() {
  form.paint({
    otherUnsaved: Object.keys(scores.unsaved()).length > 0,
    updatedAt: drafts.written ? drafts.updatedAt : null,
    error: drafts.failed ? drafts.error || "the server did not answer" : "",
  });
}

function unsavedChanged() {
  paintStatus();
  drafts.changed();
}

function restoreDraft(draft) {
  const restored = [];
  const body = draft.data || {};
  const reviewedAt = data.reviewUpdated ? Date.parse(data.reviewUpdated) : 0;
  // Never over what the reviewer has typed since the page opened.
  if (body.review && !form.isDirty() && Date.parse(draft.updated_at) > reviewedAt) {
    form.apply(body.review);
    restored.push("your review of the task");
  }
  const count = scores.restore(body.scores, draft.updated_at);
  if (count) restored.push(count + " score" + (count === 1 ? "" : "s"));
  if (!restored.length) return;
  setText($("draft-note-text"), "Restored your unsaved draft from " + time(draft.updated_at) + " (" + restored.join(", ") + "). It is not saved yet —");
  $("draft-note").hidden = false;
  paintStatus();
}

async function discardDraft() {
  form.reset();
  scores.discardUnsaved();
  $("draft-note").hidden = true;
  await drafts.discard();
  paintStatus();
}

// --- saving -----------------------------------------------------------------------------
/* `s`: every unsaved score, then the review. True when all of it is saved. */
async function saveAll() {
  const scored = await scores.saveAll();
  const reviewed = await form.save();
  $("draft-note").hidden = true;
  await drafts.flush(); // deletes the draft, or keeps what could not be saved
  paintStatus();
  return scored && reviewed;
}

async function saveAndNext() {
  const ok = await saveAll();
  if (!ok) return;
  if (data.nextToReviewUrl) guard.go(data.nextToReviewUrl);
  else setText($("review-status"), "Saved. No other task is waiting for your review.");
}

// --- cards: actions, labels in selects and lists -------------------------------------------
async function cardAction(card, action) {
  const status = card.part(".job-action-status");
  const id = card.job.id;
  if (action === "copy") {
    await copyText(card.full);
    setText(status, "Copied.");
    setTimeout(() => setText(status, ""), 1500);
    return;
  }
  const urls = { cancel: data.cancelUrl, retry: data.retryUrl, hide: card.job.hidden ? data.unhideUrl : data.hideUrl };
  const busy = { cancel: "Cancelling…", retry: "Retrying…", hide: card.job.hidden ? "Unhiding…" : "Hiding…" };
  setText(status, busy[action]);
  const result = await api("POST", urlFor(urls[action], id));
  if (!result.ok || !result.data) {
    setText(status, errorText(result));
    return;
  }
  const changed = cards.upsert(result.data);
  setText(status, action === "retry" ? "Retried as " + cards.ref(result.data.id) + "." : "");
  if (action === "retry") flash(changed);
  if (action === "hide" && result.data.hidden && selection.current() === null) selection.clear();
  afterJobs();
  poller.kick();
}

function flash(card) {
  card.el.classList.add("new");
  card.el.scrollIntoView({ block: "nearest" });
  setTimeout(() => card.el.classList.remove("new"), 2000);
}

function afterJobs() {
  lists.refresh();
}

function renderJudgements() {
  lists.renderJudgements(scores.judgements);
}

// --- keyboard ---------------------------------------------------------------------------
const say = (text) => sayIn($("key-status"), text);

function digitKey(digit) {
  const card = selection.current();
  if (card) say(scores.keyScore(card, digit));
  else if (digit >= 1 && digit <= 5) {
    form.rate(digit);
    say("Overall rating " + digit + " (not saved yet: s saves)");
  }
}

function selectStep(delta) {
  const card = delta > 0 ? selection.next() : selection.previous();
  say(card ? "Output " + cards.label(card.job.id) + " selected: 1–5 score it, Esc clears" : "No outputs yet: r runs a model");
}

function selected(action) {
  const card = selection.current();
  if (card) return action(card);
  say("Select an output first (j / k)");
  return null;
}

const KEYS = {
  r: (event) => launcher.onKey(event),
  j: () => selectStep(1),
  k: () => selectStep(-1),
  s: () => saveAll(),
  S: () => saveAndNext(),
  n: () => (data.nextUrl ? guard.navigate(data.nextUrl, "the next task") : say("This is the last task")),
  p: () => (data.prevUrl ? guard.navigate(data.prevUrl, "the previous task") : say("This is the first task")),
  u: async () => say(await scores.undo(selection.current())),
  m: () => setRawMode(!rawMode()),
  l: () => {
    scrollLock.toggle();
    say(scrollLock.checkbox.checked ? "Outputs scroll together" : "Outputs scroll on their own");
  },
  e: () => selected((card) => cards.toggleExpand(card)),
};

function onKey(event) {
  if (dialogOpen()) return;
  if (typingInField(event)) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key;
  if (key === "Escape") {
    if (!selection.clear()) return;
    say("No output selected: 1–5 rate the whole task");
  } else if (/^[1-9]$/.test(key)) {
    if (event.repeat) return;
    digitKey(Number(key));
  } else if (KEYS[key]) {
    KEYS[key](event);
  } else {
    return;
  }
  event.preventDefault();
}

// --- wiring -----------------------------------------------------------------------------
$("review-form").addEventListener("submit", (event) => {
  event.preventDefault();
  saveAll();
});
$("review-save-next").addEventListener("click", saveAndNext);
$("draft-discard").addEventListener("click", discardDraft);
$("draft-keep").addEventListener("click", () => ($("draft-note").hidden = true));
for (const link of document.querySelectorAll("a.guarded")) {
  link.addEventListener("click", (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    guard.navigate(link.href, link.dataset.where || "there");
  });
}
document.addEventListener("keydown", onKey);
document.addEventListener("eval:textmode", () => cards.refreshText());

/* Judgements and the draft first, so each card is built with its saved
   score and any restored answers; then the poll. A slow answer does not
   hold the cards back for long: both also apply to cards already built. */
let polling = false;
const startPolling = () => {
  if (!polling) poller.start();
  polling = true;
};
const fallback = setTimeout(startPolling, 2000);
Promise.all([drafts.load(), scores.load()]).then(([draft]) => {
  if (draft && draft.data) restoreDraft(draft);
  renderJudgements();
  clearTimeout(fallback);
  startPolling();
});

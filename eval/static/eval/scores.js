/* A score per output under the task's rubric (issue 10): each card has a
   score panel with the rubric's questions; the first rating question is the
   one 1-5 answer from the keyboard. A save is a `score` judgement (POST
   /api/tasks/<id>/judgements); a new one supersedes the reviewer's earlier
   one, and it can be withdrawn (DELETE /api/judgements/<id>) within the undo
   window. Unsaved answers are reported to the draft (collect/restore).

   new Scores({rubric, url, withdrawUrl, username, undoSeconds, cards, onDirty})
   Rendering of the judgement list lives in review.js (it names jobs). */
import { api, errorField, errorText, urlFor } from "./api.js";
import { setText } from "./dom.js";
import { time } from "./format.js";
import * as rubricForm from "./rubricform.js";

const UNDO_MARGIN_MS = 2000; // stop offering undo a little before the server refuses it

/* Key order is not kept by every database (PostgreSQL jsonb sorts keys). */
function canonical(answers) {
  const out = {};
  for (const key of Object.keys(answers || {}).sort()) out[key] = answers[key];
  return JSON.stringify(out);
}

function sameAnswers(a, b) {
  return canonical(a) === canonical(b);
}

export class Scores {
  constructor(options) {
    this.questions = options.rubric.questions || [];
    this.primary = this.questions.find((q) => q.type === "rating") || null;
    this.url = options.url;
    this.withdrawUrl = options.withdrawUrl; // DELETE /api/judgements/__id__
    this.username = options.username;
    this.undoMs = (Number(options.undoSeconds) || 300) * 1000;
    this.cards = options.cards;
    this.onDirty = options.onDirty || function () {};
    this.onSaved = options.onSaved || function () {};
    this.judgements = [];
    this.saved = new Map(); // job id -> my current score judgement
    this.pending = new Map(); // job id -> answers restored from a draft, for a card not built yet
    this.undoUntil = new Map(); // judgement id -> ms since epoch
    this.state = new Map(); // job id -> {saving, error}
    this.lastMade = null;
    this.ticker = null;
  }

  // --- data ---------------------------------------------------------------------------
  async load() {
    const result = await api("GET", this.url);
    if (!result.ok || !result.data) return false;
    this.judgements = result.data.judgements || [];
    this.saved = new Map();
    for (const j of this.judgements) {
      if (j.kind !== "score" || j.withdrawn || j.reviewer !== this.username || j.judge_job) continue;
      const previous = this.saved.get(j.jobs[0]);
      if (!previous || Date.parse(previous.created_at) < Date.parse(j.created_at)) this.saved.set(j.jobs[0], j);
      if (!this.undoUntil.has(j.id)) this.undoUntil.set(j.id, Date.parse(j.created_at) + this.undoMs - UNDO_MARGIN_MS);
    }
    for (const card of this.cards.all()) {
      if (card.scoreBuilt && !this.isDirty(card)) this.write(card, this.savedAnswers(card));
      this.paint(card);
    }
    return true;
  }

  savedAnswers(card) {
    const saved = this.saved.get(card.job.id);
    return saved ? saved.answers : {};
  }

  // --- the panel ------------------------------------------------------------------------
  build(card) {
    const panel = card.part(".job-score");
    const head = document.createElement("p");
    head.className = "score-head";
    const title = document.createElement("strong");
    title.textContent = "Your score";
    const state = document.createElement("span");
    state.className = "score-state";
    state.setAttribute("role", "status");
    head.append(title, " ", state);
    panel.appendChild(head);
    rubricForm.build(panel, this.questions, { scope: card.job.id, primary: this.primary });
    const actions = document.createElement("p");
    actions.className = "score-actions";
    const save = document.createElement("button");
    save.type = "button";
    save.className = "score-save";
    save.textContent = "Save score";
    save.addEventListener("click", () => this.save(card));
    const undo = document.createElement("button");
    undo.type = "button";
    undo.className = "score-undo";
    undo.hidden = true;
    undo.addEventListener("click", () => this.undo(card));
    actions.append(save, " ", undo);
    panel.appendChild(actions);
    panel.addEventListener("input", () => this.edited(card));
    panel.addEventListener("change", () => this.edited(card));
    card.scoreBuilt = true;
    this.write(card, this.savedAnswers(card));
    const restored = this.pending.get(card.job.id);
    if (restored) {
      this.pending.delete(card.job.id);
      this.write(card, restored);
    }
    this.paint(card);
  }

  read(card) {
    return rubricForm.read(card.part(".job-score"), this.questions);
  }

  write(card, answers) {
    if (card.scoreBuilt) rubricForm.write(card.part(".job-score"), this.questions, answers);
  }

  isDirty(card) {
    return Boolean(card.scoreBuilt) && !sameAnswers(this.read(card), this.savedAnswers(card));
  }

  edited(card) {
    this.state.delete(card.job.id);
    this.paint(card);
    this.onDirty();
  }

  /* Why this output cannot be scored now, or "". */
  blocked(card) {
    const job = card.job;
    if (job.hidden) return "Hidden outputs are not scored: unhide it first.";
    if (job.status === "succeeded") return "";
    if (job.terminal) return "Only a finished answer can be scored; this job " + job.status + "."; // ended, not succeeded
    return "You can score it once it has finished.";
  }

  paint(card) {
    if (!card.scoreBuilt) return;
    const panel = card.part(".job-score");
    const blocked = this.blocked(card);
    for (const input of panel.querySelectorAll("input, select, textarea")) input.disabled = Boolean(blocked);
    const saved = this.saved.get(card.job.id);
    const dirty = this.isDirty(card);
    const state = this.state.get(card.job.id) || {};
    let text;
    if (blocked) text = blocked;
    else if (state.saving) text = "Saving…";
    else if (state.error) text = "Not saved: " + state.error;
    else if (dirty) text = "Unsaved";
    else if (saved) text = "Saved " + time(saved.created_at) + (saved.stale ? " (for an earlier prompt: re-score it)" : "");
    else text = "Not scored yet";
    const stateEl = panel.querySelector(".score-state");
    setText(stateEl, text);
    stateEl.className = "score-state" + (state.error ? " error" : dirty ? " unsaved" : saved ? " saved" : "");
    panel.classList.toggle("is-saved", Boolean(saved) && !dirty);
    panel.classList.toggle("is-dirty", dirty);
    const save = panel.querySelector(".score-save");
    save.disabled = Boolean(blocked) || !dirty || Boolean(state.saving);
    this.paintUndo(card);
  }

  paintUndo(card) {
    const undo = card.part(".score-undo");
    if (!undo) return;
    const saved = this.saved.get(card.job.id);
    const left = saved ? (this.undoUntil.get(saved.id) || 0) - Date.now() : 0;
    undo.hidden = !(left > 0);
    if (left > 0) {
      const seconds = Math.ceil(left / 1000);
      setText(undo, "Undo (" + Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0") + " left) · u");
      this.tick();
    }
  }

  tick() {
    if (this.ticker !== null) return;
    this.ticker = setInterval(() => {
      let any = false;
      for (const card of this.cards.all()) {
        this.paintUndo(card);
        any = any || !card.part(".score-undo").hidden;
      }
      if (!any) {
        clearInterval(this.ticker);
        this.ticker = null;
      }
    }, 1000);
  }

  // --- keyboard -------------------------------------------------------------------------
  /* A digit on the selected card: answer the first rating question and
     save at once when nothing else required is missing. */
  keyScore(card, digit) {
    if (!this.primary) return "This rubric has no rating question.";
    const [low, high] = this.primary.scale || [1, 5];
    if (digit < low || digit > high) return "Scores run from " + low + " to " + high + ".";
    const blocked = this.blocked(card);
    if (blocked) {
      this.state.set(card.job.id, { error: blocked });
      this.paint(card);
      return blocked;
    }
    const answers = Object.assign(this.read(card), { [this.primary.key]: digit });
    this.write(card, answers);
    this.edited(card);
    const missing = this.questions.find((q) => q.required && (answers[q.key] === undefined || answers[q.key] === ""));
    if (missing) {
      this.state.set(card.job.id, { error: "answer “" + missing.label + "” too, then Save score" });
      this.paint(card);
      return "";
    }
    this.save(card);
    return "";
  }

  // --- saving and undo ----------------------------------------------------------------
  async save(card) {
    if (!this.isDirty(card) || this.blocked(card)) return !this.blocked(card);
    const id = card.job.id;
    this.state.set(id, { saving: true });
    this.paint(card);
    const result = await api("POST", this.url, { kind: "score", jobs: [id], answers: this.read(card) });
    if (result.ok && result.data) {
      this.state.delete(id);
      this.saved.set(id, result.data);
      this.judgements = this.judgements.filter((j) => !(j.kind === "score" && j.reviewer === this.username && j.jobs[0] === id));
      this.judgements.push(result.data);
      this.undoUntil.set(result.data.id, Date.now() + this.undoMs - UNDO_MARGIN_MS);
      this.lastMade = id;
      this.paint(card);
      this.onSaved();
      this.onDirty();
      return true;
    }
    this.state.set(id, { error: errorText(result) });
    const field = errorField(result);
    const wrap = field.startsWith("answers.") ? rubricForm.field(card.part(".job-score"), field.slice(8)) : null;
    if (wrap) wrap.classList.add("invalid");
    this.paint(card);
    return false;
  }

  async saveAll() {
    let ok = true;
    for (const card of this.cards.all()) {
      if (this.isDirty(card)) ok = (await this.save(card)) && ok;
    }
    return ok;
  }

  /* Withdraw my score of `card` (or the last one made here). */
  async undo(card) {
    card = card || (this.lastMade ? this.cards.get(this.lastMade) : null);
    const saved = card ? this.saved.get(card.job.id) : null;
    if (!saved || !((this.undoUntil.get(saved.id) || 0) > Date.now())) return "Nothing to undo here.";
    const id = card.job.id;
    this.state.set(id, { saving: true });
    this.paint(card);
    const result = await api("DELETE", urlFor(this.withdrawUrl, saved.id));
    this.state.delete(id);
    if (!result.ok) {
      this.state.set(id, { error: errorText(result) });
      this.paint(card);
      return errorText(result);
    }
    this.undoUntil.delete(saved.id);
    this.saved.delete(id);
    await this.load(); // the score it superseded (if any) counts again
    this.write(card, this.savedAnswers(card));
    this.paint(card);
    this.onSaved();
    this.onDirty();
    return "Withdrew your score of " + this.cards.label(id) + ".";
  }

  // --- drafts ---------------------------------------------------------------------------
  unsaved() {
    const out = {};
    for (const card of this.cards.all()) {
      if (this.isDirty(card)) out[card.job.id] = this.read(card);
    }
    for (const [id, answers] of this.pending) {
      if (!(id in out)) out[id] = answers;
    }
    return out;
  }

  describeUnsaved() {
    return Object.keys(this.unsaved()).map((id) => this.cards.label(id) + "’s score");
  }

  /* Answers from a draft saved at `updatedAt`: kept unless a later score was saved. */
  restore(scores, updatedAt) {
    let restored = 0;
    for (const [id, answers] of Object.entries(scores || {})) {
      const saved = this.saved.get(id);
      if (saved && Date.parse(saved.created_at) >= Date.parse(updatedAt)) continue;
      restored += 1;
      const card = this.cards.get(id);
      if (card && card.scoreBuilt) {
        this.write(card, answers);
        this.paint(card);
      } else {
        this.pending.set(id, answers);
      }
    }
    return restored;
  }

  discardUnsaved() {
    this.pending.clear();
    for (const card of this.cards.all()) {
      this.state.delete(card.job.id);
      this.write(card, this.savedAnswers(card));
      this.paint(card);
    }
  }
}

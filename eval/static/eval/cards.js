/* Job cards on the review page, one per job, kept live by the poll.

   Each output is labelled A, B, C... by creation order (the poll's order,
   which never changes) and named "A · model · 3f2a1b9c" (its short id)
   wherever the page refers to it. A card is created once and then only its
   changed fields are touched, so scroll, focus, selection and form input
   survive every poll. Output is shown through markdown.js (sanitised
   Markdown or raw text, never live HTML).

   new JobCards({container, template, jobUrl, noJobs, hiddenLine, hiddenText,
                 hiddenToggle, onCreate(card), onUpdate(card), onAction(card, action)})
   (jobUrl: GET /api/jobs/__id__ as the page rendered it)
   apply(jobs) from a poll; upsert(job) from an action's answer. */
import { api, urlFor } from "./api.js";
import { messageItems, setText } from "./dom.js";
import { jobDuration, money, paramsText, setTime, shortId, stopText, tokens } from "./format.js";
import { showText } from "./markdown.js";

const FOLLOW_SLACK_PX = 8;

/* A, B, ... Z, AA: an output's label by its place. */
export function letters(index) {
  let name = "";
  let n = index + 1;
  while (n > 0) {
    const rest = (n - 1) % 26;
    name = String.fromCharCode(65 + rest) + name;
    n = Math.floor((n - 1) / 26);
  }
  return name;
}

/* Cut off at max tokens: the status stays "succeeded" (DESIGN), the stop
   reason says why it ended. */
export function cutOff(job) {
  return job.status === "succeeded" && stopText(job.stop_reason) === "max tokens";
}

export class JobCards {
  constructor(options) {
    this.jobUrl = options.jobUrl;
    this.container = options.container;
    this.template = options.template;
    this.noJobs = options.noJobs;
    this.hiddenLine = options.hiddenLine;
    this.hiddenText = options.hiddenText;
    this.hiddenToggle = options.hiddenToggle;
    this.onCreate = options.onCreate || function () {};
    this.onUpdate = options.onUpdate || function () {};
    this.onAction = options.onAction || function () {};
    this.cards = new Map(); // job id -> card
    this.order = []; // job ids, creation order
    this.hiddenToggle.addEventListener("click", () => this.toggleHidden());
  }

  get(id) {
    return this.cards.get(id);
  }

  label(id) {
    const index = this.order.indexOf(id);
    return index < 0 ? "?" : letters(index);
  }

  /* How the page names a job everywhere: "A · echo · 3f2a1b9c". */
  ref(id) {
    const card = this.cards.get(id);
    const model = card ? card.job.model + " · " : "";
    return this.label(id) + " · " + model + shortId(id);
  }

  all() {
    return this.order.map((id) => this.cards.get(id)).filter(Boolean);
  }

  /* The cards a reviewer can see now (hidden ones only while shown). */
  visible() {
    return this.all().filter((card) => !card.job.hidden || this.showingHidden());
  }

  showingHidden() {
    return this.container.classList.contains("show-hidden");
  }

  toggleHidden() {
    this.container.classList.toggle("show-hidden");
    this.paintHiddenLine();
    for (const card of this.all()) this.paintExpander(card); // sizes are known once shown
  }

  apply(jobs) {
    const seen = new Set();
    let previous = null;
    for (const job of jobs) {
      const card = this.place(job, previous);
      previous = card.el;
      seen.add(job.id);
    }
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) {
        card.el.remove();
        this.cards.delete(id);
      }
    }
    this.order = jobs.map((job) => job.id);
    this.afterChange();
  }

  upsert(job) {
    const card = this.place(job, undefined);
    this.afterChange();
    return card;
  }

  place(job, previousEl) {
    let card = this.cards.get(job.id);
    if (!card) {
      card = this.create(job);
      if (previousEl === undefined) {
        this.container.appendChild(card.el);
        if (!this.order.includes(job.id)) this.order.push(job.id);
      } else if (previousEl) {
        previousEl.after(card.el);
      } else {
        this.container.prepend(card.el);
      }
    }
    this.update(card, job);
    return card;
  }

  afterChange() {
    for (const card of this.all()) this.paintLabel(card);
    this.noJobs.hidden = this.cards.size > 0;
    this.paintHiddenLine();
  }

  paintHiddenLine() {
    const hidden = this.all().filter((card) => card.job.hidden).length;
    this.hiddenLine.hidden = hidden === 0;
    const showing = this.showingHidden();
    setText(this.hiddenText, hidden + " hidden output" + (hidden === 1 ? "" : "s") + (showing ? " (shown, dimmed) —" : " —"));
    setText(this.hiddenToggle, showing ? "hide them again" : "show");
    this.hiddenToggle.setAttribute("aria-expanded", showing ? "true" : "false");
  }

  paintLabel(card) {
    const label = this.label(card.job.id);
    if (card.el.dataset.label !== label) {
      card.el.dataset.label = label;
      setText(card.part(".job-label"), label);
      card.el.setAttribute("aria-label", "Output " + label + ", " + card.job.model);
      // One "Your score" region per card: each named for its output (axe: landmark-unique).
      const score = card.part(".job-score");
      if (score) score.setAttribute("aria-label", "Your score for output " + label);
    }
    const retryOf = card.part(".job-retry-of");
    retryOf.hidden = !card.job.retry_of;
    if (card.job.retry_of) setText(retryOf, "retry of " + this.ref(card.job.retry_of));
  }

  create(job) {
    const el = this.template.content.firstElementChild.cloneNode(true);
    el.id = "job-" + job.id;
    el.dataset.jobId = job.id;
    const card = {
      el: el,
      key: null,
      job: job,
      full: "",
      fetching: false,
      rendered: false,
      part: (selector) => el.querySelector(selector),
    };
    card.output = card.part(".job-output");
    for (const action of ["cancel", "retry", "copy", "hide"]) {
      card.part(".job-" + action).addEventListener("click", () => this.onAction(card, action));
    }
    card.part(".job-expand").addEventListener("click", () => this.toggleExpand(card));
    this.cards.set(job.id, card);
    this.onCreate(card);
    return card;
  }

  update(card, job) {
    const key = JSON.stringify(job);
    if (card.key === key) return;
    card.key = key;
    card.job = job;
    this.paintStatus(card, job);
    this.paintFacts(card, job);
    this.paintOutput(card, job);
    this.onUpdate(card);
  }

  paintStatus(card, job) {
    const el = card.el;
    const status = job.status;
    el.dataset.status = status;
    el.classList.toggle("is-hidden", Boolean(job.hidden));
    el.classList.toggle("is-cut-off", cutOff(job));
    for (const name of Array.from(el.classList)) {
      if (name.startsWith("status-") && name !== "status-" + status) el.classList.remove(name);
    }
    el.classList.add("status-" + status);
    const model = card.part(".job-model");
    setText(model, job.provider + " / " + job.model);
    model.title = model.textContent;
    const badge = card.part(".job-status");
    setText(badge, status + (job.cancel_requested && status === "running" ? " (cancelling)" : ""));
    badge.className = "badge job-status badge-" + status;
    const bar = card.part(".job-progress");
    if (Number(bar.value) !== job.progress) bar.value = job.progress;
    card.part(".job-progress-row").hidden = status === "succeeded";
    setText(card.part(".job-percent"), job.progress + "%");
    setText(card.part(".job-message"), job.message);
    const error = card.part(".job-error");
    const errorText = job.error ? job.error.message + " (" + job.error.code + ")" : "";
    setText(error, errorText);
    error.hidden = !errorText || status === "succeeded";
    card.part(".job-cancel").hidden = !job.can_cancel;
    card.part(".job-retry").hidden = !job.can_retry;
    const hide = card.part(".job-hide");
    hide.hidden = job.can_hide === false;
    setText(hide, job.hidden ? "Unhide" : "Hide");
  }

  paintFacts(card, job) {
    setText(card.part(".job-short-id"), shortId(job.id));
    card.part(".job-short-id").title = "Job " + job.id;
    setText(card.part(".job-params"), paramsText(job.params));
    this.paintSent(card, job);
    const cut = card.part(".job-cutoff");
    cut.hidden = !cutOff(job);
    const limit = (job.params && job.params.max_tokens) || (job.usage && job.usage.output_tokens);
    setText(cut, "Cut off at max tokens" + (limit ? " (" + limit + ")" : ""));
    card.part(".job-old-prompt").hidden = job.from_current_prompt !== false;
    card.part(".job-hidden-flag").hidden = !job.hidden;
    setText(card.part(".job-tokens"), tokens(job.usage));
    setText(card.part(".job-cost"), money(job.cost_usd));
    setText(card.part(".job-duration"), jobDuration(job));
    const stop = card.part(".job-stop");
    setText(stop, stopText(job.stop_reason));
    stop.title = job.stop_reason ? "The provider's stop reason: " + job.stop_reason : "";
    setText(card.part(".job-attempts"), String(job.attempts));
    setText(card.part(".job-by"), job.created_by || "–");
    const started = card.part(".job-started");
    if (job.started_at) setTime(started, job.started_at);
  }

  /* Exactly what the provider received (system included), as text; with the template that rendered it. */
  paintSent(card, job) {
    const sent = job.messages_sent || [];
    const box = card.part(".job-sent");
    box.hidden = sent.length === 0;
    setText(card.part(".job-template"), job.template_name ? " (template " + job.template_name + ")" : "");
    const key = JSON.stringify(sent);
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    card.part(".job-sent-list").replaceChildren(...messageItems(sent));
  }

  paintOutput(card, job) {
    const note = card.part(".job-truncated");
    if (job.output_truncated) {
      if (!card.full.startsWith(job.output)) card.full = job.output;
      note.hidden = card.full.length > job.output.length;
      this.fetchRest(card, job);
    } else {
      card.full = job.output;
      note.hidden = true;
    }
    this.showOutput(card);
  }

  /* A running job follows its end (while the reader stays at the bottom);
     a finished one opens at its beginning, and one that finishes while
     followed goes back to its beginning, ready to be read. */
  showOutput(card) {
    const el = card.output;
    const running = !card.job.terminal;
    const atEnd = el.scrollHeight - el.scrollTop - el.clientHeight < FOLLOW_SLACK_PX;
    let top = card.rendered ? el.scrollTop : 0;
    if (running && (!card.rendered || atEnd)) top = Infinity;
    else if (!running && card.following && atEnd) top = 0;
    card.following = running && top === Infinity;
    showText(el, card.full);
    el.scrollTop = top === Infinity ? el.scrollHeight : top;
    card.rendered = true;
    this.paintExpander(card);
  }

  refreshText() {
    for (const card of this.all()) this.showOutput(card);
  }

  paintExpander(card) {
    const button = card.part(".job-expand");
    const expanded = card.el.classList.contains("expanded");
    const overflowing = card.output.scrollHeight > card.output.clientHeight + 2;
    button.hidden = !expanded && !overflowing;
    setText(button, expanded ? "Collapse" : "Expand (show all)");
    button.setAttribute("aria-expanded", expanded ? "true" : "false");
  }

  toggleExpand(card) {
    card.el.classList.toggle("expanded");
    this.paintExpander(card);
    if (!card.el.classList.contains("expanded")) card.el.scrollIntoView({ block: "nearest" });
  }

  async fetchRest(card, job) {
    if (card.fetching) return;
    card.fetching = true;
    const head = job.output;
    const result = await api("GET", urlFor(this.jobUrl, job.id) + "?output_from=" + head.length);
    card.fetching = false;
    if (!result.ok || !result.data) return;
    if (card.job && card.job.output !== head) return; // a late answer for an older output
    card.full = head + result.data.output;
    card.part(".job-truncated").hidden = true;
    this.showOutput(card);
    this.onUpdate(card);
  }
}


/* Where the review page lists jobs by name ("A · echo · 3f2a1b9c"): the
   preferred-output and diff selects, the diff itself, and the list of
   judgements on the task, an LLM judge's beside the human ones.

   new JobLists({cards, preferred, diffA, diffB, diffButton, diffOut,
                      list, empty, rubric, username, onOptions})
   refresh() after jobs change; renderJudgements(judgements). */
import { diff, renderDiff } from "./diff.js";
import { setText } from "./dom.js";
import { shortId, time } from "./format.js";

const EXCERPT = 80;

function excerpt(text) {
  return text.length > EXCERPT ? text.slice(0, EXCERPT - 1) + "…" : text;
}

export class JobLists {
  constructor(options) {
    Object.assign(this, options);
    this.diffChosen = false;
    this.listedJobs = -1;
    this.judgements = [];
    this.labels = Object.fromEntries((options.rubric.questions || []).map((q) => [q.key, q.label]));
    this.diffButton.addEventListener("click", () => this.showDiff());
    for (const select of [this.diffA, this.diffB]) {
      select.addEventListener("change", () => (this.diffChosen = true));
    }
  }

  optionText(id) {
    if (!id) return "none";
    const job = this.cards.get(id).job;
    return this.cards.ref(id) + " · " + job.status + (job.hidden ? " (hidden)" : "");
  }

  sync(select, ids, withNone) {
    const wanted = (withNone ? [""] : []).concat(ids);
    for (const option of Array.from(select.options)) {
      if (!wanted.includes(option.value)) option.remove();
    }
    wanted.forEach((value, index) => {
      let option = Array.from(select.options).find((o) => o.value === value);
      if (!option) {
        option = document.createElement("option");
        option.value = value;
      }
      if (select.options[index] !== option) select.insertBefore(option, select.options[index] || null);
      setText(option, this.optionText(value));
    });
  }

  /* Jobs changed: the selects follow, and the list when labels may have. */
  refresh() {
    const cards = this.cards.all();
    // A hidden job is offered only while it is the chosen one.
    const keep = (card) => !card.job.hidden || card.job.id === this.preferred.value;
    this.sync(this.preferred, cards.filter(keep).map((c) => c.job.id), true);
    this.onOptions();
    const ids = cards.map((c) => c.job.id);
    this.sync(this.diffA, ids, false);
    this.sync(this.diffB, ids, false);
    if (!this.diffChosen && this.diffA.options.length) this.diffA.selectedIndex = 0;
    if (!this.diffChosen && this.diffB.options.length > 1) this.diffB.selectedIndex = 1;
    if (this.cards.order.length !== this.listedJobs) this.renderJudgements(this.judgements);
  }

  showDiff() {
    const a = this.cards.get(this.diffA.value);
    const b = this.cards.get(this.diffB.value);
    this.diffOut.hidden = false;
    const legend = document.getElementById("diff-legend");
    if (legend) legend.hidden = !a || !b;
    if (!a || !b) {
      this.diffOut.textContent = "Pick two outputs.";
      return;
    }
    renderDiff(this.diffOut, diff(a.full, b.full));
  }

  verdictText(j) {
    if (j.kind === "pairwise") {
      const verdicts = {
        a: this.cards.label(j.jobs[0]) + " better",
        b: this.cards.label(j.jobs[1]) + " better",
        tie: "a tie",
        both_bad: "both bad",
      };
      return verdicts[j.verdict] || j.verdict;
    }
    const answers = Object.entries(j.answers || {}).map(([key, value]) => {
      const text = String(value);
      return (this.labels[key] || key) + " " + excerpt(text);
    });
    return answers.join(", ") || "no answers";
  }

  judgementText(j) {
    const names = j.jobs.map((id) => this.cards.ref(id));
    return names.join(" vs ") + ": " + this.verdictText(j);
  }

  // An LLM judge's verdict beside the human ones: "LLM judge echo-judge: A better — its reason".
  judgeText(j) {
    const names = j.jobs.map((id) => this.cards.ref(id)).join(" vs ");
    const reason = j.notes ? " — " + excerpt(j.notes) : "";
    return "LLM judge " + this.judgeName(j) + ": " + this.verdictText(j) + reason + " (" + names + ")";
  }

  judgeName(j) {
    const pinned = (j.judge && j.judge.model) || j.judge_model;
    if (pinned) return pinned;
    const card = this.cards.get(j.judge_job);
    return card ? card.job.model : "(job " + shortId(j.judge_job) + ")";
  }

  who(j) {
    return j.reviewer === this.username ? "you" : j.reviewer;
  }

  renderJudgements(judgements) {
    this.judgements = judgements;
    this.listedJobs = this.cards.order.length;
    this.list.replaceChildren();
    const rows = judgements.filter((j) => !j.withdrawn);
    for (const j of rows) {
      const li = document.createElement("li");
      const flags = [j.blind ? "blind" : "", j.stale ? "for an earlier prompt" : ""].filter(Boolean);
      const text = j.judge_job ? this.judgeText(j) : this.judgementText(j) + " — " + this.who(j);
      li.textContent =
        text + ", " + time(j.created_at) + (flags.length ? " (" + flags.join(", ") + ")" : "");
      if (j.stale) li.className = "stale";
      if (j.judge_job) li.classList.add("llm-judge");
      this.list.appendChild(li);
    }
    this.empty.hidden = rows.length > 0;
  }
}

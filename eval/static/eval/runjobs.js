/* A run's work on its page (/runs/<id>/): every task's job with its output,
   in the review page's card (cards.js), named by its task rather than by a
   letter, with the run's check results and a link to the task's review page.
   Pages of 50 from the run's jobs URL (keyset: "Next page" follows the
   `next` cursor, "Previous page" goes back along the cursors followed).
   Filters: failed checks, errors, tasks not yet reviewed by me.
   Kept live by poller.js (If-None-Match, paused while hidden, backing off on
   errors): fast while the run runs or a job on the page has not ended.
   Text is inserted as text (markdown.js sanitises Markdown). */
import { api, errorText, pageUrl, urlFor } from "./api.js";
import { JobCards } from "./cards.js";
import { byId as $, copyText, setText } from "./dom.js";
import { plural } from "./format.js";
import { bindRawToggle } from "./markdown.js";
import { Poller } from "./poller.js";

/* Called once by run.js with the page's <main>; returns {runChanged(run)}. */
export function runJobs(root) {
  const container = $("run-jobs");
  if (!container) return { runChanged() {} }; // outputs are for reviewers only
  const urls = root.dataset;
  let show = "";
  let cursors = [null]; // cursors[i]: the `after` of page i (null: the first)
  let next = null;
  let runRunning = root.dataset.runStatus === "running";

  class RunCards extends JobCards {
    label(id) {
      const card = this.cards.get(id);
      return card ? "#" + card.job.task : "?";
    }
  }

  const cards = new RunCards({
    container: container,
    template: $("job-card-template"),
    jobUrl: urls.jobUrl,
    noJobs: $("run-jobs-none"),
    hiddenLine: $("run-jobs-hidden"),
    hiddenText: $("run-jobs-hidden-text"),
    hiddenToggle: $("run-jobs-hidden-toggle"),
    onUpdate: paintTask,
    onAction: cardAction,
  });

  function paintTask(card) {
    const job = card.job;
    const link = card.part(".job-task-link");
    const ref = job.task_ref || { id: job.task, title: "", external_id: "" };
    link.href = pageUrl("task", ref.id);
    setText(link, ref.title || ref.external_id || "Task " + ref.id);
    const checks = card.part(".job-checks");
    const names = Object.keys(job.checks || {}).sort();
    checks.replaceChildren(...names.map((name) => {
      const passed = Boolean(job.checks[name]);
      const badge = document.createElement("span");
      badge.className = "badge check " + (passed ? "check-pass" : "check-fail");
      badge.textContent = name + (passed ? " ✓ passed" : " ✗ failed");
      return badge;
    }));
  }

  async function cardAction(card, action) {
    const status = card.part(".job-action-status");
    if (action === "copy") {
      await copyText(card.full);
      setText(status, "Copied.");
      setTimeout(() => setText(status, ""), 1500);
      return;
    }
    const actions = { cancel: urls.jobCancelUrl, retry: urls.retryUrl, hide: card.job.hidden ? urls.unhideUrl : urls.hideUrl };
    setText(status, "…");
    const result = await api("POST", urlFor(actions[action], card.job.id));
    setText(status, result.ok ? (action === "retry" ? "Retried: the new job is on the task's page." : "") : errorText(result));
    poller.etag = null;
    poller.kick();
  }

  function url() {
    const params = new URLSearchParams();
    if (show) params.set("show", show);
    const after = cursors[cursors.length - 1];
    if (after) params.set("after", after);
    const query = params.toString();
    return urls.jobsUrl + (query ? "?" + query : "");
  }

  function render(data) {
    cards.apply(data.jobs || []);
    next = data.next;
    const page = cursors.length;
    const count = data.count || 0;
    setText($("run-jobs-count"), plural(count, "job") +
      (count > 50 ? " · page " + page + " of " + Math.ceil(count / 50) : ""));
    $("run-jobs-next").hidden = !next;
    $("run-jobs-prev").hidden = page <= 1;
    setText($("run-jobs-none"), show ? "No job matches this filter." : "No jobs in this run yet.");
    return runRunning || (data.jobs || []).some((job) => !job.terminal);
  }

  const poller = new Poller({
    url: url(),
    interval: Number(root.dataset.pollInterval) || 2000,
    notice: $("run-jobs-notice"),
    owner: container,
    onData: render,
  });

  function reload() {
    poller.url = url();
    poller.etag = null;
    poller.kick();
  }

  for (const button of document.querySelectorAll("#run-jobs-filters [data-show]")) {
    button.addEventListener("click", () => {
      show = button.dataset.show;
      cursors = [null];
      for (const other of document.querySelectorAll("#run-jobs-filters [data-show]")) {
        other.setAttribute("aria-pressed", other === button ? "true" : "false");
      }
      reload();
    });
  }
  $("run-jobs-next").addEventListener("click", () => {
    if (!next) return;
    cursors.push(next);
    reload();
    container.scrollIntoView({ block: "start" });
  });
  $("run-jobs-prev").addEventListener("click", () => {
    if (cursors.length > 1) cursors.pop();
    reload();
    container.scrollIntoView({ block: "start" });
  });
  bindRawToggle($("raw-toggle"));
  poller.start();
  // run.js says when the run's status changes: a run that runs again polls fast.
  return {
    runChanged(run) {
      const running = run.status === "running";
      if (running && !runRunning) poller.kick();
      runRunning = running;
    },
  };
}

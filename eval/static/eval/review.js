/* The review page: job cards kept live by polling, run/cancel/retry, the
   review form, a diff between two outputs, copy, keyboard shortcuts.

   Cards are created once per job and then only their changed fields are
   touched, so nothing flickers and scroll, focus, selection and form input
   survive every poll. Model output and task text are only ever set with
   textContent / text nodes. */
(function () {
  "use strict";

  const E = window.Eval;
  const root = document.getElementById("review");
  if (!root) return;

  const pollUrl = root.dataset.pollUrl;
  const reviewUrl = root.dataset.reviewUrl;
  const jobsEl = document.getElementById("jobs");
  const noJobs = document.getElementById("no-jobs");
  const template = document.getElementById("job-card-template");
  const runStatus = document.getElementById("run-status");
  const maxTokensInput = document.getElementById("run-max-tokens");
  const form = document.getElementById("review-form");
  const reviewStatus = document.getElementById("review-status");
  const preferred = document.getElementById("preferred-job");
  const diffA = document.getElementById("diff-a");
  const diffB = document.getElementById("diff-b");
  const diffOut = document.getElementById("diff-output");

  const cards = new Map(); // job id -> {el, key, job, full, fetching}
  let jobOrder = [];
  let lastRunButton = null;
  let preferredInitial = preferred.dataset.initial || "";
  let diffChosen = false;

  // --- formatting -------------------------------------------------------------
  function duration(job) {
    if (!job.started_at) return "–";
    const end = job.finished_at ? new Date(job.finished_at) : new Date();
    const seconds = Math.max(0, (end - new Date(job.started_at)) / 1000);
    return seconds < 60 ? seconds.toFixed(1) + " s" : Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
  }

  function tokens(usage) {
    const input = usage.input_tokens == null ? "–" : usage.input_tokens;
    const output = usage.output_tokens == null ? "–" : usage.output_tokens;
    return input + " in / " + output + " out";
  }

  function cost(value) {
    return value == null ? "–" : "$" + Number(value).toFixed(value && value < 0.01 ? 6 : 4);
  }

  function label(job) {
    return job.model + " · " + job.id.slice(0, 8) + " · " + job.status;
  }

  // --- cards --------------------------------------------------------------------
  function part(card, selector) {
    return card.el.querySelector(selector);
  }

  function createCard(job) {
    const el = template.content.firstElementChild.cloneNode(true);
    el.id = "job-" + job.id;
    el.dataset.jobId = job.id;
    const card = { el: el, key: null, job: null, full: "", fetching: false };
    el.querySelector(".job-cancel").addEventListener("click", () => cancelJob(card));
    el.querySelector(".job-retry").addEventListener("click", () => retryJob(card));
    el.querySelector(".job-copy").addEventListener("click", () => copyOutput(card));
    cards.set(job.id, card);
    return card;
  }

  function setOutput(card, text) {
    const pre = part(card, ".job-output");
    const current = pre.textContent;
    if (current === text) return;
    const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
    if (current && text.startsWith(current)) {
      pre.appendChild(document.createTextNode(text.slice(current.length))); // keeps any selection
    } else {
      pre.textContent = text;
    }
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  async function fetchRest(card, job) {
    if (card.fetching) return;
    card.fetching = true;
    const head = job.output;
    const result = await E.api("GET", "/api/jobs/" + job.id + "?output_from=" + head.length);
    card.fetching = false;
    if (!result.ok || !result.data) return;
    // Ignore a late answer for an older version of the output.
    if (card.job && card.job.output !== head) return;
    card.full = head + result.data.output;
    setOutput(card, card.full);
    part(card, ".job-truncated").hidden = true;
    refreshSelects();
  }

  function updateCard(card, job) {
    const key = JSON.stringify(job);
    if (card.key === key) return;
    card.key = key;
    card.job = job;
    const el = card.el;
    const status = job.status;
    if (el.dataset.status !== status) {
      el.dataset.status = status;
      el.className = "job-card status-" + status;
    }
    E.setText(part(card, ".job-model"), job.provider + " / " + job.model);
    const badge = part(card, ".job-status");
    E.setText(badge, status + (job.cancel_requested && status === "running" ? " (cancelling)" : ""));
    badge.className = "badge job-status badge-" + status;
    const bar = part(card, ".job-progress");
    if (Number(bar.value) !== job.progress) bar.value = job.progress;
    E.setText(part(card, ".job-percent"), job.progress + "%");
    E.setText(part(card, ".job-message"), job.message);
    const error = part(card, ".job-error");
    const errorText = job.error ? job.error.message + " (" + job.error.code + ")" : "";
    E.setText(error, errorText);
    error.hidden = !errorText || status === "succeeded";
    E.setText(part(card, ".job-tokens"), tokens(job.usage));
    E.setText(part(card, ".job-cost"), cost(job.cost_usd));
    E.setText(part(card, ".job-duration"), duration(job));
    E.setText(part(card, ".job-stop"), job.stop_reason || "–");
    E.setText(part(card, ".job-attempts"), String(job.attempts));
    E.setText(part(card, ".job-by"), job.created_by || "–");
    const started = part(card, ".job-started");
    if (job.started_at) {
      started.setAttribute("datetime", job.started_at);
      E.setText(started, E.localTime(job.started_at));
      started.title = job.started_at;
    }
    part(card, ".job-cancel").hidden = !job.can_cancel;
    part(card, ".job-retry").hidden = !job.can_retry;

    const note = part(card, ".job-truncated");
    if (job.output_truncated) {
      if (!card.full.startsWith(job.output)) card.full = job.output;
      setOutput(card, card.full);
      note.hidden = card.full.length > job.output.length;
      fetchRest(card, job);
    } else {
      card.full = job.output;
      setOutput(card, card.full);
      note.hidden = true;
    }
  }

  /* Apply one job (from a poll or an action's answer). */
  function upsert(job, previousEl) {
    let card = cards.get(job.id);
    if (!card) {
      card = createCard(job);
      if (previousEl === undefined) {
        jobsEl.appendChild(card.el);
        jobOrder.push(job.id);
      } else if (previousEl) {
        previousEl.after(card.el);
      } else {
        jobsEl.prepend(card.el);
      }
    }
    updateCard(card, job);
    noJobs.hidden = true;
    return card;
  }

  function onPoll(data) {
    let previous = null;
    const seen = new Set();
    for (const job of data.jobs) {
      const card = upsert(job, previous);
      previous = card.el;
      seen.add(job.id);
    }
    for (const [id, card] of cards) {
      if (!seen.has(id)) {
        card.el.remove();
        cards.delete(id);
      }
    }
    jobOrder = data.jobs.map((job) => job.id);
    noJobs.hidden = data.jobs.length > 0;
    refreshSelects();
    return !data.all_terminal;
  }

  // --- selects (preferred output, diff) ----------------------------------------
  function syncSelect(select, withNone) {
    const wanted = (withNone ? [""] : []).concat(jobOrder.filter((id) => cards.has(id)));
    const existing = new Map();
    for (const option of Array.from(select.options)) existing.set(option.value, option);
    for (const [value, option] of existing) {
      if (!wanted.includes(value)) option.remove();
    }
    wanted.forEach((value, index) => {
      let option = existing.get(value);
      if (!option) {
        option = document.createElement("option");
        option.value = value;
        select.insertBefore(option, select.options[index] || null);
      }
      E.setText(option, value ? label(cards.get(value).job) : "none");
    });
  }

  function refreshSelects() {
    syncSelect(preferred, true);
    if (preferredInitial && cards.has(preferredInitial)) {
      preferred.value = preferredInitial;
      preferredInitial = "";
    }
    syncSelect(diffA, false);
    syncSelect(diffB, false);
    // Until the reviewer picks, compare the first two outputs.
    if (!diffChosen && diffA.options.length) diffA.selectedIndex = 0;
    if (!diffChosen && diffB.options.length > 1) diffB.selectedIndex = 1;
  }

  // --- actions --------------------------------------------------------------------
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  async function launch(button) {
    lastRunButton = button;
    const max = Number(button.dataset.maxTokens);
    let maxTokens = parseInt(maxTokensInput.value, 10) || 1024;
    maxTokens = Math.max(1, Math.min(maxTokens, max));
    const body = { provider: button.dataset.provider, model: button.dataset.model, params: { max_tokens: maxTokens } };
    button.disabled = true;
    E.setText(runStatus, "Starting " + button.dataset.model + "…");
    const result = await E.api("POST", pollUrl, body, { "Idempotency-Key": newKey() });
    button.disabled = false;
    if (result.ok && result.data) {
      E.setText(runStatus, "Queued " + button.dataset.model + ".");
      upsert(result.data);
      refreshSelects();
      poller.kick();
    } else {
      const retry = result.headers.get("Retry-After");
      E.setText(runStatus, E.errorText(result) + (retry ? " (retry in " + retry + " s)" : ""));
    }
  }

  async function cancelJob(card) {
    const status = part(card, ".job-action-status");
    E.setText(status, "Cancelling…");
    const result = await E.api("POST", "/api/jobs/" + card.job.id + "/cancel");
    if (result.ok && result.data) {
      E.setText(status, "");
      updateCard(card, result.data);
      poller.kick();
    } else {
      E.setText(status, E.errorText(result));
    }
  }

  async function retryJob(card) {
    const status = part(card, ".job-action-status");
    E.setText(status, "Retrying…");
    const result = await E.api("POST", "/api/jobs/" + card.job.id + "/retry", undefined, {});
    if (result.ok && result.data) {
      E.setText(status, "Retried as " + result.data.id.slice(0, 8) + ".");
      upsert(result.data);
      refreshSelects();
      poller.kick();
    } else {
      E.setText(status, E.errorText(result));
    }
  }

  async function copyOutput(card) {
    const status = part(card, ".job-action-status");
    const text = card.full;
    try {
      await navigator.clipboard.writeText(text);
    } catch (error) {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    E.setText(status, "Copied.");
    setTimeout(() => E.setText(status, ""), 1500);
  }

  function showDiff() {
    const a = cards.get(diffA.value);
    const b = cards.get(diffB.value);
    if (!a || !b) {
      diffOut.hidden = false;
      diffOut.textContent = "Pick two outputs.";
      return;
    }
    E.renderDiff(diffOut, E.diff(a.full, b.full));
    diffOut.hidden = false;
  }

  // --- review form ---------------------------------------------------------------
  async function saveReview(event) {
    if (event) event.preventDefault();
    const checked = form.querySelector("input[name=rating]:checked");
    const body = {
      rating: checked && checked.value ? Number(checked.value) : null,
      notes: document.getElementById("review-notes").value,
      preferred_job: preferred.value || null,
    };
    E.setText(reviewStatus, "Saving…");
    const result = await E.api("PUT", reviewUrl, body);
    if (result.ok && result.data) {
      reviewStatus.replaceChildren(document.createTextNode("Saved "));
      const time = document.createElement("time");
      time.setAttribute("datetime", result.data.updated_at);
      time.textContent = E.localTime(result.data.updated_at);
      reviewStatus.appendChild(time);
      reviewStatus.dataset.saved = "1";
    } else {
      E.setText(reviewStatus, "Not saved: " + E.errorText(result));
      delete reviewStatus.dataset.saved;
    }
  }

  function markDirty() {
    E.setText(reviewStatus, "Unsaved changes");
    delete reviewStatus.dataset.saved;
  }

  // --- keyboard ------------------------------------------------------------------
  function onKey(event) {
    if (E.typingInField(event)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    if (key === "r") {
      const button = lastRunButton || document.querySelector(".run-button");
      if (button) launch(button);
    } else if (key >= "1" && key <= "5") {
      const radio = form.querySelector('input[name=rating][value="' + key + '"]');
      if (radio && !radio.checked) {
        radio.checked = true;
        markDirty();
      }
    } else if (key === "s") {
      saveReview();
    } else if (key === "n" && root.dataset.nextUrl) {
      window.location.assign(root.dataset.nextUrl);
    } else if (key === "p" && root.dataset.prevUrl) {
      window.location.assign(root.dataset.prevUrl);
    } else {
      return;
    }
    event.preventDefault();
  }

  // --- wiring ---------------------------------------------------------------------
  for (const button of document.querySelectorAll(".run-button")) {
    button.addEventListener("click", () => launch(button));
  }
  document.getElementById("diff-button").addEventListener("click", showDiff);
  for (const select of [diffA, diffB]) {
    select.addEventListener("change", () => {
      diffChosen = true;
    });
  }
  form.addEventListener("submit", saveReview);
  form.addEventListener("input", markDirty);
  document.addEventListener("keydown", onKey);

  const poller = new E.Poller({
    url: pollUrl,
    interval: Number(root.dataset.pollInterval) || 2000,
    notice: document.getElementById("poll-notice"),
    onData: onPoll,
  });
  E.reviewPoller = poller;
  poller.start();
})();

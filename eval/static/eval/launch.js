/* Launching a job from the review page, safely (issue 10):
   - `r` ignores key auto-repeat and waits for the launch on its way, so a
     held key starts one job;
   - a paid model asks first, with the estimated cost;
   - max tokens and temperature are sent as typed: the server refuses a value
     out of range and its reason is shown (nothing is clamped here). */
(function () {
  "use strict";

  const E = window.Eval;
  const CHARS_PER_TOKEN = 4; // a rough rule for English text; good enough to warn
  const DEFAULT_MAX_TOKENS = 1024; // the server's default when none is sent

  function money(usd) {
    if (usd === 0) return "$0";
    return "$" + (usd < 1 ? usd.toPrecision(2) : usd.toFixed(2));
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  class Launcher {
    constructor(options) {
      this.buttons = options.buttons;
      this.maxTokens = options.maxTokens;
      this.temperature = options.temperature;
      this.template = options.template || null; // the prompt template picker (none: the task as it is)
      this.status = options.status;
      this.url = options.url;
      this.promptChars = Number(options.promptChars) || 0;
      this.onJob = options.onJob;
      this.last = null;
      this.busy = false;
      for (const button of this.buttons) button.addEventListener("click", () => this.launch(button));
      for (const input of [this.maxTokens, this.temperature]) {
        input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
      }
    }

    /* `r`: the model launched last, else the first. One job per key press. */
    onKey(event) {
      if (event.repeat || this.busy) return;
      const button = this.last || this.buttons[0];
      if (button) this.launch(button);
    }

    /* {params} or {error}; values as typed, never clamped. */
    params() {
      const params = {};
      for (const [name, input] of [["max_tokens", this.maxTokens], ["temperature", this.temperature]]) {
        if (input.validity && input.validity.badInput) {
          return { error: name.replace("_", " ") + " must be a number", input: input };
        }
        const raw = input.value.trim();
        if (raw !== "") params[name] = Number(raw);
      }
      return { params: params };
    }

    estimate(button, params) {
      const perIn = Number(button.dataset.priceIn);
      const perOut = Number(button.dataset.priceOut);
      const inputTokens = Math.ceil(this.promptChars / CHARS_PER_TOKEN);
      const outputTokens = params.max_tokens == null ? DEFAULT_MAX_TOKENS : params.max_tokens;
      const usd = (inputTokens * perIn + outputTokens * perOut) / 1e6;
      return {
        usd: usd,
        lines: [
          "Estimated cost: at most about " + money(usd) + ".",
          "How: the prompt's " + this.promptChars.toLocaleString() + " characters ÷ " + CHARS_PER_TOKEN + " ≈ " +
            inputTokens.toLocaleString() + " input tokens at $" + perIn + " per million, plus up to " +
            outputTokens.toLocaleString() + " output tokens (max tokens) at $" + perOut + " per million.",
          "Most answers stop before max tokens, so the real cost is usually lower.",
        ],
      };
    }

    async confirmCost(button, params) {
      const validMax = params.max_tokens == null || (Number.isInteger(params.max_tokens) && params.max_tokens >= 1);
      // A paid model, with a max tokens the server will accept: say what it may cost.
      if (!button.dataset.priceIn || !validMax) return true;
      const estimate = this.estimate(button, params);
      const answer = await E.confirmDialog({
        title: "Run " + button.dataset.model + "? It is a paid model.",
        lines: estimate.lines,
        buttons: [
          { label: "Run it (about " + money(estimate.usd) + ")", value: true },
          { label: "Don’t run", value: false },
        ],
        cancelValue: false,
      });
      return answer === true;
    }

    async launch(button) {
      if (this.busy) return null;
      this.last = button;
      const built = this.params();
      if (built.error) {
        built.input.setAttribute("aria-invalid", "true");
        this.say("Not started: " + built.error + ".", true);
        return null;
      }
      this.busy = true;
      try {
        if (!(await this.confirmCost(button, built.params))) {
          this.say("Not started: you chose not to run it.");
          return null;
        }
        return await this.send(button, built.params);
      } finally {
        this.busy = false;
      }
    }

    async send(button, params) {
      const body = { provider: button.dataset.provider, model: button.dataset.model, params: params };
      if (this.template && this.template.value) body.template = Number(this.template.value);
      button.disabled = true;
      this.say("Starting " + button.dataset.model + "…");
      const result = await E.api("POST", this.url, body, { "Idempotency-Key": newKey() });
      button.disabled = false;
      if (result.ok && result.data) {
        this.say(""); // the new card says the rest
        this.onJob(result.data);
        return result.data;
      }
      this.refused(result);
      return null;
    }

    // A refusal reads as one (the error colour and a role=alert line); progress does not.
    say(text, refused) {
      E.setText(this.status, text);
      this.status.classList.toggle("error", Boolean(refused));
    }

    refused(result) {
      let text = E.errorText(result);
      const retry = result.headers.get("Retry-After");
      // The server's message may already say when ("try again in 12 s"): say it once.
      if (retry && !/\d+\s*s\b/.test(text)) text += " (try again in " + retry + " s)";
      this.say("Not started: " + text, true);
      const field = E.errorField(result);
      if (field.includes("max_tokens")) this.maxTokens.setAttribute("aria-invalid", "true");
      if (field.includes("temperature")) this.temperature.setAttribute("aria-invalid", "true");
      if (this.template && (field === "template" || field === "params.system")) {
        this.template.setAttribute("aria-invalid", "true");
      }
    }
  }

  E.Launcher = Launcher;
})();

/* Launching a job from the review page, safely (issue 10):
   - `r` ignores key auto-repeat and waits for the launch on its way, so a
     held key starts one job;
   - a paid model asks first, with the cost the server estimates for exactly
     this launch (a dry run of the create call); this
     file only formats it;
   - max tokens and temperature are sent as typed: the server refuses a value
     out of range and its reason is shown (nothing is clamped here). */
import { api, errorField, errorText } from "./api.js";
import { confirmDialog } from "./dialog.js";
import { setText } from "./dom.js";
import { count, money } from "./format.js";

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Date.now().toString(36) + Math.random().toString(36).slice(2);
}

export class Launcher {
  constructor(options) {
    this.buttons = options.buttons;
    this.maxTokens = options.maxTokens;
    this.temperature = options.temperature;
    this.template = options.template || null; // the prompt template picker (none: the task as it is)
    this.status = options.status;
    this.url = options.url;
    this.estimateUrl = options.estimateUrl; // the same body, a dry run
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

  /* The server's estimate ({usd, prompt_chars, chars_per_token, input_tokens,
     output_tokens, price}) as the dialog's lines. */
  static costLines(estimate) {
    const price = estimate.price;
    return [
      "Estimated cost: at most about " + money(estimate.usd) + ".",
      "How: the prompt's " + count(estimate.prompt_chars) + " characters ÷ " + estimate.chars_per_token + " ≈ " +
        count(estimate.input_tokens) + " input tokens at $" + price.input + " per million, plus up to " +
        count(estimate.output_tokens) + " output tokens (max tokens) at $" + price.output + " per million.",
      "Most answers stop before max tokens, so the real cost is usually lower.",
    ];
  }

  /* true to launch, false if the person declined, null if the server refused the request (said). */
  async confirmCost(button, params) {
    if (!button.dataset.priceIn) return true; // free, or no price known: nothing to ask
    const result = await api("POST", this.estimateUrl, this.body(button, params));
    if (!result.ok || !result.data) {
      this.refused(result);
      return null;
    }
    const estimate = result.data.estimate;
    if (!estimate.price || !estimate.usd) return true;
    const answer = await confirmDialog({
      title: "Run " + button.dataset.model + "? It is a paid model.",
      lines: Launcher.costLines(estimate),
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
      const go = await this.confirmCost(button, built.params);
      if (go === null) return null; // refused: refused() said why
      if (!go) {
        this.say("Not started: you chose not to run it.");
        return null;
      }
      return await this.send(button, built.params);
    } finally {
      this.busy = false;
    }
  }

  /* The create call's body; its estimate is a dry run of the same body. */
  body(button, params) {
    const body = { provider: button.dataset.provider, model: button.dataset.model, params: params };
    if (this.template && this.template.value) body.template = Number(this.template.value);
    return body;
  }

  async send(button, params) {
    const body = this.body(button, params);
    button.disabled = true;
    this.say("Starting " + button.dataset.model + "…");
    const result = await api("POST", this.url, body, { "Idempotency-Key": newKey() });
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
    setText(this.status, text);
    this.status.classList.toggle("error", Boolean(refused));
  }

  refused(result) {
    let text = errorText(result);
    const retry = result.headers.get("Retry-After");
    // The server's message may already say when ("try again in 12 s"): say it once.
    if (retry && !/\d+\s*s\b/.test(text)) text += " (try again in " + retry + " s)";
    this.say("Not started: " + text, true);
    const field = errorField(result);
    if (field.includes("max_tokens")) this.maxTokens.setAttribute("aria-invalid", "true");
    if (field.includes("temperature")) this.temperature.setAttribute("aria-invalid", "true");
    if (this.template && (field === "template" || field === "params.system")) {
      this.template.setAttribute("aria-invalid", "true");
    }
  }
}

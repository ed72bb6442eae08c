/* How the review page words a job: its label (A, B, ... Z, AA), duration,
   tokens, cost, params, and whether it was cut off at max tokens. */
(function () {
  "use strict";

  function letters(index) {
    let name = "";
    let n = index + 1;
    while (n > 0) {
      const rest = (n - 1) % 26;
      name = String.fromCharCode(65 + rest) + name;
      n = Math.floor((n - 1) / 26);
    }
    return name;
  }

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

  function paramsText(params) {
    params = params || {};
    const parts = ["max tokens " + (params.max_tokens == null ? "default" : params.max_tokens)];
    parts.push("temperature " + (params.temperature == null ? "default" : params.temperature));
    if (params.top_p != null) parts.push("top_p " + params.top_p);
    if (params.stop && params.stop.length) parts.push("stop " + params.stop.map((s) => JSON.stringify(s)).join(", "));
    if (params.seed != null) parts.push("seed " + params.seed);
    if (params.system) parts.push("system prompt");
    return parts.join(" · ");
  }

  /* Cut off at max tokens: the status stays "succeeded" (DESIGN), the stop
     reason says why it ended. */
  function cutOff(job) {
    return job.status === "succeeded" && String(job.stop_reason || "").toLowerCase() === "max_tokens";
  }

  window.Eval = Object.assign(window.Eval || {}, {
    jobText: { letters: letters, duration: duration, tokens: tokens, cost: cost, paramsText: paramsText, cutOff: cutOff },
  });
})();

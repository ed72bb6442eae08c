/* How every page words money, tokens, durations, model parameters and times:
   one way each (issue 23), so a figure reads the same wherever it is shown.

   Times: "2026-12-05 07:57" in the reader's own time zone, everywhere. The
   server renders <time datetime="ISO-8601">its own text (UTC)</time>, and
   localizeTimes() rewrites those in the reader's zone on load (site.js). */

export function num(value) {
  return value == null || value === "" ? null : Number(value);
}

/* "$0", "$0.0042", "$0.42", "$12.40"; "–" when not known. */
export function money(value) {
  const usd = num(value);
  if (usd == null || isNaN(usd)) return "–";
  if (usd === 0) return "$0";
  if (Math.abs(usd) < 0.01) return "$" + usd.toPrecision(2);
  return "$" + usd.toFixed(2);
}

/* "1,234". */
export function count(n) {
  return Number(n || 0).toLocaleString();
}

/* "1 task", "1,200 tasks", plural(n, "entry", "entries"). */
export function plural(n, one, many) {
  return count(n) + " " + (n === 1 ? one : many || one + "s");
}

/* "12 in / 40 out" ("–" for a side not known). */
export function tokens(usage) {
  usage = usage || {};
  const input = usage.input_tokens == null ? "–" : usage.input_tokens;
  const output = usage.output_tokens == null ? "–" : usage.output_tokens;
  return input + " in / " + output + " out";
}

/* "4.2 s", "3 min 5 s", "2 h 10 min". */
export function duration(seconds) {
  const s = num(seconds);
  if (s == null || isNaN(s)) return "–";
  const t = Math.max(0, s);
  if (t < 60) return t.toFixed(1) + " s";
  if (t < 3600) return Math.floor(t / 60) + " min " + Math.floor(t % 60) + " s";
  return Math.floor(t / 3600) + " h " + Math.floor((t % 3600) / 60) + " min";
}

/* A job's run time: started to finished, or to now while it runs. */
export function jobDuration(job) {
  if (!job.started_at) return "–";
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  return duration((end - new Date(job.started_at)) / 1000);
}

/* "+", "−" or "±" and the size: signed(-2.5, duration) -> "−2.5 s". */
export function signed(value, format) {
  const n = num(value);
  if (n == null || isNaN(n)) return "–";
  const shown = format ? format(Math.abs(n)) : String(Math.abs(n));
  // A change too small to show is no change: "±0.0 s", never "−0.0 s".
  const zero = shown === (format ? format(0) : "0");
  return (zero ? "±" : n > 0 ? "+" : "−") + shown;
}

/* A job's or run's parameters: "max tokens 1024 · temperature default · seed 7". */
export function paramsText(params) {
  params = params || {};
  const parts = ["max tokens " + (params.max_tokens == null ? "default" : params.max_tokens)];
  parts.push("temperature " + (params.temperature == null ? "default" : params.temperature));
  if (params.top_p != null) parts.push("top_p " + params.top_p);
  if (params.stop && params.stop.length) parts.push("stop " + params.stop.map((s) => JSON.stringify(s)).join(", "));
  if (params.seed != null) parts.push("seed " + params.seed);
  if (params.system) parts.push("system prompt");
  return parts.join(" · ");
}

/* Why a model stopped, in one set of words whatever the provider calls it
   (Anthropic end_turn / max_tokens / stop_sequence, OpenAI stop / length,
   Gemini STOP / MAX_TOKENS); the provider's own word stays in the title. */
const STOPS = {
  end_turn: "finished", stop: "finished", max_tokens: "max tokens", length: "max tokens",
  stop_sequence: "stop sequence",
};

export function stopText(reason) {
  if (!reason) return "–";
  return STOPS[String(reason).toLowerCase()] || String(reason);
}

/* A job's short id: the first 8 characters of its UUID, wherever a page names a job. */
export function shortId(id) {
  return String(id || "").slice(0, 8);
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/* The one time format: "2026-12-05 07:57", the reader's zone; "" for none. */
export function time(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (isNaN(date)) return String(iso);
  const day = date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate());
  return day + " " + pad(date.getHours()) + ":" + pad(date.getMinutes());
}

function zoneName() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    return "";
  }
}

/* Sets a <time> element to `iso`, worded by time(); its title names the zone. */
export function setTime(target, iso) {
  const text = time(iso);
  if (target.getAttribute("datetime") !== iso) target.setAttribute("datetime", iso);
  if (target.textContent !== text) target.textContent = text;
  const zone = zoneName();
  target.title = iso + (zone ? " (shown in " + zone + ")" : "");
  return target;
}

/* A new <time> element for `iso`. */
export function timeElement(iso) {
  return setTime(document.createElement("time"), iso);
}

/* Every <time datetime> under root, in the reader's own zone. */
export function localizeTimes(root) {
  for (const target of (root || document).querySelectorAll("time[datetime]")) {
    const iso = target.getAttribute("datetime");
    if (iso) setTime(target, iso);
  }
}

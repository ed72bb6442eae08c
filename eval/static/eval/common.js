/* Shared helpers: CSRF, JSON calls, local times. No framework, no build step.
   Text from the server is always inserted with textContent, never as HTML. */
(function () {
  "use strict";

  function cookie(name) {
    const prefix = name + "=";
    for (const part of document.cookie.split(";")) {
      const item = part.trim();
      if (item.startsWith(prefix)) return decodeURIComponent(item.slice(prefix.length));
    }
    return "";
  }

  /* Every request has a total deadline (answer and body): a hung connection (a
     proxy that accepts and never answers, a server stalled mid-body) would
     otherwise hold its caller until the browser gives up, minutes later, and
     the poller's loop with it. Reads: 10 s (a poll answers in milliseconds);
     writes: 30 s (a save or launch may wait on a busy database).
     window.EVAL_FETCH_TIMEOUT_MS sets the read deadline (tests make it short). */
  const READ_TIMEOUT_MS = 10000;
  const WRITE_TIMEOUT_MS = 30000;

  function isRead(method) {
    return method === "GET" || method === "HEAD";
  }

  function deadline(method, options) {
    if (options && options.timeoutMs) return options.timeoutMs;
    const read = Number(window.EVAL_FETCH_TIMEOUT_MS) || READ_TIMEOUT_MS;
    return isRead(method) ? read : Math.max(read, WRITE_TIMEOUT_MS);
  }

  async function readBody(response, signal) {
    if (response.status === 204 || response.status === 304) return null;
    try {
      return await response.json();
    } catch (error) {
      if (signal.aborted) throw error; // the deadline, not a body that is not JSON
      return null;
    }
  }

  /* fetch() a JSON endpoint. Resolves to {ok, status, data, headers}; network
     errors and the deadline resolve too ({ok: false, status: 0}, with
     timedOut: true for the deadline) so callers have one path.
     options.keepalive: the request outlives the page (a draft sent on unload).
     options.timeoutMs: this request's deadline instead of the default. */
  async function api(method, url, body, headers, options) {
    const controller = new AbortController();
    const init = {
      method: method,
      credentials: "same-origin",
      cache: "no-store",
      keepalive: Boolean(options && options.keepalive),
      headers: Object.assign({ Accept: "application/json" }, headers || {}),
      signal: controller.signal,
    };
    if (!isRead(method)) {
      init.headers["X-CSRFToken"] = cookie("csrftoken");
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
    }
    const timer = setTimeout(() => controller.abort(), deadline(method, options));
    try {
      const response = await fetch(url, init);
      const data = await readBody(response, controller.signal);
      return { ok: response.ok, status: response.status, data: data, headers: response.headers };
    } catch (error) {
      const failure = { ok: false, status: 0, data: null, headers: new Headers(), error: error };
      return Object.assign(failure, { timedOut: controller.signal.aborted, write: !isRead(method) });
    } finally {
      clearTimeout(timer);
    }
  }

  function errorText(result) {
    if (result.timedOut && result.write) return "The server did not answer in time: reload to see whether it was done.";
    if (result.timedOut) return "The server did not answer in time; try again.";
    if (result.status === 0) return "Cannot reach the server.";
    if (result.data && result.data.error) return result.data.error.message;
    return "The server answered " + result.status + ".";
  }

  /* The error's field ("params.max_tokens", "answers.quality"), or "". */
  function errorField(result) {
    return (result.data && result.data.error && result.data.error.field) || "";
  }

  /* A job's short id: the first 8 characters of its UUID, used wherever a
     page names a job. */
  function shortId(id) {
    return String(id || "").slice(0, 8);
  }

  /* "14:02" today, else the local date and time. */
  function clockTime(iso) {
    const date = new Date(iso);
    if (isNaN(date)) return iso || "";
    const sameDay = date.toDateString() === new Date().toDateString();
    const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return sameDay ? time : date.toLocaleDateString() + " " + time;
  }

  function localTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return isNaN(date) ? iso : date.toLocaleString();
  }

  /* Show every <time datetime> in the reader's own time zone. */
  function localizeTimes(root) {
    for (const el of (root || document).querySelectorAll("time[datetime]")) {
      const iso = el.getAttribute("datetime");
      if (!iso) continue;
      const text = localTime(iso);
      if (el.textContent !== text) el.textContent = text;
      el.title = iso;
    }
  }

  function setText(el, text) {
    text = text == null ? "" : String(text);
    if (el.textContent !== text) el.textContent = text;
  }

  /* Is the key for a field (typing, choosing) rather than a page shortcut?
     Radio buttons and checkboxes take no text: shortcuts still work there. */
  function typingInField(event) {
    const t = event.target;
    if (!t || !t.tagName) return false;
    if (t.tagName === "INPUT" && ["radio", "checkbox", "button", "submit", "reset"].includes(t.type)) return false;
    return t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName);
  }

  /* Put text on the clipboard (a hidden textarea where the Clipboard API is
     refused, e.g. over plain http). */
  async function copyText(text) {
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
  }

  /* A short note in `el` (a role=status toast) for a key that did nothing
     visible, hidden again after a few seconds. */
  function say(el, text) {
    if (!el || !text) return;
    setText(el, text);
    el.hidden = false;
    clearTimeout(el.sayTimer);
    el.sayTimer = setTimeout(() => (el.hidden = true), 3000);
  }

  window.Eval = Object.assign(window.Eval || {}, {
    cookie: cookie,
    api: api,
    errorText: errorText,
    errorField: errorField,
    shortId: shortId,
    clockTime: clockTime,
    localTime: localTime,
    localizeTimes: localizeTimes,
    setText: setText,
    typingInField: typingInField,
    copyText: copyText,
    say: say,
  });

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
  });
})();

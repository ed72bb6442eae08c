/* JSON calls to the server: CSRF, a deadline on every request, one result
   shape, and the error's words. URLs come from the page (data-*-url
   attributes rendered by Django's {% url %}), never spelled here. */

export function cookie(name) {
  const prefix = name + "=";
  for (const part of document.cookie.split(";")) {
    const item = part.trim();
    if (item.startsWith(prefix)) return decodeURIComponent(item.slice(prefix.length));
  }
  return "";
}

/* A URL rendered with the placeholder "__id__" (one per object: a job, a run),
   with the object's id in its place. */
export function urlFor(template, id) {
  return template.replace("__id__", encodeURIComponent(String(id)));
}

/* A page's own URL ("task", "run"), from the templates base.html puts on <body>
   (data-page-url-task, data-page-url-run). */
export function pageUrl(page, id) {
  return urlFor(document.body.dataset["pageUrl" + page[0].toUpperCase() + page.slice(1)], id);
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
export async function api(method, url, body, headers, options) {
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

export function errorText(result) {
  if (result.timedOut && result.write) return "The server did not answer in time: reload to see whether it was done.";
  if (result.timedOut) return "The server did not answer in time; try again.";
  if (result.status === 0) return "Cannot reach the server.";
  if (result.data && result.data.error) return result.data.error.message;
  return "The server answered " + result.status + ".";
}

/* The error's field ("params.max_tokens", "answers.quality"), or "". */
export function errorField(result) {
  return (result.data && result.data.error && result.data.error.field) || "";
}

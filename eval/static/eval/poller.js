/* A polite poller (DESIGN "Pages"):
   - polls every `interval` ms with If-None-Match while something is active;
   - when nothing is active (all jobs terminal) it slows to `idleInterval`
     (30 s) instead of hammering the server, and `kick()` makes it fast again;
   - never polls while the tab is hidden, and polls at once when it is shown;
   - on errors backs off (doubling, up to 30 s) and says so in `notice`, then
     clears the notice when the server answers again;
   - a poll that hits its deadline (api.js: 10 s) is a slow connection, not
     an error: the loop carries on at its pace (the wait was the deadline), and
     `notice` says "Connection slow, retrying" in a calm style (data-state
     "slow", where errors are "error") until a poll gets through. */
import { api } from "./api.js";
import { setText } from "./dom.js";

const MAX_BACKOFF_MS = 30000;

export class Poller {
  constructor(options) {
    this.url = options.url;
    this.interval = options.interval || 2000;
    this.idleInterval = options.idleInterval || 30000;
    this.notice = options.notice || null;
    this.onData = options.onData; // (data) => true while fast polling is needed
    this.owner = options.owner || null; // its data-polls counts the polls (tests wait on them)
    this.etag = null;
    this.active = true;
    this.failures = 0;
    this.slow = false;
    this.timer = null;
    this.inFlight = false;
    this.stopped = false;
    this.lastPollAt = 0;
    this.pollCount = 0;
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) {
        this.clear();
      } else if (!this.stopped) {
        this.schedule(0);
      }
    });
  }

  start() {
    this.stopped = false;
    this.schedule(0);
  }

  stop() {
    this.stopped = true;
    this.clear();
  }

  /* Something changed here (a job was launched): poll fast again, now. */
  kick() {
    this.active = true;
    if (!this.stopped) this.schedule(0);
  }

  clear() {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  schedule(delay) {
    this.clear();
    if (document.hidden || this.stopped) return;
    this.timer = setTimeout(() => this.poll(), delay);
  }

  nextDelay() {
    if (this.failures > 0) {
      return Math.min(this.interval * Math.pow(2, this.failures), MAX_BACKOFF_MS);
    }
    return this.active ? this.interval : this.idleInterval;
  }

  async poll() {
    this.timer = null;
    if (document.hidden || this.stopped) return;
    if (this.inFlight) {
      this.schedule(this.interval);
      return;
    }
    this.inFlight = true;
    this.lastPollAt = Date.now();
    this.pollCount += 1;
    if (this.owner) this.owner.dataset.polls = String(this.pollCount);
    const headers = this.etag ? { "If-None-Match": this.etag } : {};
    const result = await api("GET", this.url, undefined, headers);
    this.inFlight = false;
    if (result.status === 304) {
      this.recovered();
    } else if (result.ok && result.data) {
      this.etag = result.headers.get("ETag");
      this.recovered();
      try {
        this.active = Boolean(this.onData(result.data));
      } catch (error) {
        console.error(error);
      }
    } else if (result.timedOut) {
      this.timedOut();
    } else {
      this.failed(result);
    }
    this.schedule(this.nextDelay());
  }

  recovered() {
    if (this.failures > 0 || this.slow) {
      this.failures = 0;
      this.slow = false;
      this.showNotice("", "");
    }
  }

  timedOut() {
    this.failures = 0;
    this.slow = true;
    this.showNotice("Connection slow, retrying… Updates resume on their own, nothing is lost.", "slow");
  }

  failed(result) {
    this.slow = false;
    this.failures += 1;
    const wait = Math.round(this.nextDelay() / 1000);
    let why;
    if (result.status === 0) why = "Cannot reach the server";
    else if (result.status === 401) why = "You are logged out (log in again in another tab)";
    else if (result.status === 403 || result.status === 404) why = "You no longer have access to this page";
    else why = "The server answered " + result.status;
    this.showNotice(why + "; retrying in " + wait + " s. Updates are paused, nothing is lost.", "error");
  }

  showNotice(text, state) {
    if (!this.notice) return;
    setText(this.notice, text);
    this.notice.dataset.state = state;
    this.notice.hidden = !text;
  }
}


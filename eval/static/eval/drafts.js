/* Never lose work (issue 10): the unsaved review form and score answers are
   kept as a draft on the server (GET/PUT/DELETE /api/tasks/<id>/draft), so a
   reload, a crash or another device finds them; leaving with unsaved work
   asks first.

   DraftKeeper({url, collect, onState})
     collect() -> the unsaved work as a JSON object, or null when none;
     changed() writes it (debounced): PUT when there is some, DELETE when
     there is none; writes go out one at a time, in order. flush() writes now
     and waits; flushOnUnload() sends it with keepalive as the page goes.
   LeaveGuard({hasUnsaved, describe, saveAll, drafts})
     warns on beforeunload while hasUnsaved(); navigate(url) asks in-page
     first (save and go / go, the draft is kept / stay). */
import { api, errorText } from "./api.js";
import { confirmDialog } from "./dialog.js";

const DEBOUNCE_MS = 800;

export class DraftKeeper {
  constructor(options) {
    this.url = options.url;
    this.collect = options.collect;
    this.onState = options.onState || function () {};
    this.timer = null;
    this.chain = Promise.resolve();
    this.written = undefined; // JSON text on the server ("" = no draft), undefined = not known
    this.updatedAt = null;
    this.failed = false;
  }

  async load() {
    const result = await api("GET", this.url);
    if (!result.ok || !result.data) return null;
    this.written = result.data.data ? JSON.stringify(result.data.data) : "";
    this.updatedAt = result.data.updated_at;
    return result.data;
  }

  changed() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.write();
    }, DEBOUNCE_MS);
  }

  /* Write what collect() says now, after any write already on its way. */
  write() {
    this.chain = this.chain.then(() => this.writeNow());
    return this.chain;
  }

  async writeNow() {
    const data = this.collect();
    const text = data ? JSON.stringify(data) : "";
    if (text === this.written) return;
    const result = data ? await api("PUT", this.url, data) : await api("DELETE", this.url);
    this.failed = !result.ok;
    // The server's reason when it gave one (a 400 says why); none only when it did not answer.
    this.error = result.ok ? "" : errorText(result);
    if (result.ok) {
      this.written = text;
      this.updatedAt = data && result.data ? result.data.updated_at : null;
    }
    this.onState({ ok: result.ok, kept: Boolean(data), updatedAt: this.updatedAt, error: result.ok ? "" : errorText(result) });
  }

  flush() {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    return this.write();
  }

  flushOnUnload() {
    if (this.timer === null && !this.failed) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const data = this.collect();
    if (data) api("PUT", this.url, data, {}, { keepalive: true });
  }

  discard() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.chain = this.chain.then(async () => {
      const result = await api("DELETE", this.url);
      if (result.ok) this.written = "";
    });
    return this.chain;
  }
}

export class LeaveGuard {
  constructor(options) {
    this.hasUnsaved = options.hasUnsaved;
    this.describe = options.describe; // () -> ["the overall rating", "B's score"]
    this.saveAll = options.saveAll; // () -> Promise<bool>
    this.drafts = options.drafts;
    this.leaving = false;
    window.addEventListener("beforeunload", (event) => {
      if (this.leaving || !this.hasUnsaved()) return;
      this.drafts.flushOnUnload();
      event.preventDefault();
      event.returnValue = ""; // the browser shows its own "leave site?" text
    });
  }

  go(url) {
    this.leaving = true;
    window.location.assign(url);
  }

  async navigate(url, where) {
    if (!url) return;
    if (!this.hasUnsaved()) {
      this.go(url);
      return;
    }
    const choice = await confirmDialog({
      title: "Unsaved changes",
      lines: [
        "Not saved yet: " + this.describe().join(", ") + ".",
        "They are kept as a draft on the server either way, and come back when you return to this task.",
      ],
      buttons: [
        { label: "Save and go to " + where, value: "save" },
        { label: "Go without saving", value: "go" },
        { label: "Stay here", value: "stay" },
      ],
      cancelValue: "stay",
    });
    if (choice === "save") {
      if (await this.saveAll()) this.go(url);
    } else if (choice === "go") {
      await this.drafts.flush();
      this.go(url);
    }
  }
}

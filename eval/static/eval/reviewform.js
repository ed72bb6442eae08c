/* The overall review of a task (rating 1-5, preferred output, notes: GET/PUT
   /api/tasks/<id>/review, keys unchanged) and whether it has unsaved changes,
   compared with what was last saved.

   new ReviewForm({form, url, status, preferred, savedAt, onChange})
   values() / isDirty() / apply(values) / reset() / save() -> Promise<bool> */
import { api, errorText } from "./api.js";
import { setText } from "./dom.js";
import { time, timeElement } from "./format.js";

export class ReviewForm {
  constructor(options) {
    this.form = options.form;
    this.url = options.url;
    this.status = options.status;
    this.preferred = options.preferred;
    this.notes = this.form.querySelector("textarea[name=notes]");
    this.onChange = options.onChange || function () {};
    // The saved preferred output until its option exists (jobs come with the first poll).
    this.pendingPreferred = this.preferred.dataset.initial || null;
    this.baseline = this.values();
    this.savedAt = options.savedAt || null; // when the review was last saved, if ever
    this.form.addEventListener("input", () => this.changed());
    this.form.addEventListener("change", () => this.changed());
  }

  changed() {
    delete this.error;
    this.onChange();
  }

  values() {
    const checked = this.form.querySelector("input[name=rating]:checked");
    return {
      rating: checked && checked.value ? Number(checked.value) : null,
      preferred_job: (this.pendingPreferred !== null ? this.pendingPreferred : this.preferred.value) || null,
      notes: this.notes.value,
    };
  }

  isDirty() {
    return JSON.stringify(this.values()) !== JSON.stringify(this.baseline);
  }

  /* The select's options changed: pick the pending value once it exists. */
  optionsChanged() {
    const wanted = this.pendingPreferred;
    if (wanted !== null && Array.from(this.preferred.options).some((o) => o.value === wanted)) {
      this.preferred.value = wanted;
      this.pendingPreferred = null;
    }
  }

  apply(values) {
    const rating = values.rating == null ? "" : String(values.rating);
    for (const radio of this.form.querySelectorAll("input[name=rating]")) radio.checked = radio.value === rating;
    this.notes.value = values.notes || "";
    this.pendingPreferred = values.preferred_job || "";
    if (!values.preferred_job) this.preferred.value = "";
    this.optionsChanged();
  }

  reset() {
    this.apply(this.baseline);
  }

  /* Press `n` (1-5) with no output selected. */
  rate(digit) {
    const radio = this.form.querySelector('input[name=rating][value="' + digit + '"]');
    if (radio && !radio.checked) {
      radio.checked = true;
      this.changed();
    }
  }

  async save() {
    const body = this.values();
    setText(this.status, "Saving…");
    const result = await api("PUT", this.url, body);
    if (result.ok && result.data) {
      this.baseline = body;
      this.savedAt = result.data.updated_at;
      delete this.error;
      this.status.dataset.saved = "1";
      return true;
    }
    this.error = errorText(result);
    delete this.status.dataset.saved;
    return false;
  }

  /* The status line: saved / unsaved (and the draft) / the last error. */
  paint(draft) {
    const status = this.status;
    if (this.error) {
      setText(status, "Not saved: " + this.error);
      return;
    }
    if (!this.isDirty() && !draft.otherUnsaved) {
      status.replaceChildren();
      if (this.savedAt) {
        status.append("Saved ", timeElement(this.savedAt));
      }
      return;
    }
    delete status.dataset.saved;
    let text = this.isDirty() ? "Unsaved changes" : "Unsaved scores";
    if (draft.error) text += " · the draft was not kept (" + draft.error + "); keep this tab open";
    else if (draft.updatedAt) text += " · draft kept " + time(draft.updatedAt);
    setText(status, text);
  }
}

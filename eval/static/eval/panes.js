/* Reading outputs side by side: which output is selected (j/k), and output
   panes that scroll together (a toggle).

   new Selection(cards, onChange) — next() / previous() / clear() /
     current(); the selected card gets class "selected" and the focus (a
     visible ring), and is scrolled into view. follow(container): moving the
     focus into a card (a click, Tab) selects it.
   new ScrollLock(container, checkbox) — while checked, scrolling one
     output pane scrolls the others to the same place (by proportion, as
     outputs differ in length). */

export class Selection {
  constructor(cards, onChange) {
    this.cards = cards;
    this.onChange = onChange || function () {};
    this.id = null;
  }

  current() {
    const card = this.id ? this.cards.get(this.id) : null;
    if (!card || !this.cards.visible().includes(card)) return null;
    return card;
  }

  step(delta) {
    const visible = this.cards.visible();
    if (!visible.length) return null;
    const index = visible.indexOf(this.current());
    let next;
    if (index < 0) next = delta > 0 ? 0 : visible.length - 1;
    else next = Math.min(visible.length - 1, Math.max(0, index + delta));
    this.select(visible[next]);
    return visible[next];
  }

  next() {
    return this.step(1);
  }

  previous() {
    return this.step(-1);
  }

  /* focus: false when the focus is already inside the card (a click, Tab). */
  select(card, focus = true) {
    for (const other of this.cards.all()) {
      if (other !== card) other.el.classList.remove("selected");
    }
    this.id = card ? card.job.id : null;
    if (card) {
      card.el.classList.add("selected");
      if (focus) {
        card.el.focus({ preventScroll: true });
        card.el.scrollIntoView({ block: "nearest", inline: "nearest" });
      }
    }
    this.onChange(card);
  }

  /* The card the focus moved into (a click or Tab) becomes the selected one,
     so 1-5 always score the output the reviewer is in. */
  follow(container) {
    container.addEventListener("focusin", (event) => {
      const el = event.target.closest(".job-card");
      const card = el ? this.cards.get(el.dataset.jobId) : null;
      if (card && card.job.id !== this.id) this.select(card, false);
    });
  }

  clear() {
    if (this.id === null) return false;
    this.select(null);
    if (document.activeElement && document.activeElement.classList.contains("job-card")) {
      document.activeElement.blur();
    }
    return true;
  }
}

export class ScrollLock {
  constructor(container, checkbox) {
    this.container = container;
    this.checkbox = checkbox;
    this.expected = new WeakMap(); // pane -> the scrollTop we set ourselves
    try {
      checkbox.checked = window.localStorage.getItem("eval.scrollLock") === "1";
    } catch (error) {
      /* no storage: off */
    }
    checkbox.addEventListener("change", () => this.remember());
    // scroll does not bubble: listen in the capture phase.
    container.addEventListener("scroll", (event) => this.onScroll(event.target), true);
  }

  toggle() {
    this.checkbox.checked = !this.checkbox.checked;
    this.remember();
  }

  remember() {
    try {
      window.localStorage.setItem("eval.scrollLock", this.checkbox.checked ? "1" : "0");
    } catch (error) {
      /* the choice lasts for this page */
    }
  }

  onScroll(pane) {
    if (!this.checkbox.checked || !pane.classList || !pane.classList.contains("job-output")) return;
    const mine = this.expected.get(pane);
    if (mine !== undefined && Math.abs(mine - pane.scrollTop) < 2) {
      this.expected.delete(pane); // the echo of our own move
      return;
    }
    const range = pane.scrollHeight - pane.clientHeight;
    const ratio = range > 0 ? pane.scrollTop / range : 0;
    for (const other of this.container.querySelectorAll(".job-output")) {
      if (other === pane || !other.offsetParent) continue;
      const target = Math.round(ratio * (other.scrollHeight - other.clientHeight));
      if (Math.abs(other.scrollTop - target) < 2) continue;
      this.expected.set(other, target);
      other.scrollTop = target;
    }
  }
}

/* An in-page confirm: a modal <dialog> with a title, lines of text and a few
   buttons. Keyboard first: the first button has the focus (Enter picks it),
   Tab moves between buttons, Esc answers `cancelValue`. Text is inserted as
   text.

   confirmDialog({title, lines: [...], buttons: [{label, value}], cancelValue})
     -> Promise of the chosen button's value
   dialogOpen() -> true while one is shown (page shortcuts stand down). */

let current = null; // {dialog, resolve, cancelValue}

function close(value) {
  if (!current) return;
  const { dialog, resolve } = current;
  current = null;
  if (dialog.open) dialog.close();
  dialog.remove();
  resolve(value);
}

export function confirmDialog(options) {
  close(current ? current.cancelValue : undefined); // one at a time
  const dialog = document.createElement("dialog");
  dialog.className = "confirm-dialog";
  dialog.setAttribute("aria-labelledby", "confirm-dialog-title");
  const title = document.createElement("h2");
  title.id = "confirm-dialog-title";
  title.textContent = options.title || "Are you sure?";
  dialog.appendChild(title);
  for (const line of options.lines || []) {
    const p = document.createElement("p");
    p.textContent = line;
    dialog.appendChild(p);
  }
  const row = document.createElement("div");
  row.className = "confirm-buttons";
  (options.buttons || [{ label: "OK", value: true }]).forEach((spec, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = spec.label;
    button.dataset.value = String(spec.value);
    if (index === 0) button.className = "primary";
    button.addEventListener("click", () => close(spec.value));
    row.appendChild(button);
  });
  dialog.appendChild(row);
  const hint = document.createElement("p");
  hint.className = "muted small";
  hint.textContent = "Enter picks the highlighted button, Tab moves, Esc cancels.";
  dialog.appendChild(hint);
  document.body.appendChild(dialog);
  return new Promise((resolve) => {
    current = { dialog: dialog, resolve: resolve, cancelValue: options.cancelValue };
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      close(options.cancelValue);
    });
    dialog.showModal();
    row.firstElementChild.focus();
  });
}

export function dialogOpen() {
  return current !== null;
}


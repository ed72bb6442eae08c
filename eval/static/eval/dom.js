/* Small DOM helpers shared by every page. Text is always inserted as text
   (textContent), never as HTML. */

export function byId(id) {
  return document.getElementById(id);
}

/* Only touches the node when the text changed (keeps a reader's selection). */
export function setText(node, text) {
  text = text == null ? "" : String(text);
  if (node.textContent !== text) node.textContent = text;
}

/* <tag class="className">text</tag>; text and className optional. */
export function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text != null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

/* An element from attributes ("text" and "className" are properties; false,
   null and undefined are left out) and children. */
export function node(tag, attrs, children) {
  const made = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") made.textContent = String(value);
    else if (name === "className") made.className = value;
    else made.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children || []) if (child) made.append(child);
  return made;
}

/* A table cell: <td class title>text</td>. */
export function cell(text, className, title) {
  const td = el("td", text, className);
  if (title) td.title = title;
  return td;
}

export function show(node, visible) {
  node.hidden = !visible;
}

/* Is the key for a field (typing, choosing) rather than a page shortcut?
   Radio buttons and checkboxes take no text: shortcuts still work there. */
export function typingInField(event) {
  const t = event.target;
  if (!t || !t.tagName) return false;
  if (t.tagName === "INPUT" && ["radio", "checkbox", "button", "submit", "reset"].includes(t.type)) return false;
  return t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName);
}

/* Put text on the clipboard (a hidden textarea where the Clipboard API is
   refused, e.g. over plain http). */
export async function copyText(text) {
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

/* A short note in `target` (a role=status toast) for a key that did nothing
   visible, hidden again after a few seconds. */
export function say(target, text) {
  if (!target || !text) return;
  setText(target, text);
  target.hidden = false;
  clearTimeout(target.sayTimer);
  target.sayTimer = setTimeout(() => (target.hidden = true), 3000);
}

/* Messages (a job's messages sent, a template's preview) as <li> items: the role, then
   the text as text (never HTML). */
export function messageItems(messages) {
  return messages.map((message) => {
    const item = el("li", null, "sent-" + message.role);
    item.append(el("strong", message.role), el("div", message.content, "text-view"));
    return item;
  });
}

/* Markdown for prompts, references and model outputs, with a raw-text toggle.

   Needs vendor/marked.min.js and vendor/purify.min.js loaded first (see
   vendor/README.md). Two layers keep model output and task text from ever
   becoming live HTML:
   1. marked never passes HTML through: raw HTML in the Markdown (block or
      inline) is rendered as escaped text, images become plain links;
   2. DOMPurify then keeps only the tags Markdown produces (no script, style,
      img, iframe, form, event handlers, javascript: links), and the result is
      inserted as a DOM fragment, never through innerHTML.
   The site's Content-Security-Policy (no inline script) is a third.

   Exports:
     renderMarkdown(el, text)  sanitised Markdown into el (class "md")
     renderRaw(el, text)       the text as text into el (class "raw")
     showText(el, text)        either, by the page's mode; el is remembered
                               and re-rendered when the mode changes
     upgradeText(root)         showText() every [data-markdown] element in
                               root, using its current text as the source
     rawMode() / setRawMode(b) the page-wide mode (kept in localStorage)
     bindRawToggle(button)     a button that flips the mode (its .toggle-label
                               child, or itself, says what a press does)
   A mode change fires "eval:textmode" on document (detail: {raw}). */

const STORAGE_KEY = "eval.rawText";
const ALLOWED_TAGS = [
  "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li",
  "ol", "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
];
const ALLOWED_ATTR = ["href", "title", "align", "start", "class"];
const sources = new WeakMap(); // element -> its text
const views = new Set(); // elements shown with showText (WeakRef-free: pages are short-lived)

function escapeHtml(text) {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

let parser = null;
let purifier = null;

function setUp() {
  if (parser) return true;
  if (!window.marked || !window.DOMPurify) return false;
  parser = new window.marked.Marked({
    gfm: true,
    breaks: true, // a model's single line break is meant as one
    renderer: {
      html(token) {
        const text = escapeHtml(token.text.replace(/\n+$/, ""));
        return token.block ? '<p class="md-html">' + text + "</p>\n" : text;
      },
      checkbox(token) {
        return token.checked ? "[x] " : "[ ] "; // a task list item, as text
      },
      image(token) {
        const label = "image: " + (token.text || token.href);
        return '<a href="' + escapeHtml(token.href) + '">' + escapeHtml(label) + "</a>";
      },
    },
  });
  purifier = window.DOMPurify(window);
  purifier.addHook("uponSanitizeAttribute", function (node, data) {
    if (data.attrName === "class") {
      // Only Markdown's own classes: output must not dress up as page UI.
      data.attrValue = data.attrValue
        .split(/\s+/)
        .filter((name) => /^(language-[\w+#-]+|md-html)$/.test(name))
        .join(" ");
      if (!data.attrValue) data.keepAttr = false;
    }
  });
  purifier.addHook("afterSanitizeAttributes", function (node) {
    if (node.tagName === "A") {
      node.setAttribute("rel", "noopener noreferrer nofollow");
      node.setAttribute("target", "_blank");
    }
  });
  return true;
}

function sanitisedFragment(text) {
  const html = parser.parse(String(text));
  const fragment = purifier.sanitize(html, {
    ALLOWED_TAGS: ALLOWED_TAGS,
    ALLOWED_ATTR: ALLOWED_ATTR,
    ALLOW_DATA_ATTR: false,
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#|\/(?!\/))/i,
    RETURN_DOM_FRAGMENT: true,
  });
  // marked puts a newline between blocks; as text nodes they would only
  // pad textContent (and confuse "is this the same text?" checks).
  for (const node of Array.from(fragment.childNodes)) {
    if (node.nodeType === Node.TEXT_NODE && !node.textContent.trim()) node.remove();
  }
  return fragment;
}

export function renderRaw(el, text) {
  el.classList.remove("md");
  el.classList.add("raw");
  text = text == null ? "" : String(text);
  if (el.childNodes.length === 1 && el.firstChild.nodeType === Node.TEXT_NODE) {
    const current = el.firstChild.data;
    if (current === text) return;
    if (current && text.startsWith(current)) {
      el.firstChild.appendData(text.slice(current.length)); // streaming: keeps a selection
      return;
    }
  }
  el.textContent = text;
}

export function renderMarkdown(el, text) {
  if (!setUp()) {
    renderRaw(el, text); // the vendor files did not load: text is always safe
    return;
  }
  el.classList.remove("raw");
  el.classList.add("md");
  el.replaceChildren(sanitisedFragment(text == null ? "" : text));
}

export function rawMode() {
  try {
    return window.localStorage.getItem(STORAGE_KEY) === "1";
  } catch (error) {
    return false;
  }
}

export function showText(el, text) {
  text = text == null ? "" : String(text);
  const raw = rawMode();
  const mode = raw ? "raw" : "md";
  if (sources.get(el) === text && el.dataset.textMode === mode) return;
  sources.set(el, text);
  el.dataset.textMode = mode;
  views.add(el);
  if (raw) renderRaw(el, text);
  else renderMarkdown(el, text);
}

function sourceOf(el) {
  return sources.has(el) ? sources.get(el) : el.textContent;
}

export function setRawMode(raw) {
  try {
    window.localStorage.setItem(STORAGE_KEY, raw ? "1" : "0");
  } catch (error) {
    /* private mode: the choice lasts for this page only */
  }
  for (const el of Array.from(views)) {
    if (!el.isConnected) {
      views.delete(el);
      continue;
    }
    showText(el, sources.get(el));
  }
  for (const button of toggles) paintToggle(button);
  document.dispatchEvent(new CustomEvent("eval:textmode", { detail: { raw: raw } }));
}

const toggles = new Set();

/* The button says what pressing it does; aria-pressed says raw text is on. */
function paintToggle(button) {
  const raw = rawMode();
  button.setAttribute("aria-pressed", raw ? "true" : "false");
  const label = button.querySelector(".toggle-label") || button;
  label.textContent = raw ? "Show formatted text" : "Show raw text";
  button.title = raw ? "Showing the raw text; press to format Markdown" : "Showing formatted Markdown; press for the raw text";
}

export function bindRawToggle(button) {
  toggles.add(button);
  paintToggle(button);
  button.addEventListener("click", () => setRawMode(!rawMode()));
}

export function upgradeText(root) {
  for (const el of (root || document).querySelectorAll("[data-markdown]")) {
    showText(el, sourceOf(el));
  }
}


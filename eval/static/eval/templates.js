/* /templates/: the saved templates, an editor, and a live preview of the unsaved
   draft against a chosen task (the draft preview API, a moment after each
   change). Saving posts the draft: a new name's version 1, else the name's next
   version. Every text is inserted as text. */
import "./site.js";
import { api, errorText } from "./api.js";
import { byId as $, messageItems, setText } from "./dom.js";

const PREVIEW_DELAY_MS = 300;

document.addEventListener("DOMContentLoaded", function () {
  const root = document.getElementById("templates-page");
  if (!root) return;
  const url = root.dataset.templatesUrl;
  const previewUrl = root.dataset.previewUrl;
  const messages = $("template-messages");
  let timer = null;
  let asked = 0;

  function addMessage(role, content) {
    const node = $("message-template").content.firstElementChild.cloneNode(true);
    node.querySelector(".message-role").value = role;
    node.querySelector(".message-content").value = content;
    node.querySelector(".message-remove").addEventListener("click", () => {
      node.remove();
      schedule();
    });
    messages.appendChild(node);
    return node;
  }

  function draft() {
    return {
      name: $("template-name").value.trim(),
      system: $("template-system").value,
      messages: Array.from(messages.querySelectorAll(".template-message")).map((node) => ({
        role: node.querySelector(".message-role").value,
        content: node.querySelector(".message-content").value,
      })),
    };
  }

  function showMessages(list) {
    $("preview").replaceChildren(...messageItems(list));
  }

  async function preview() {
    const task = $("preview-task").value;
    const body = draft();
    if (!task || !body.messages.length) return;
    const mine = ++asked;
    const result = await api("POST", previewUrl, { task: Number(task), system: body.system, messages: body.messages });
    if (mine !== asked) return; // a newer preview is on its way
    const error = $("preview-error");
    if (result.ok) {
      error.hidden = true;
      showMessages(result.data.messages);
    } else {
      setText(error, errorText(result));
      error.hidden = false;
      $("preview").replaceChildren();
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(preview, PREVIEW_DELAY_MS);
  }

  function load(template) {
    $("template-name").value = template.name;
    $("template-system").value = template.system;
    messages.replaceChildren();
    for (const message of template.messages) addMessage(message.role, message.content);
    schedule();
  }

  async function refresh() {
    const result = await api("GET", url);
    if (!result.ok) return;
    const list = result.data.templates;
    $("templates-empty").hidden = list.length > 0;
    $("templates-list").replaceChildren(
      ...list.map((template) => {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = template.name + " v" + template.version + (template.used ? " · used" : "");
        button.title = "Load into the editor (saving makes the next version)";
        button.addEventListener("click", () => load(template));
        item.appendChild(button);
        return item;
      })
    );
  }

  async function save(event) {
    event.preventDefault();
    const status = $("template-status");
    const result = await api("POST", url, draft());
    if (result.ok) {
      setText(status, "Saved " + result.data.name + " v" + result.data.version + ".");
      status.classList.remove("error");
      refresh();
    } else {
      setText(status, "Not saved: " + errorText(result));
      status.classList.add("error");
    }
  }

  $("template-add").addEventListener("click", () => {
    addMessage("user", "").querySelector(".message-content").focus();
  });
  $("template-form").addEventListener("input", schedule);
  $("template-form").addEventListener("change", schedule);
  $("preview-task").addEventListener("change", schedule);
  if (root.dataset.canSave) $("template-form").addEventListener("submit", save);
  addMessage("user", "{{ prompt }}");
  schedule();
  refresh();
});

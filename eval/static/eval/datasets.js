/* Datasets (/datasets/): the list with each dataset's versions, and an upload
   that is previewed before anything is written.

   Upload: a file dropped on the zone or chosen in the field; a CSV's header is
   read here (the first line, in the browser) to fill the column selects, so a
   file whose columns are named otherwise maps them (id, prompt, reference,
   title; the rest go to metadata). "Preview" sends the file with dry_run=1:
   the answer lists every bad line and the first records as they will be
   stored, with the counts the import would add, change and mark missing.
   "Import" sends it again for real; it is offered only for a file without a
   bad line. Text from the server is always inserted as text. */
import "./site.js";
import { api, cookie, errorText, urlFor } from "./api.js";
import { byId as $, el, setText } from "./dom.js";
import { plural, time } from "./format.js";

const root = $("datasets-page");

const listUrl = root.dataset.datasetsUrl;
const versionsUrl = root.dataset.versionsUrl; // "__id__": the dataset's name
const importsUrl = root.dataset.importsUrl;
const maxBytes = Number(root.dataset.maxBytes) || 0;
const UPLOAD_TIMEOUT_MS = 10 * 60 * 1000; // a 100 MB file on a slow link
const MAPPED = ["id", "prompt", "reference", "title"];
const ACTIONS = { add: "new", change: "changed", restore: "back from missing", unchanged: "unchanged" };
const state = { file: null, header: null, previewed: null, busy: false };

function status(text, isError) {
  const box = $("upload-status");
  setText(box, text || "");
  box.classList.toggle("error", Boolean(isError));
}

/* --- the list ------------------------------------------------------------------- */

async function loadList() {
  const result = await api("GET", listUrl);
  if (!result.ok) {
    status(errorText(result), true);
    return;
  }
  const rows = result.data.datasets;
  const body = $("datasets-table").querySelector("tbody");
  body.replaceChildren();
  const names = $("dataset-names");
  names.replaceChildren();
  for (const dataset of rows) {
    const row = document.createElement("tr");
    const name = el("td");
    const link = el("button", dataset.name, "link-button");
    link.type = "button";
    link.addEventListener("click", () => showVersions(dataset.name));
    name.append(link);
    row.append(
      name,
      el("td", String(dataset.tasks)),
      el("td", String(dataset.missing)),
      el("td", String(dataset.versions)),
      el("td", dataset.last_import_at ? time(dataset.last_import_at) : "—"),
    );
    body.append(row);
    const option = document.createElement("option");
    option.value = dataset.name;
    names.append(option);
  }
  $("datasets-empty").hidden = rows.length > 0;
  if (root.dataset.selected && rows.some((d) => d.name === root.dataset.selected)) showVersions(root.dataset.selected);
}

async function showVersions(name) {
  const result = await api("GET", urlFor(versionsUrl, name));
  const box = $("versions");
  setText($("versions-title"), "Versions of " + name);
  const body = $("versions-table").querySelector("tbody");
  body.replaceChildren();
  if (!result.ok) {
    body.append(rowOf([errorText(result)]));
  } else if (!result.data.versions.length) {
    body.append(rowOf(["No uploads yet (its tasks came from elsewhere)."]));
  }
  for (const v of result.ok ? result.data.versions : []) {
    body.append(
      rowOf([
        "v" + v.version,
        time(v.created_at),
        v.created_by || "—",
        v.file_name || "—",
        v.sha256 ? v.sha256.slice(0, 12) : "—",
        v.mode,
        v.added,
        v.changed,
        v.missing,
        v.outputs,
      ]),
    );
  }
  box.hidden = false;
}

function rowOf(cells) {
  const row = document.createElement("tr");
  for (const cell of cells) row.append(el("td", String(cell)));
  return row;
}

/* --- choosing a file -------------------------------------------------------------- */

function formatOf(name) {
  const lower = (name || "").toLowerCase();
  if (lower.endsWith(".csv")) return "csv";
  if (lower.endsWith(".json")) return "json";
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) return "jsonl";
  return "";
}

/* The fields of a CSV's first record (its header), quotes and doubled quotes understood. */
function csvHeader(text) {
  const fields = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      fields.push(field.trim());
      field = "";
    } else if (c === "\n" || c === "\r") break;
    else field += c;
  }
  fields.push(field.trim());
  return fields.map((name, n) => (n === 0 ? name.replace(/^\ufeff/, "") : name));
}

async function chooseFile(file) {
  resetPreview();
  state.file = file || null;
  state.header = null;
  setText($("file-name"), file ? file.name + " (" + sizeText(file.size) + ")" : "");
  $("mapping").hidden = true;
  if (!file) return updateButtons();
  if (!formatOf(file.name)) {
    status("Choose a .jsonl, .csv or .json file.", true);
    state.file = null;
    return updateButtons();
  }
  if (maxBytes && file.size > maxBytes) {
    status("This file is larger than the " + sizeText(maxBytes) + " an upload may be.", true);
    state.file = null;
    return updateButtons();
  }
  status("");
  if (formatOf(file.name) === "csv") {
    state.header = csvHeader(await file.slice(0, 65536).text());
    fillMapping(state.header);
  }
  updateButtons();
}

function sizeText(bytes) {
  if (bytes >= 1e6) return (bytes / 1e6).toFixed(1) + " MB";
  if (bytes >= 1e3) return (bytes / 1e3).toFixed(1) + " KB";
  return bytes + " bytes";
}

function fillMapping(header) {
  for (const key of MAPPED) {
    const select = $("map-" + key);
    select.replaceChildren();
    const none = el("option", key === "id" || key === "prompt" ? "(choose a column)" : "(none)");
    none.value = "";
    select.append(none);
    for (const column of header) {
      const option = el("option", column);
      option.value = column;
      select.append(option);
    }
    select.value = header.includes(key) ? key : "";
  }
  $("mapping").hidden = false;
}

/* {"id": column, ...} for the columns chosen under another name; null when the header already says it. */
function mapping() {
  if (!state.header) return null;
  const chosen = {};
  let renamed = false;
  for (const key of MAPPED) {
    const column = $("map-" + key).value;
    if (!column) continue;
    chosen[key] = column;
    renamed = renamed || column !== key;
  }
  return renamed ? chosen : null;
}

function updateButtons() {
  const ready = Boolean(state.file) && $("upload-dataset").value.trim() !== "" && !state.busy;
  $("preview-button").disabled = !ready;
  const clean = state.previewed && state.previewed.error_count === 0;
  $("import-button").disabled = !(ready && clean);
}

/* --- preview and import ------------------------------------------------------------ */

function mode() {
  const checked = document.querySelector("input[name=mode]:checked");
  return checked ? checked.value : "append";
}

async function send(dryRun) {
  const form = new FormData();
  form.append("file", state.file, state.file.name);
  form.append("mode", mode());
  if (dryRun) form.append("dry_run", "1");
  const columns = mapping();
  if (columns) form.append("mapping", JSON.stringify(columns));
  const name = $("upload-dataset").value.trim();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), UPLOAD_TIMEOUT_MS);
  try {
    const response = await fetch(urlFor(importsUrl, name), {
      method: "POST",
      body: form,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": cookie("csrftoken") },
      signal: controller.signal,
    });
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    return { ok: response.ok, status: response.status, data: data };
  } catch (error) {
    return { ok: false, status: 0, data: null, timedOut: controller.signal.aborted, write: !dryRun };
  } finally {
    clearTimeout(timer);
  }
}

async function preview(event) {
  event.preventDefault();
  if (!state.file || state.busy) return;
  state.busy = true;
  resetPreview();
  updateButtons();
  status("Checking the whole file…");
  const result = await send(true);
  state.busy = false;
  const report = result.ok ? result.data : result.status === 400 && result.data && result.data.error.errors ? result.data.error : null;
  if (!report) {
    status(errorText(result), true);
    updateButtons();
    return;
  }
  state.previewed = report;
  showPreview(report, result.ok);
  status(result.ok ? "Nothing is written until you import." : "This file has bad lines: nothing can be imported.", !result.ok);
  updateButtons();
}

function showPreview(report, clean) {
  const counts = clean
    ? "Importing would add " +
      plural(report.added, "task") +
      ", change " +
      report.changed +
      ", mark " +
      report.missing +
      " missing and leave " +
      report.unchanged +
      " unchanged" +
      (report.outputs ? "; " + plural(report.outputs, "output") + " new or changed" : "") +
      "."
    : "";
  setText($("preview-counts"), counts);
  const errors = report.errors || [];
  const list = $("preview-errors");
  list.replaceChildren();
  for (const error of errors) {
    list.append(el("li", (error.line != null ? "Line " + error.line + ": " : "") + error.message));
  }
  const more = report.error_count > errors.length ? " (the first " + errors.length + " listed)" : "";
  setText($("preview-errors-title"), errors.length ? plural(report.error_count, "bad line") + more + ":" : "");
  $("preview-errors-box").hidden = errors.length === 0;
  const body = $("preview-table").querySelector("tbody");
  body.replaceChildren();
  for (const record of report.preview || []) body.append(previewRow(record));
  $("preview").hidden = false;
}

function previewRow(record) {
  const row = document.createElement("tr");
  row.append(el("td", record.id), el("td", ACTIONS[record.action] || record.action, "action-" + record.action));
  const prompt = el("td", null, "text-cell");
  if (record.messages) {
    const turns = el("ol", null, "conversation");
    for (const turn of record.messages) {
      const item = el("li", null, "turn turn-" + turn.role);
      item.append(el("span", turn.role, "turn-role"), el("div", turn.content, "text-view"));
      turns.append(item);
    }
    prompt.append(turns);
  } else {
    prompt.append(el("div", record.prompt, "text-view"));
  }
  const metadata = Object.keys(record.metadata || {}).length ? JSON.stringify(record.metadata) : "";
  const outputs = (record.outputs || []).map((o) => o.label + ": " + o.text).join("\n");
  row.append(prompt, el("td", record.reference, "text-cell"), el("td", record.title), el("td", metadata, "text-cell"));
  row.append(el("td", outputs, "text-cell"));
  return row;
}

function resetPreview() {
  state.previewed = null;
  $("preview").hidden = true;
  $("import-result").hidden = true;
  updateButtons();
}

async function doImport() {
  if (!state.previewed || state.previewed.error_count || state.busy) return;
  state.busy = true;
  updateButtons();
  status("Importing…");
  const result = await send(false);
  state.busy = false;
  if (!result.ok) {
    status(errorText(result), true);
    updateButtons();
    return;
  }
  const r = result.data;
  const what = r.version
    ? "Imported as version " + r.version + " of " + $("upload-dataset").value.trim() + ": "
    : "Nothing changed: ";
  setText(
    $("import-result"),
    what + plural(r.added, "task") + " added, " + r.changed + " changed, " + r.missing + " marked missing, " +
      r.unchanged + " unchanged" + (r.outputs ? ", " + plural(r.outputs, "output") + " imported" : "") + ".",
  );
  $("import-result").hidden = false;
  $("preview").hidden = true;
  state.previewed = null;
  // The file is in: the form starts over rather than invite the same file again.
  state.file = null;
  state.header = null;
  $("upload-file").value = "";
  setText($("file-name"), "");
  $("mapping").hidden = true;
  status("");
  updateButtons();
  await loadList();
  showVersions($("upload-dataset").value.trim());
}

/* --- wiring -------------------------------------------------------------------------- */

const zone = $("drop-zone");
zone.addEventListener("dragover", function (event) {
  event.preventDefault();
  zone.classList.add("dragging");
});
zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
zone.addEventListener("drop", function (event) {
  event.preventDefault();
  zone.classList.remove("dragging");
  const file = event.dataTransfer && event.dataTransfer.files[0];
  if (file) chooseFile(file);
});
$("upload-file").addEventListener("change", (event) => chooseFile(event.target.files[0]));
$("upload-dataset").addEventListener("input", function () {
  resetPreview();
  updateButtons();
});
for (const input of document.querySelectorAll("input[name=mode]")) input.addEventListener("change", resetPreview);
for (const key of MAPPED) $("map-" + key).addEventListener("change", resetPreview);
$("upload-form").addEventListener("submit", preview);
$("import-button").addEventListener("click", doImport);
$("cancel-button").addEventListener("click", function () {
  resetPreview();
  $("upload-file").value = "";
  chooseFile(null);
  status("");
});
loadList();

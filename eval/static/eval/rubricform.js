/* Form controls for a rubric's questions (rating, choice, boolean, text),
   and reading and writing their answers as {key: value}. Used by the score
   panel of each output (scores.js); names are unique per `scope` so several
   panels live on one page.

   build(container, questions, {scope, primary})
   read(container, questions)  -> answers (empty ones left out)
   write(container, questions, answers)
   field(container, key)       -> the question's wrapper */

function range(low, high) {
  const out = [];
  for (let n = low; n <= high; n++) out.push(n);
  return out;
}

function choiceOf(question) {
  return question.type === "rating" || question.type === "boolean";
}

function radios(wrap, question, name) {
  const [low, high] = question.scale || [1, 5];
  const values = question.type === "boolean" ? ["true", "false"] : range(low, high);
  for (const value of values) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio";
    input.name = name;
    input.value = String(value);
    label.append(input, " " + (value === "true" ? "yes" : value === "false" ? "no" : value));
    wrap.appendChild(label);
  }
}

function select(wrap, question, name) {
  const el = document.createElement("select");
  el.name = name;
  for (const option of [""].concat(question.options || [])) {
    const item = document.createElement("option");
    item.value = option;
    item.textContent = option || "–";
    el.appendChild(item);
  }
  wrap.appendChild(el);
}

function control(question, scope, primary) {
  const name = "q-" + scope + "-" + question.key;
  const wrap = document.createElement(choiceOf(question) ? "fieldset" : "label");
  wrap.className = "score-q score-" + question.type + (question === primary ? " primary" : "");
  wrap.dataset.key = question.key;
  const caption = document.createElement(choiceOf(question) ? "legend" : "span");
  caption.className = "score-label";
  caption.textContent = question.label + (question.required ? " *" : "");
  wrap.appendChild(caption);
  if (choiceOf(question)) {
    radios(wrap, question, name);
  } else if (question.type === "choice") {
    select(wrap, question, name);
  } else {
    const area = document.createElement("textarea");
    area.name = name;
    area.rows = 2;
    wrap.appendChild(area);
  }
  return wrap;
}

export function build(container, questions, options) {
  for (const question of questions) container.appendChild(control(question, options.scope, options.primary));
}

export function field(container, key) {
  return container.querySelector('.score-q[data-key="' + key + '"]');
}

function readOne(wrap, question) {
  if (!wrap) return null;
  if (choiceOf(question)) {
    const checked = wrap.querySelector("input:checked");
    if (!checked) return null;
    return question.type === "rating" ? Number(checked.value) : checked.value === "true";
  }
  return wrap.querySelector("select, textarea").value;
}

export function read(container, questions) {
  const answers = {};
  for (const question of questions) {
    const value = readOne(field(container, question.key), question);
    if (value !== null && value !== "") answers[question.key] = value;
  }
  return answers;
}

export function write(container, questions, answers) {
  answers = answers || {};
  for (const question of questions) {
    const wrap = field(container, question.key);
    if (!wrap) continue;
    const value = answers[question.key];
    if (choiceOf(question)) {
      for (const input of wrap.querySelectorAll("input")) input.checked = value != null && input.value === String(value);
    } else {
      wrap.querySelector("select, textarea").value = value == null ? "" : value;
    }
    wrap.classList.remove("invalid");
  }
}

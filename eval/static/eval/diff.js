/* Word diff between two outputs (longest common subsequence), rendered as
   text nodes inside <ins>/<del>: model output never becomes HTML. */

const MAX_CELLS = 4000000;

function tokens(text, byLine) {
  return byLine ? text.split(/(?<=\n)/) : text.match(/\s+|[^\s]+/g) || [];
}

/* Returns [[op, text], ...] with op one of "=", "-", "+". */
export function diff(a, b) {
  let ta = tokens(a, false);
  let tb = tokens(b, false);
  if (ta.length * tb.length > MAX_CELLS) {
    ta = tokens(a, true);
    tb = tokens(b, true);
  }
  let start = 0;
  while (start < ta.length && start < tb.length && ta[start] === tb[start]) start++;
  let endA = ta.length;
  let endB = tb.length;
  while (endA > start && endB > start && ta[endA - 1] === tb[endB - 1]) {
    endA--;
    endB--;
  }
  const out = [];
  if (start) out.push(["=", ta.slice(0, start).join("")]);
  const midA = ta.slice(start, endA);
  const midB = tb.slice(start, endB);
  const n = midA.length;
  const m = midB.length;
  if (n * m > MAX_CELLS) {
    if (n) out.push(["-", midA.join("")]);
    if (m) out.push(["+", midB.join("")]);
  } else {
    const width = m + 1;
    const table = new Uint32Array((n + 1) * width);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        table[i * width + j] =
          midA[i] === midB[j]
            ? table[(i + 1) * width + j + 1] + 1
            : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && midA[i] === midB[j]) {
        push(out, "=", midA[i]);
        i++;
        j++;
      } else if (j < m && (i === n || table[i * width + j + 1] >= table[(i + 1) * width + j])) {
        push(out, "+", midB[j]);
        j++;
      } else {
        push(out, "-", midA[i]);
        i++;
      }
    }
  }
  if (endA < ta.length) push(out, "=", ta.slice(endA).join(""));
  return out;
}

function push(out, op, text) {
  const last = out[out.length - 1];
  if (last && last[0] === op) last[1] += text;
  else out.push([op, text]);
}

export function renderDiff(target, parts) {
  target.replaceChildren();
  for (const [op, text] of parts) {
    const el = document.createElement(op === "=" ? "span" : op === "+" ? "ins" : "del");
    el.textContent = text;
    target.appendChild(el);
  }
}


/* The results page (/results/): tables and charts from the results API,
   drawn here as HTML tables and inline SVG (no library, no CDN). Every figure
   is printed with its n; colour is never the only carrier: ratings are
   printed beside their bars, matrix cells carry their percentage, panels
   their labels. Text from the server is inserted as text, never as HTML. */
import "./site.js";
import { api, errorText } from "./api.js";
import { cell, node } from "./dom.js";
import { count as formatCount } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";

// --- small helpers ------------------------------------------------------------------------

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function isNum(x) {
  return typeof x === "number" && isFinite(x);
}

function fixed(x, digits) {
  return isNum(x) ? x.toFixed(digits) : "–";
}

function pct(x) {
  return isNum(x) ? Math.round(x * 100) + "%" : "–";
}

/* "0.62 [0.41, 0.80]" or "62% [41, 80]": a point with its 95% interval. */
function withInterval(point, low, high, format) {
  if (!isNum(point)) return "–";
  const f = format || ((x) => fixed(x, 2));
  if (!isNum(low) || !isNum(high)) return f(point);
  if (f === pct) return pct(point) + " [" + Math.round(low * 100) + "–" + Math.round(high * 100) + "%]";
  return f(point) + " [" + f(low) + ", " + f(high) + "]";
}

function nText(n) {
  return "n = " + (isNum(n) ? n : 0);
}

/* A table in its own sideways-scrolling box, titled above the box (a
   caption would scroll away with the table on a phone). */
// caption names the table (and its scroll region); shown as a title unless the panel's heading says it.
function scrollTable(caption, head, rows, className, titled = true) {
  const table = node("table", { className: "results-table " + (className || ""), "aria-label": caption || null }, [
    node("thead", {}, [node("tr", {}, head.map((h) => node("th", { scope: "col", className: h.num ? "num" : "", text: h.label || h })))]),
    node("tbody", {}, rows),
  ]);
  const box = node("div", { className: "table-box", tabindex: "0", role: "region", "aria-label": caption || "table" }, [table]);
  return node("div", {}, [caption && titled ? node("h3", { className: "table-title", text: caption }) : null, box]);
}

// --- the API's answer (eval/api/results_schemas.py ResultsOut), read per segment ----------------
// A segment is who judged (humans; one LLM judge) and blind or not; never mixed.

function rowLabel(row, by) {
  return by === "run" && row.run ? row.run.name + " #" + row.run.id : row.key;
}

function segmentTitle(segment) {
  if (segment.judged_by === "human") return segment.blind ? "Humans, blind" : "Humans, not blind";
  return "LLM judge " + segment.judge + (segment.blind ? "" : ", not blind");
}

const SEGMENT_NOTES = {
  "human-blind": "Verdicts given in blind pairs, before the reviewer had seen which model wrote which answer.",
  "human-seen": "The reviewer had seen the task's outputs with their models first (the review page), so the model may have swayed the verdict.",
  judge: "Verdicts of an LLM judge run; with swap on, each pair is judged in both orders and both count.",
};

function segmentNote(segment) {
  if (segment.judged_by !== "human") return SEGMENT_NOTES.judge;
  return segment.blind ? SEGMENT_NOTES["human-blind"] : SEGMENT_NOTES["human-seen"];
}

/* The win-rate matrix restricted to the rows with games in this segment. */
function segmentMatrix(segment, labels) {
  const w = segment.win_rate;
  const played = w.keys.map((_, i) => w.games[i].some((g) => g > 0));
  const keep = w.keys.map((_, i) => i).filter((i) => played[i]);
  if (keep.length < 2) return null;
  return {
    keep: keep,
    labels: keep.map((i) => labels[i]),
    cells: keep.map((i) => keep.map((j) => ({ rate: w.rates[i][j], n: w.games[i][j] }))),
  };
}

function readSegment(data, segment, index, labels) {
  const rows = data.rows
    .map((row, n) => Object.assign({ label: labels[n], select: rowFilter(data, row) }, row.figures[index]))
    .filter((figure) => figure.judgements > 0);
  const matrix = segmentMatrix(segment, labels);
  if (matrix) matrix.select = matrix.keep.map((i) => rowFilter(data, data.rows[i]));
  const who = { judged_by: segment.judged_by, judge: segment.judge, blind: segment.blind ? "true" : "false" };
  return { title: segmentTitle(segment), note: segmentNote(segment), rows: rows, matrix: matrix, who: who, base: data };
}

// --- links to the judgements behind a figure (/judgements/, GET /api/judgements's filters) ---

/* A row's own filter: its run, or its model (with rows per template: the model's judgements). */
function rowFilter(data, row) {
  return data.group_by === "run" && row.run ? { run: String(row.run.id) } : { model: row.provider + "/" + row.model };
}

const judgementsPage = document.getElementById("results-page").dataset.judgementsPageUrl;

/* The /judgements/ URL of a group's figure: the page's filters, the segment, then ``select``. */
function judgementsUrl(group, select) {
  const params = new URLSearchParams();
  const base = group.base;
  if (base.source) params.set("source", base.source);
  if (base.runs && base.runs.length) params.set("runs", base.runs.join(","));
  if (base.include_stale) params.set("include_stale", "true");
  for (const [name, value] of Object.entries(Object.assign({}, group.who, select))) if (value != null) params.set(name, value);
  return judgementsPage + "?" + params.toString();
}

/* A win-rate cell's filter: the verdicts between its row and its column; null when both are one model. */
function pairFilter(a, b) {
  const name = a.run ? "run" : "model";
  return a[name] === b[name] ? null : { [name]: a[name] + "," + b[name], kind: "pairwise" };
}

function readResults(data) {
  const by = data.group_by;
  const labels = data.rows.map((row) => rowLabel(row, by));
  const segments = data.segments.map((segment, index) => readSegment(data, segment, index, labels));
  return {
    by: by,
    total: data.judgements,
    questions: data.questions,
    groups: segments.filter((g) => g.rows.length),
    empty: segments.filter((g) => !g.rows.length).map((g) => g.title),
    positionBias: data.position_bias,
    agreement: data.agreement,
    reviewers: data.reviewers,
    checks: data.rows.map((row, n) => ({ label: labels[n], checks: row.checks })).filter((r) => r.checks.length),
  };
}

// --- a group: its table, its rating chart, its matrix ---------------------------------------------

/* A count as format.js words it ("30,000"), "–" when there is none. */
function count(x) {
  return isNum(x) ? formatCount(x) : "–";
}

function ratingText(rating) {
  if (!rating) return "–";
  const text = withInterval(rating.elo, rating.low, rating.high, (x) => fixed(x, 0));
  return rating.group ? text + " (set " + rating.group + ")" : text;
}

/* Ratings from sets of models that no verdict links, directly or through others,
   are on separate scales: the server numbers the sets (rating.group). */
function setsFootnote(rows) {
  const sets = new Set(rows.map((r) => r.rating && r.rating.group).filter(Boolean));
  return sets.size > 1
    ? "Sets " + [...sets].sort().join(", ") + ": no verdict links one set to another, directly or through other models, so their ratings are on separate scales. Compare ratings within a set only."
    : "";
}

function meanText(q) {
  return q && isNum(q.mean) ? withInterval(q.mean, q.low, q.high) + " (n = " + q.n + ")" : "–";
}

function rowsTable(group, by, questions) {
  const head = [by === "run" ? "Run" : "Model", { label: "Judgements", num: true }, { label: "Rating (BT, Elo) [95%]", num: true },
    { label: "Pairwise verdicts", num: true }, { label: "Wins", num: true }, { label: "Losses", num: true }, { label: "Ties", num: true },
    { label: "Both bad", num: true }, ...questions.map((k) => ({ label: "Mean " + k + " [95%]", num: true }))];
  const rows = group.rows.map((r) =>
    node("tr", {}, [
      node("th", { scope: "row" }, [node("a", { href: judgementsUrl(group, r.select), title: "The judgements behind this row", text: r.label })]),
      cell(count(r.judgements), "num"),
      cell(ratingText(r.rating) + (r.rating && shaky(r) ? "*" : ""), "num"),
      cell(count(r.games), "num"),
      cell(count(r.wins), "num"),
      cell(count(r.losses), "num"),
      cell(count(r.ties), "num"),
      cell(count(r.both_bad), "num"),
      ...questions.map((k) => cell(meanText((r.questions || []).find((q) => q.key === k)), "num")),
    ])
  );
  return scrollTable(group.title + ": per " + (by === "run" ? "run" : "model"), head, rows);
}

/* ``text`` cut to about ``chars`` characters (an SVG label does not wrap; the table has it whole). */
function clip(text, chars) {
  const room = Math.max(8, Math.floor(chars));
  return text.length <= room ? text : text.slice(0, room - 1) + "…";
}

const FEW_VERDICTS = 10;

/* A rating to read with care: all one way, or from fewer than FEW_VERDICTS
   verdicts (where the bootstrap's interval can collapse to a point). */
function shaky(r) {
  return oneWay(r) || (r.games || 0) < FEW_VERDICTS;
}

/* Every decided verdict (a win or a loss; ties are not decided) one way, as the
   footnote says: the rating says which way, not by how much. */
function oneWay(r) {
  return r.wins + r.losses > 0 && (r.wins === 0 || r.losses === 0);
}

/* Bradley-Terry ratings as points with 95% whiskers on one axis, the
   figures printed at the right of each line (the chart is never the only place). */
function ratingChart(group, width) {
  const rated = group.rows.filter((r) => r.rating && isNum(r.rating.elo));
  if (!rated.length) return node("p", { className: "muted", text: "No pairwise verdicts: no ratings." });
  const values = rated.flatMap((r) => [r.rating.elo, r.rating.low, r.rating.high].filter(isNum));
  let lo = Math.min(1000, ...values);
  let hi = Math.max(1000, ...values);
  const pad = Math.max(20, (hi - lo) * 0.08);
  lo = Math.floor((lo - pad) / 50) * 50;
  hi = Math.ceil((hi + pad) / 50) * 50;
  const narrow = width < 560;
  const labelW = narrow ? 0 : Math.min(190, width * 0.3);
  const textW = narrow ? 0 : 190;
  const plotX = labelW + 8;
  const plotW = Math.max(120, width - plotX - textW - 12);
  const line = narrow ? 48 : 30;
  const top = 8;
  const height = top + rated.length * line + 30;
  const x = (v) => plotX + ((v - lo) / (hi - lo)) * plotW;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: width, height: height, role: "img", class: "rating-chart" });
  root.append(svg("title", {}, group.title + ": Bradley-Terry ratings with 95% bootstrap intervals"));
  const step = hi - lo > 600 ? 200 : hi - lo > 250 ? 100 : 50;
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) {
    const anchor = x(t) - plotX < 16 ? "start" : plotX + plotW - x(t) < 16 ? "end" : "middle";
    root.append(svg("line", { x1: x(t), x2: x(t), y1: top, y2: height - 24, class: "grid" }));
    root.append(svg("text", { x: x(t), y: height - 8, "text-anchor": anchor, class: "tick" }, t));
  }
  root.append(svg("line", { x1: x(1000), x2: x(1000), y1: top, y2: height - 24, class: "axis-mean" }));
  rated.forEach((r, i) => {
    const y = top + i * line + (narrow ? 30 : line / 2);
    const figure = ratingText(r.rating) + (shaky(r) ? "*" : "") + ", n = " + r.games;
    if (narrow) root.append(svg("text", { x: 2, y: y - 12, class: "row-label" }, clip(r.label, width / 7 - figure.length - 2) + ": " + figure));
    else {
      root.append(svg("text", { x: labelW, y: y + 4, "text-anchor": "end", class: "row-label" }, clip(r.label, labelW / 7)));
      root.append(svg("text", { x: plotX + plotW + 10, y: y + 4, class: "figure" }, figure));
    }
    if (isNum(r.rating.low) && isNum(r.rating.high)) {
      root.append(svg("line", { x1: x(r.rating.low), x2: x(r.rating.high), y1: y, y2: y, class: "whisker" }));
      for (const end of [r.rating.low, r.rating.high]) root.append(svg("line", { x1: x(end), x2: x(end), y1: y - 5, y2: y + 5, class: "whisker" }));
    }
    root.append(svg("circle", { cx: x(r.rating.elo), cy: y, r: 5, class: "point" }));
  });
  const caption = "Rating on the Elo scale (mean 1000, the dashed line); the bar is the 95% bootstrap interval; n = pairwise verdicts. Overlapping bars: the order is not settled.";
  const footnote = rated.some(shaky)
    ? "* Fewer than " + FEW_VERDICTS + " verdicts, or won or lost every decided one: read the rating as a direction only; its size and interval say little (a few verdicts can give an interval of a single point)."
    : "";
  const sets = setsFootnote(rated);
  return node("figure", { className: "chart" }, [
    root,
    node("figcaption", { className: "muted small", text: caption }),
    footnote ? node("p", { className: "footnote small", text: footnote }) : null,
    sets ? node("p", { className: "footnote small", text: sets }) : null,
  ]);
}

/* Win rate of the row's model over the column's, numbers in every cell;
   the shade (11 steps) only repeats the number. */
function matrixTable(group) {
  const m = group.matrix;
  if (!m || !m.labels.length) return null;
  const head = ["Row beats column", ...m.labels.map((l) => ({ label: l, num: true }))];
  const rows = m.labels.map((rowLabel, i) =>
    node("tr", {}, [
      node("th", { scope: "row", text: rowLabel }),
      ...m.labels.map((_, j) => {
        const c = (m.cells[i] || [])[j];
        if (i === j || !c || !isNum(c.rate)) return node("td", { className: "num heat-none", text: i === j ? "" : "–" });
        const figures = [node("span", { className: "rate", text: pct(c.rate) }), node("span", { className: "cell-n", text: nText(c.n) })];
        const title = rowLabel + " beats " + m.labels[j] + " in " + pct(c.rate) + " of " + (c.n || 0) + " verdicts";
        const pair = pairFilter(m.select[i], m.select[j]);
        const link = pair && node("a", { href: judgementsUrl(group, pair), title: title + ": open them" }, figures);
        const td = node("td", { className: "num heat-" + Math.round(c.rate * 10) }, link ? [link] : figures);
        td.title = title;
        return td;
      }),
    ])
  );
  return scrollTable(group.title + ": win rate of the row over the column (ties count half)", head, rows, "matrix");
}

function groupSection(group, by, questions, width) {
  return node("section", { className: "result-group", "aria-label": group.title }, [
    node("h2", { text: group.title }),
    group.note ? node("p", { className: "muted small", text: group.note }) : null,
    ratingChart(group, width),
    rowsTable(group, by, questions),
    matrixTable(group),
  ]);
}

// --- position bias, agreement, reviewers, checks ---------------------------------------------

function judgeName(entry) {
  return entry.judged_by === "human" ? "Humans" : "LLM judge " + entry.judge;
}

function rateText(x) {
  return withInterval(x.rate, x.low, x.high, pct);
}

/* Left-side win rate per judge with its interval against the 50% line. */
function biasChart(entries, width) {
  const line = 62;
  const height = entries.length * line + 26;
  const plotX = 8;
  const plotW = width - 16;
  const x = (v) => plotX + v * plotW;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: width, height: height, role: "img", class: "bias-chart" });
  root.append(svg("title", {}, "Share of decided verdicts won by the answer shown on the left, with 95% intervals; 50% is no bias"));
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    root.append(svg("line", { x1: x(t), x2: x(t), y1: 40, y2: height - 20, class: t === 0.5 ? "axis-mean" : "grid" }));
    root.append(svg("text", { x: x(t), y: height - 6, "text-anchor": t === 0 ? "start" : t === 1 ? "end" : "middle", class: "tick" }, pct(t)));
  }
  entries.forEach((e, i) => {
    const y = i * line + 50;
    root.append(svg("text", { x: plotX, y: y - 30, class: "row-label" }, judgeName(e)));
    root.append(svg("text", { x: plotX, y: y - 13, class: "figure" }, rateText(e) + ": left won " + e.left_wins + " of " + e.n));
    if (!isNum(e.rate)) return;
    if (isNum(e.low) && isNum(e.high)) root.append(svg("rect", { x: x(e.low), width: Math.max(1, x(e.high) - x(e.low)), y: y - 5, height: 10, class: "band" }));
    root.append(svg("circle", { cx: x(e.rate), cy: y, r: 5, class: "point" }));
  });
  return root;
}

function biasPanel(entries, width) {
  const body = entries.length ? biasChart(entries, width) : node("p", { className: "muted", text: "No pairwise verdicts yet." });
  return node("section", { className: "panel", "aria-labelledby": "bias-title" }, [
    node("h2", { id: "bias-title", text: "Position bias" }),
    node("p", { className: "muted small", text: "How often the answer shown on the left wins (ties and both-bad left out), humans and each LLM judge apart. Near 50%: the side did not sway the verdicts." }),
    body,
  ]);
}

function kappaText(k) {
  return k && isNum(k.kappa) ? "κ = " + fixed(k.kappa, 2) + " (n = " + k.n + ")" : "– (n = " + ((k && k.n) || 0) + ")";
}

function agreementPanel(agreement) {
  const humans = agreement.humans;
  const items = [["Between humans: mean Cohen's κ over " + humans.reviewer_pairs + " reviewer pair(s)", kappaText(humans)]];
  for (const j of agreement.judges) {
    items.push(["LLM judge " + j.judge + " vs the human majority", kappaText(j.vs_human_majority)]);
    const swap = j.swap;
    const text = swap.pairs ? pct(swap.consistent / swap.pairs) + " (" + swap.consistent + " of " + swap.pairs + " pairs; " + swap.inconsistent + " inconsistent)" : "no pair judged in both orders";
    items.push(["LLM judge " + j.judge + ": same verdict in both orders", text]);
  }
  const list = node("dl", { className: "agreement" }, items.flatMap(([k, v]) => [node("dt", { text: k }), node("dd", { text: v })]));
  return node("section", { className: "panel", "aria-labelledby": "agreement-title" }, [
    node("h2", { id: "agreement-title", text: "Agreement" }),
    node("p", { className: "muted small", text: "κ (Cohen's kappa): 1 is full agreement, 0 what chance alone gives, below 0 worse than chance; n = pairs both sides judged." }),
    list,
  ]);
}

function reviewersPanel(reviewers) {
  if (!reviewers.length) return null;
  const rows = reviewers.map((r) =>
    node("tr", {}, [
      node("th", { scope: "row", text: r.reviewer }),
      cell(count(r.judgements), "num"),
      cell(rateText(r.left_side) + " (" + r.left_side.left_wins + " of " + r.left_side.n + ")", "num"),
      cell(kappaText(r.agreement), "num"),
    ])
  );
  const head = ["Reviewer", { label: "Judgements", num: true }, { label: "Left side wins [95%]", num: true }, { label: "Agreement with the others", num: true }];
  return node("section", { className: "panel wide", "aria-labelledby": "reviewers-title" }, [
    node("h2", { id: "reviewers-title", text: "Reviewers" }),
    scrollTable("Reviewers: judgements, side bias and agreement", head, rows, "", false),
  ]);
}

function checksPanel(checks, by) {
  const rows = checks.flatMap((row) =>
    row.checks.map((c) =>
      node("tr", {}, [
        node("th", { scope: "row", text: row.label }),
        cell(c.check),
        cell(rateText(c), "num"),
        cell(c.passed + " of " + c.n, "num"),
      ])
    )
  );
  if (!rows.length) return null;
  const head = [by === "run" ? "Run" : "Model", "Check", { label: "Passed [95%]", num: true }, { label: "Outputs passed", num: true }];
  return node("section", { className: "panel wide", "aria-labelledby": "checks-title" }, [
    node("h2", { id: "checks-title", text: "Automatic checks" }),
    node("p", { className: "muted small", text: "The runs' checks of each output against the task's reference; a task without a reference is left out of the checks that need one." }),
    scrollTable("Automatic checks per " + (by === "run" ? "run" : "model"), head, rows, "", false),
  ]);
}

// --- the page ---------------------------------------------------------------------------------

function render(root, results) {
  const width = Math.max(280, Math.min(root.clientWidth || 800, 960));
  root.replaceChildren();
  const per = results.by === "run" ? "one row per run" : "one row per model";
  root.append(node("p", { className: "summary", text: results.total + " judgements counted; " + per + "; 95% intervals in brackets." }));
  if (!results.groups.length) {
    root.append(node("p", { className: "notice", text: "No judgements match these filters yet. Judge some pairs on the Blind pairs page, launch a judge run, or run manage.py load_demo --with-results for a demo." }));
  }
  for (const group of results.groups) root.append(groupSection(group, results.by, results.questions, width));
  if (results.groups.length && results.empty.length) {
    root.append(node("p", { className: "muted empty-groups", text: "No verdicts under these filters for: " + results.empty.join("; ") + "." }));
  }
  const panelWidth = width < 720 ? width : Math.floor((width - 24) / 2);
  root.append(node("div", { className: "panels" }, [
    biasPanel(results.positionBias, Math.max(260, panelWidth - 34)),
    agreementPanel(results.agreement),
    reviewersPanel(results.reviewers),
    checksPanel(results.checks, results.by),
  ]));
}

async function load() {
  const page = document.getElementById("results-page");
  const root = document.getElementById("results");
  const status = document.getElementById("results-status");
  const answer = await api("GET", page.dataset.resultsUrl);
  if (!answer.ok) {
    status.textContent = "Could not load the results: " + errorText(answer);
    status.classList.add("error");
    return;
  }
  const results = readResults(answer.data || {});
  status.textContent = "";
  status.hidden = true;
  render(root, results);
  let last = root.clientWidth;
  window.addEventListener("resize", function () {
    if (Math.abs(root.clientWidth - last) < 40) return;
    last = root.clientWidth;
    render(root, results);
  });
}

document.addEventListener("DOMContentLoaded", load);

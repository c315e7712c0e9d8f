// Labelling screen: renders the leased task for every schema kind, submits with one round trip
// (the answer goes up, the next task comes back), and handles skip, undo and the hotkeys.
import { imageEditor } from "./image.js";

const boot = JSON.parse(document.getElementById("boot").textContent);
const root = document.getElementById("labeller");
const stage = document.getElementById("stage");
const palette = document.getElementById("palette");
const statusLine = document.getElementById("status");
const counter = document.getElementById("counter");
const schema = boot.schema;
const kind = schema.kind;
const labels = boot.labels;
const colors = boot.colors;
const api = `/ui/api/projects/${boot.project_id}`;

const hotkeys = new Map(); // key -> label
const keyOf = new Map(); // label -> key
labels.forEach((label, i) => {
  let key = (schema.hotkeys || {})[label];
  if (!key && kind === "rating" && labels.length <= 10 && label.length === 1) key = label;
  if (!key && i < 9) key = String(i + 1);
  if (!key && i === 9) key = "0";
  if (key) { hotkeys.set(key.toLowerCase(), label); keyOf.set(label, key); }
});

let task = boot.task;
let editor = null;
let done = 0;
let shownAt = performance.now();
let idempotencyKey = "";
let pressedAt = null; // time of the key press that led to the next item (for the benchmark)
window.veracityTimings = [];

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
};
// A click that answers moves to the next item at once: the second click of a double click would land
// on the next item's button (an empty answer, or the same label again), so only single clicks count.
const single = (fn) => (e) => { if (!(e && e.detail > 1)) fn(e); };
const newKey = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);
const say = (msg, error = false) => {
  statusLine.textContent = msg;
  statusLine.classList.toggle("error", error);
};

async function post(path, body) {
  const res = await fetch(`${api}/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", "x-csrf-token": root.dataset.csrf },
    body: JSON.stringify(body || {}),
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error((data && data.error && data.error.message) || `${res.status} ${res.statusText}`);
    err.status = res.status;
    throw err;
  }
  return data;
}

function swatch(label) {
  return el("span", { class: "swatch", style: `background:${colors[label] || "#555"}`, "aria-hidden": "true" });
}

// ---------------------------------------------------------------- palette of label buttons
function buildPalette({ onPick, pressed = () => false, suggested = null, previous = null }) {
  palette.replaceChildren();
  for (const label of labels) {
    const key = keyOf.get(label);
    const btn = el("button", {
      type: "button", class: "label-button", "data-label": label, "aria-pressed": String(pressed(label)),
      "aria-keyshortcuts": key || false, onclick: single(() => onPick(label)),
    }, swatch(label), el("span", { text: label }), key ? el("kbd", { text: key }) : null);
    if (label === suggested) { btn.classList.add("suggested"); btn.append(el("span", { class: "tag", text: "suggested" })); }
    if (label === previous) btn.append(el("span", { class: "tag", text: "your answer" }));
    palette.append(btn);
  }
}
const refreshPressed = (pressed) => {
  for (const b of palette.querySelectorAll("button")) b.setAttribute("aria-pressed", String(pressed(b.dataset.label)));
};

// ---------------------------------------------------------------- item display
function itemView(data) {
  const box = el("div", { class: "item" });
  if (typeof data.text === "string") box.append(el("p", { class: "item-text", dir: "auto", text: data.text }));
  if (typeof data.image === "string") box.append(el("img", { class: "item-image", src: data.image, alt: data.alt || "Item image" }));
  const rest = Object.entries(data).filter(([k]) => !["text", "image", "alt"].includes(k));
  if (rest.length && !box.childElementCount) {
    const dl = el("dl", { class: "item-fields" });
    for (const [k, v] of rest) dl.append(el("dt", { text: k }), el("dd", { dir: "auto", text: typeof v === "string" ? v : JSON.stringify(v) }));
    box.append(dl);
  }
  return box;
}

// ---------------------------------------------------------------- editors, one per kind
function choiceEditor(ctx) {
  // classification, rating: a key or a click submits at once
  const toValue = (label) => (kind === "rating" ? Number(label) : label);
  const suggested = ctx.suggestion == null ? null : String(ctx.suggestion);
  const previous = ctx.previous == null ? null : String(ctx.previous);
  buildPalette({ onPick: (l) => submit(toValue(l)), suggested, previous });
  return {
    view: itemView(ctx.data),
    value: () => (previous ?? suggested) == null ? undefined : toValue(previous ?? suggested),
    pick: (label) => submit(toValue(label)),
    help: [["1-9", "choose a label and go to the next item"], ["Enter", "accept the highlighted answer"]],
  };
}

function multiEditor(ctx) {
  const chosen = new Set(Array.isArray(ctx.initial) ? ctx.initial : []);
  const toggle = (label) => {
    if (chosen.has(label)) chosen.delete(label); else chosen.add(label);
    refreshPressed((l) => chosen.has(l));
  };
  buildPalette({ onPick: toggle, pressed: (l) => chosen.has(l) });
  return {
    view: itemView(ctx.data),
    value: () => labels.filter((l) => chosen.has(l)),
    pick: toggle,
    help: [["1-9", "switch a label on or off"], ["Enter", "submit the chosen labels"]],
  };
}

function pairwiseEditor(ctx) {
  const d = ctx.data;
  const outs = Array.isArray(d.outputs) ? d.outputs : [d.left ?? d.a ?? d.response_a, d.right ?? d.b ?? d.response_b];
  const prompt = d.prompt ?? d.text ?? d.question;
  const pane = (side, text, key) => el("button", { type: "button", class: "pair-pane", "data-choice": side,
    "aria-keyshortcuts": key, onclick: single(() => submit(side)) },
    el("span", { class: "pair-head", text: `${side === "left" ? "Left" : "Right"} (${key})` }),
    el("span", { class: "pair-body", text: typeof text === "string" ? text : JSON.stringify(text ?? "") }));
  const view = el("div", { class: "pairwise" },
    prompt ? el("p", { class: "item-text", text: String(prompt) }) : null,
    el("div", { class: "pair-row" }, pane("left", outs[0], "1"), pane("right", outs[1], "2")));
  palette.replaceChildren(el("button", { type: "button", class: "label-button", "data-label": "tie",
    onclick: single(() => submit("tie")) }, el("span", { text: "Tie" }), el("kbd", { text: "3" })));
  const marked = ctx.previous ?? ctx.suggestion;
  if (marked) view.querySelector(`[data-choice="${marked}"]`)?.classList.add("suggested");
  const keys = { 1: "left", arrowleft: "left", 2: "right", arrowright: "right", 3: "tie", arrowdown: "tie" };
  return {
    view,
    value: () => marked ?? undefined,
    key: (e) => { const c = keys[e.key.toLowerCase()]; if (c) { submit(c); return true; } return false; },
    help: [["1 or ←", "left is better"], ["2 or →", "right is better"], ["3 or ↓", "tie"]],
  };
}

function textEditor(ctx) {
  const area = el("textarea", { id: "answer", rows: "5", "aria-label": "Your answer",
    maxlength: schema.max_length ? String(schema.max_length) : false });
  area.value = typeof ctx.initial === "string" ? ctx.initial : "";
  palette.replaceChildren();
  const view = el("div", {}, itemView(ctx.data), el("label", { for: "answer", text: "Your answer" }), area);
  return {
    view,
    focus: () => area.focus(),
    value: () => area.value,
    help: [["Ctrl+Enter", "submit the answer"]],
  };
}

function spansEditor(ctx) {
  const text = String(ctx.data[schema.field || "text"] ?? "");
  let spans = (Array.isArray(ctx.initial) ? ctx.initial : []).map((s) => ({ ...s, suggested: ctx.fromModel }));
  let selected = -1;
  let current = labels[0];
  const textEl = el("div", { class: "span-text", tabindex: "0", "aria-label": "Text: select words with the mouse to mark a span" });
  const list = el("ul", { class: "span-list", "aria-label": "Marked spans" });

  const draw = () => {
    const cuts = new Set([0, text.length]);
    spans.forEach((s) => { cuts.add(s.start); cuts.add(s.end); });
    const points = [...cuts].sort((a, b) => a - b);
    textEl.replaceChildren();
    for (let k = 0; k < points.length - 1; k++) {
      const [a, b] = [points[k], points[k + 1]];
      let top = -1;
      spans.forEach((s, i) => { if (s.start <= a && s.end >= b) top = i; });
      if (top < 0) { textEl.append(document.createTextNode(text.slice(a, b))); continue; }
      const s = spans[top];
      const mark = el("mark", { "data-i": String(top), style: `--c:${colors[s.label] || "#555"}`,
        class: `${top === selected ? "selected" : ""} ${s.suggested ? "suggested" : ""}`,
        "data-label": b === s.end ? s.label : false, text: text.slice(a, b) });
      textEl.append(mark);
    }
    list.replaceChildren();
    spans.forEach((s, i) => {
      const select = el("select", { "aria-label": `Label of span ${i + 1}`, onchange: (e) => { s.label = e.target.value; s.suggested = false; draw(); } },
        ...labels.map((l) => el("option", { value: l, selected: l === s.label, text: l })));
      list.append(el("li", { class: i === selected ? "selected" : "" },
        swatch(s.label),
        el("button", { type: "button", class: "linkish", onclick: () => { selected = i; draw(); }, text: `“${text.slice(s.start, s.end)}”` }),
        s.suggested ? el("span", { class: "tag", text: "suggested" }) : null,
        select,
        el("button", { type: "button", "aria-label": `Remove span ${i + 1}`, onclick: () => remove(i), text: "Remove" })));
    });
    refreshPressed((l) => l === current);
  };
  const remove = (i) => { spans.splice(i, 1); selected = -1; draw(); };
  const offset = (node, off) => {
    const r = document.createRange();
    r.selectNodeContents(textEl);
    r.setEnd(node, off);
    return r.toString().length;
  };
  textEl.addEventListener("mouseup", () => {
    const sel = window.getSelection();
    if (!sel || sel.isCollapsed || !textEl.contains(sel.anchorNode) || !textEl.contains(sel.focusNode)) return;
    let [start, end] = [offset(sel.anchorNode, sel.anchorOffset), offset(sel.focusNode, sel.focusOffset)].sort((a, b) => a - b);
    while (start < end && /\s/.test(text[start])) start++;
    while (end > start && /\s/.test(text[end - 1])) end--;
    sel.removeAllRanges();
    if (end <= start) return;
    const span = { start, end, label: current, suggested: false };
    spans.push(span);
    spans.sort((x, y) => x.start - y.start || x.end - y.end);
    selected = spans.indexOf(span);
    draw();
  });
  textEl.addEventListener("click", (e) => {
    const m = e.target.closest("mark");
    if (m && window.getSelection().isCollapsed) { selected = Number(m.dataset.i); draw(); }
  });
  buildPalette({ onPick: (l) => pick(l), pressed: (l) => l === current });
  const pick = (label) => {
    if (selected >= 0) { spans[selected].label = label; spans[selected].suggested = false; }
    else current = label;
    draw();
  };
  draw();
  return {
    view: el("div", { class: "spans-editor" }, textEl, list),
    value: () => spans.map(({ start, end, label }) => ({ start, end, label })),
    pick,
    key: (e) => {
      if ((e.key === "Delete" || e.key === "Backspace") && selected >= 0) { remove(selected); return true; }
      if (e.key === "Escape") { selected = -1; draw(); return true; }
      if ((e.key === "]" || e.key === "[") && spans.length) {
        selected = (selected + (e.key === "]" ? 1 : spans.length - 1)) % spans.length; draw(); return true;
      }
      return false;
    },
    help: [["select text", "mark a span with the current label"], ["1-9", "current label, or relabel the selected span"],
      ["[ ]", "select the previous / next span"], ["Delete", "remove the selected span"], ["Enter", "submit"]],
  };
}

function rankingEditor(ctx) {
  const d = ctx.data;
  const options = Array.isArray(d.outputs) ? d.outputs : Array.isArray(d.options) ? d.options : Array.isArray(d.items) ? d.items : [];
  const n = schema.n || options.length;
  let order = Array.isArray(ctx.initial) && ctx.initial.length === n ? [...ctx.initial] : [];
  const list = el("ol", { class: "ranking", "aria-label": "Options; press their numbers from best to worst" });
  const chosen = el("p", { class: "muted", "aria-live": "polite" });
  const draw = () => {
    list.replaceChildren(...options.slice(0, n).map((text, i) => {
      const rank = order.indexOf(i);
      return el("li", { class: rank >= 0 ? "ranked" : "" },
        el("button", { type: "button", class: "label-button", "aria-pressed": String(rank >= 0), onclick: () => add(i) },
          el("kbd", { text: String(i + 1) }), el("span", { text: typeof text === "string" ? text : JSON.stringify(text) }),
          rank >= 0 ? el("span", { class: "tag", text: `#${rank + 1}` }) : null));
    }));
    chosen.textContent = order.length ? `Order so far: ${order.map((i) => i + 1).join(" > ")}` : "Press the best option first.";
  };
  const add = (i) => { if (!order.includes(i)) order.push(i); draw(); };
  const complete = () => (order.length >= n - 1 ? [...order, ...[...Array(n).keys()].filter((k) => !order.includes(k))] : undefined);
  palette.replaceChildren();
  draw();
  return {
    view: el("div", {}, d.prompt || d.text ? el("p", { class: "item-text", text: String(d.prompt ?? d.text) }) : null, list, chosen),
    value: complete,  // the last option needs no key
    key: (e) => {
      const i = Number(e.key) - 1;
      if (Number.isInteger(i) && i >= 0 && i < n) { add(i); return true; }
      if (e.key === "Backspace" && order.length) { order.pop(); draw(); return true; }
      return false;
    },
    help: [["1-9", "the next best option"], ["Backspace", "take back the last choice"], ["Enter", "submit the order"]],
  };
}

const EDITORS = {
  classification: choiceEditor, rating: choiceEditor, multilabel: multiEditor, pairwise: pairwiseEditor,
  text: textEditor, spans: spansEditor,
  boxes: (ctx) => imageEditor(ctx, "boxes", { labels, colors, buildPalette, refreshPressed, el, swatch }),
  polygons: (ctx) => imageEditor(ctx, "polygons", { labels, colors, buildPalette, refreshPressed, el, swatch }),
  keypoints: (ctx) => imageEditor(ctx, "keypoints", { labels, colors, buildPalette, refreshPressed, el, swatch }),
  ranking: rankingEditor,
};

// ---------------------------------------------------------------- showing a task
// The screen holds the task on show plus one leased ahead (`ahead`), so a label key swaps to the
// next item at once; answers go to the server in order, in the background, and each answer's
// response brings the following task into the buffer.
const ahead = [];
let pending = 0;
let chain = Promise.resolve();
window.veracitySaveTimings = [];

const holding = () => [task, ...ahead].filter(Boolean).map((t) => t.task_id);
function setPending(delta) {
  pending += delta;
  document.body.dataset.pending = String(pending);
}

function show(next, note = "") {
  task = next;
  editor = null;
  idempotencyKey = (task && task.retryKey) || newKey();  // a retry of an answer that failed keeps its key
  counter.textContent = `${done} labelled this session`;
  if (!task) {
    palette.replaceChildren();
    const waiting = pending > 0;
    stage.replaceChildren(el("div", { class: "empty" },
      el("h2", { text: waiting ? "Loading the next item…" : "Nothing left for you to label" }),
      waiting ? null : el("p", { text: "Every item you can label here is done or taken. Undo (U) brings back your last label." })));
    document.body.dataset.taskId = waiting ? "loading" : "none";
  } else {
    const prelabel = task.prelabel ? task.prelabel.value : null;
    const previous = task.previous_value;
    const draft = task.draft;  // the answer the server did not take, shown again as the person gave it
    const given = draft !== undefined ? draft : previous;
    const initial = given !== undefined ? given : prelabel;
    const ctx = { task, data: task.item.data || {}, initial, previous: given === undefined ? null : given,
      suggestion: prelabel, fromModel: given === undefined && prelabel != null };
    const make = EDITORS[kind];
    if (!make) {
      stage.replaceChildren(el("p", { class: "error", text: `This screen cannot label “${kind}” items yet.` }));
      return;
    }
    editor = make(ctx);
    const caption = el("p", { class: "muted small item-id" }, `Item ${task.item.external_id || task.item.id}`,
      task.prelabel ? ` · suggestion from ${task.prelabel.model}` : "", previous !== undefined ? " · brought back by undo" : "");
    stage.replaceChildren(caption, editor.view);
    document.getElementById("help-keys").replaceChildren(...[...editor.help, ["S", "skip this item"], ["U", "undo your last label"], ["?", "show or hide these keys"]]
      .map(([k, t]) => el("li", {}, el("kbd", { text: k }), ` ${t}`)));
    if (editor.focus) editor.focus(); else stage.focus({ preventScroll: true });
    document.body.dataset.taskId = String(task.task_id);
  }
  say(note);
  shownAt = performance.now();
  requestAnimationFrame(() => {
    if (pressedAt != null && task) { window.veracityTimings.push(performance.now() - pressedAt); pressedAt = null; }
    if (!document.body.dataset.ready) { document.body.dataset.ready = "1"; window.veracityReadyAt = performance.now(); }
  });
}

function receive(next) {
  if (!next || holding().includes(next.task_id)) return;
  if (task) ahead.push(next);
  else show(next, statusLine.textContent);
}

// Requests run one after another, so the server sees answers in the order they were given.
function enqueue(action, body, onDone) {
  setPending(1);
  const sentAt = performance.now();
  chain = chain.then(async () => {
    try {
      const res = await post(action, { ...body, holding: holding().filter((id) => id !== body.task_id) });
      if (action === "submit") window.veracitySaveTimings.push(performance.now() - sentAt);
      onDone(res);
    } catch (err) {
      say(err.message, true);
      if (body.task_id != null && action !== "undo") {
        if (action === "submit") done = Math.max(0, done - 1);
        if (err.status === 409) {
          // the lease is gone (it expired or was ended): the item cannot take an answer from this
          // screen any more and went back to the queue, so move on rather than offer it again
          say(`Not saved: ${err.message}. The item went back to the queue.`, true);
          if (!task && !ahead.length) enqueue("ahead", {}, (res) => receive(res.next));
        } else {  // give the item back to the person with their answer, to send again
          if (task) ahead.unshift(task);
          const again = action === "submit" ? { draft: body.value, retryKey: body.idempotency_key } : {};
          show({ ...body.__task, ...again }, "");
          say(`Not saved: ${err.message}`, true);
        }
      }
    } finally {
      setPending(-1);
      if (!task && pending === 0) show(ahead.shift() || null, statusLine.textContent);
    }
  });
}

function advance(note) {
  show(ahead.shift() || null, note);
}

function submit(value) {
  if (!task) return;
  if (value === undefined) { pressedAt = null; say("Choose a label first.", true); return; }
  const answered = task;
  const body = { task_id: answered.task_id, value, duration_ms: Math.round(performance.now() - shownAt),
    idempotency_key: idempotencyKey };
  Object.defineProperty(body, "__task", { value: answered, enumerable: false });
  done += 1;
  advance("Saved.");
  enqueue("submit", body, (res) => receive(res.next));
}
function skip() {
  if (!task) return;
  const skipped = task;
  const body = { task_id: skipped.task_id };
  Object.defineProperty(body, "__task", { value: skipped, enumerable: false });
  advance("Skipped.");
  enqueue("skip", body, (res) => receive(res.next));
}
function undo() {
  pressedAt = null;
  enqueue("undo", {}, (res) => {
    if (!res.next) return;
    done = Math.max(0, done - 1);
    const others = holding().filter((id) => id !== res.next.task_id);
    if (task && others.includes(task.task_id)) ahead.unshift(task);
    const i = ahead.findIndex((t) => t.task_id === res.next.task_id);
    if (i >= 0) ahead.splice(i, 1);
    show(res.next, "Your last label is back for editing.");
  });
}

document.getElementById("submit").addEventListener("click", single(() => editor && submit(editor.value())));
document.getElementById("skip").addEventListener("click", single(skip));
document.getElementById("undo").addEventListener("click", undo);
const helpToggle = document.getElementById("help-toggle");
const toggleHelp = () => {
  const help = document.getElementById("help");
  help.hidden = !help.hidden;
  helpToggle.setAttribute("aria-expanded", String(!help.hidden));
};
helpToggle.addEventListener("click", toggleHelp);

document.addEventListener("keydown", (e) => {
  if (e.altKey || e.metaKey) return;
  const typing = e.target.closest && e.target.closest("input, textarea, select");
  if (typing) {
    if (e.key === "Enter" && e.ctrlKey && editor) { e.preventDefault(); pressedAt = performance.now(); submit(editor.value()); }
    return;
  }
  if (e.target.closest && e.target.closest("button, a, summary") && (e.key === "Enter" || e.key === " ")) return;
  if (e.ctrlKey) {
    if (e.key.toLowerCase() === "z") { e.preventDefault(); undo(); }
    return;
  }
  pressedAt = performance.now();
  if (editor && editor.key && editor.key(e)) { e.preventDefault(); return; }
  const k = e.key.toLowerCase();
  if (editor && editor.pick && hotkeys.has(k)) { e.preventDefault(); editor.pick(hotkeys.get(k)); return; }
  if (e.key === "Enter" && editor) { e.preventDefault(); submit(editor.value()); return; }
  pressedAt = null;
  if (k === "s") { e.preventDefault(); skip(); }
  else if (k === "u") { e.preventDefault(); undo(); }
  else if (e.key === "?") { e.preventDefault(); toggleHelp(); }
});

document.body.dataset.pending = "0";
show(task);
if (task) enqueue("ahead", {}, (res) => receive(res.next));  // lease the following item in the background

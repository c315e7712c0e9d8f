// Image editor for boxes and polygons: draw, select, move, resize, delete, relabel, zoom and pan.
// Coordinates are image pixels (top-left origin), whatever the zoom.
const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, v);
  return node;
}
const round1 = (v) => Math.round(v * 10) / 10;
const NOUN = { boxes: "box", polygons: "polygon", keypoints: "point" };
const HINT = {
  boxes: "Drag to draw · drag a box to move · corners to resize · Shift+drag or Space+drag to pan",
  polygons: "Click to add points · Enter or click the first point to close · drag points to move",
  keypoints: "Click to place a point with the current label · drag a point to move it",
};

export function imageEditor(ctx, mode, ui) {
  const { labels, colors, buildPalette, refreshPressed, el } = ui;
  const src = ctx.data.image || ctx.data.url || ctx.data.src || "";
  let shapes = (Array.isArray(ctx.initial) ? ctx.initial : []).map((s) => ({ ...structuredClone(s), suggested: ctx.fromModel }));
  let selected = -1;
  let current = labels[0];
  let draft = null; // polygon being drawn: [[x, y], ...]
  let W = 0, H = 0;
  let scale = 1, tx = 0, ty = 0; // view transform on top of the fitted size
  let drag = null;
  let spaceDown = false;

  const img = el("img", { src, alt: ctx.data.alt || "Image to label", draggable: "false" });
  const svg = svgEl("svg", { class: "overlay", role: "application", "aria-label": `Drawing area: ${HINT[mode]}` });
  const canvas = el("div", { class: "canvas" }, img, svg);
  const viewport = el("div", { class: "viewport", tabindex: "0", "aria-label": "Image; use + and - to zoom, arrows to pan" }, canvas);
  const zoomLabel = el("span", { class: "zoom-level", "aria-live": "polite", text: "100%" });
  const tools = el("div", { class: "image-tools" },
    el("button", { type: "button", "aria-label": "Zoom in", onclick: () => zoomBy(1.25), text: "+" }),
    el("button", { type: "button", "aria-label": "Zoom out", onclick: () => zoomBy(0.8), text: "−" }),
    el("button", { type: "button", onclick: () => resetView(), text: "Fit" }), zoomLabel,
    el("span", { class: "muted small", text: HINT[mode] }));
  const list = el("ul", { class: "shape-list", "aria-label": `${NOUN[mode]}s` });

  const applyView = () => {
    canvas.style.transform = `translate(${tx}px, ${ty}px) scale(${scale})`;
    zoomLabel.textContent = `${Math.round(scale * 100)}%`;
  };
  const zoomBy = (f, cx, cy) => {
    const r = viewport.getBoundingClientRect();
    const px = cx ?? r.width / 2, py = cy ?? r.height / 2;
    const next = Math.min(8, Math.max(0.25, scale * f));
    tx = px - (px - tx) * (next / scale);
    ty = py - (py - ty) * (next / scale);
    scale = next;
    applyView();
  };
  const resetView = () => { scale = 1; tx = 0; ty = 0; applyView(); };
  const toImage = (e) => {
    const r = svg.getBoundingClientRect();
    const x = ((e.clientX - r.left) * W) / r.width, y = ((e.clientY - r.top) * H) / r.height;
    return [Math.min(W, Math.max(0, x)), Math.min(H, Math.max(0, y))];
  };
  const unit = () => (W && svg.getBoundingClientRect().width ? W / svg.getBoundingClientRect().width : 1);

  function draw() {
    svg.replaceChildren();
    const u = unit();
    shapes.forEach((s, i) => {
      const colour = colors[s.label] || "#555";
      const g = svgEl("g", { class: `shape${i === selected ? " selected" : ""}${s.suggested ? " suggested" : ""}`, "data-i": i });
      if (mode === "boxes") {
        g.append(svgEl("rect", { x: s.x, y: s.y, width: s.w, height: s.h, stroke: colour, "data-i": i, "data-part": "body",
          fill: i === selected ? "rgba(255,255,255,0.15)" : "rgba(0,0,0,0.01)", "vector-effect": "non-scaling-stroke" }));
        const t = svgEl("text", { x: s.x + 2 * u, y: Math.max(10 * u, s.y - 3 * u), fill: colour, "font-size": 12 * u, class: "shape-label" });
        t.textContent = s.label + (s.suggested ? " (suggested)" : "");
        g.append(t);
        if (i === selected) {
          for (const [cx, cy, corner] of [[s.x, s.y, "nw"], [s.x + s.w, s.y, "ne"], [s.x, s.y + s.h, "sw"], [s.x + s.w, s.y + s.h, "se"]]) {
            g.append(svgEl("rect", { x: cx - 5 * u, y: cy - 5 * u, width: 10 * u, height: 10 * u, class: `handle ${corner}`,
              "data-i": i, "data-handle": corner }));
          }
        }
      } else if (mode === "keypoints") {
        g.append(svgEl("circle", { cx: s.x, cy: s.y, r: (i === selected ? 7 : 5) * u, fill: colour, stroke: "#fff",
          "stroke-width": 2, "vector-effect": "non-scaling-stroke", "data-i": i, "data-part": "body" }));
        const t = svgEl("text", { x: s.x + 8 * u, y: s.y - 6 * u, fill: colour, "font-size": 12 * u, class: "shape-label" });
        t.textContent = s.label + (s.suggested ? " (suggested)" : "");
        g.append(t);
      } else {
        g.append(svgEl("polygon", { points: s.points.map((p) => p.join(",")).join(" "), stroke: colour, "data-i": i, "data-part": "body",
          fill: i === selected ? "rgba(255,255,255,0.2)" : "rgba(0,0,0,0.01)", "vector-effect": "non-scaling-stroke" }));
        const t = svgEl("text", { x: s.points[0][0], y: s.points[0][1] - 3 * u, fill: colour, "font-size": 12 * u, class: "shape-label" });
        t.textContent = s.label + (s.suggested ? " (suggested)" : "");
        g.append(t);
        if (i === selected) s.points.forEach((p, j) => g.append(svgEl("circle", { cx: p[0], cy: p[1], r: 5 * u, class: "handle",
          "data-i": i, "data-vertex": j })));
      }
      svg.append(g);
    });
    if (draft) {
      const colour = colors[current] || "#555";
      svg.append(svgEl("polyline", { points: draft.map((p) => p.join(",")).join(" "), stroke: colour, fill: "none",
        class: "draft", "vector-effect": "non-scaling-stroke" }));
      draft.forEach((p, j) => svg.append(svgEl("circle", { cx: p[0], cy: p[1], r: 4 * u, class: j === 0 ? "handle first" : "handle",
        "data-draft": j })));
    }
    list.replaceChildren();
    shapes.forEach((s, i) => {
      const select = el("select", { "aria-label": `Label of ${NOUN[mode]} ${i + 1}`,
        onchange: (e) => { s.label = e.target.value; s.suggested = false; draw(); } },
      ...labels.map((l) => el("option", { value: l, selected: l === s.label, text: l })));
      const where = mode === "boxes" ? `${Math.round(s.x)},${Math.round(s.y)} ${Math.round(s.w)}×${Math.round(s.h)}`
        : mode === "keypoints" ? `${Math.round(s.x)},${Math.round(s.y)}` : `${s.points.length} points`;
      list.append(el("li", { class: i === selected ? "selected" : "" }, ui.swatch(s.label),
        el("button", { type: "button", class: "linkish", onclick: () => { selected = i; draw(); }, text: `${i + 1}. ${where}` }),
        s.suggested ? el("span", { class: "tag", text: "suggested" }) : null, select,
        el("button", { type: "button", "aria-label": `Delete ${NOUN[mode]} ${i + 1}`, onclick: () => remove(i), text: "Delete" })));
    });
    refreshPressed((l) => l === current);
  }
  const remove = (i) => { shapes.splice(i, 1); selected = -1; draw(); };
  const closeDraft = () => {
    if (draft && draft.length >= 3) { shapes.push({ points: draft, label: current, suggested: false }); selected = shapes.length - 1; }
    draft = null;
    draw();
  };

  img.addEventListener("load", () => {
    W = img.naturalWidth; H = img.naturalHeight;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const r = viewport.getBoundingClientRect();
    const fit = Math.min((r.width || W) / W, (r.height || H) / H);
    canvas.style.width = `${W * fit}px`;
    canvas.style.height = `${H * fit}px`;
    draw();
    viewport.dataset.loaded = "1";
  });

  svg.addEventListener("pointerdown", (e) => {
    if (!W) return;
    viewport.focus({ preventScroll: true });
    const t = e.target;
    const p = toImage(e);
    if (e.shiftKey || spaceDown || e.button === 1) {
      drag = { kind: "pan", x: e.clientX, y: e.clientY, tx, ty };
    } else if (t.dataset.handle !== undefined) {
      const i = Number(t.dataset.i);
      drag = { kind: "resize", i, corner: t.dataset.handle, orig: { ...shapes[i] } };
    } else if (t.dataset.vertex !== undefined) {
      drag = { kind: "vertex", i: Number(t.dataset.i), j: Number(t.dataset.vertex) };
    } else if (t.dataset.draft === "0" && draft && draft.length >= 3) {
      closeDraft();
      return;
    } else if (t.dataset.part === "body" && !draft) {
      selected = Number(t.dataset.i);
      drag = { kind: "move", i: selected, start: p, orig: structuredClone(shapes[selected]) };
      draw();
    } else if (mode === "keypoints") {
      shapes.push({ x: round1(p[0]), y: round1(p[1]), label: current, suggested: false });
      selected = shapes.length - 1;
      drag = { kind: "move", i: selected, start: p, orig: structuredClone(shapes[selected]) };
      draw();
    } else if (mode === "boxes") {
      selected = -1;
      drag = { kind: "draw", start: p };
      shapes.push({ x: p[0], y: p[1], w: 0, h: 0, label: current, suggested: false });
      drag.i = shapes.length - 1;
    } else {
      selected = -1;
      draft = [...(draft || []), [round1(p[0]), round1(p[1])]];
      draw();
      return;
    }
    svg.setPointerCapture(e.pointerId);
    e.preventDefault();
  });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const [x, y] = toImage(e);
    if (drag.kind === "pan") { tx = drag.tx + e.clientX - drag.x; ty = drag.ty + e.clientY - drag.y; applyView(); return; }
    const s = shapes[drag.i];
    if (drag.kind === "draw") {
      const [x0, y0] = drag.start;
      Object.assign(s, { x: round1(Math.min(x0, x)), y: round1(Math.min(y0, y)), w: round1(Math.abs(x - x0)), h: round1(Math.abs(y - y0)) });
    } else if (drag.kind === "move") {
      const dx = x - drag.start[0], dy = y - drag.start[1];
      if (mode === "boxes" || mode === "keypoints") {
        s.x = round1(Math.min(W - (s.w || 0), Math.max(0, drag.orig.x + dx)));
        s.y = round1(Math.min(H - (s.h || 0), Math.max(0, drag.orig.y + dy)));
      } else {
        s.points = drag.orig.points.map(([px, py]) => [round1(px + dx), round1(py + dy)]);
      }
      s.suggested = false;
    } else if (drag.kind === "resize") {
      const o = drag.orig;
      let [l, t, r, b] = [o.x, o.y, o.x + o.w, o.y + o.h];
      if (drag.corner.includes("w")) l = x; else r = x;
      if (drag.corner.includes("n")) t = y; else b = y;
      Object.assign(s, { x: round1(Math.min(l, r)), y: round1(Math.min(t, b)), w: round1(Math.abs(r - l)), h: round1(Math.abs(b - t)), suggested: false });
    } else if (drag.kind === "vertex") {
      s.points[drag.j] = [round1(x), round1(y)];
      s.suggested = false;
    }
    draw();
  });
  const endDrag = () => {
    if (drag && drag.kind === "draw") {
      const s = shapes[drag.i];
      if (s.w < 3 || s.h < 3) shapes.splice(drag.i, 1); else selected = drag.i;
    }
    drag = null;
    draw();
  };
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);
  viewport.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = viewport.getBoundingClientRect();
    zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  document.addEventListener("keyup", (e) => { if (e.key === " ") spaceDown = false; });

  const pick = (label) => {
    if (selected >= 0) { shapes[selected].label = label; shapes[selected].suggested = false; } else current = label;
    draw();
  };
  buildPalette({ onPick: pick, pressed: (l) => l === current });

  const nudge = (dx, dy) => {
    const s = shapes[selected];
    if (mode !== "polygons") { s.x = round1(Math.min(W - (s.w || 0), Math.max(0, s.x + dx))); s.y = round1(Math.min(H - (s.h || 0), Math.max(0, s.y + dy))); }
    else s.points = s.points.map(([x, y]) => [x + dx, y + dy]);
    s.suggested = false;
    draw();
  };
  const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

  return {
    view: el("div", { class: "image-editor" }, tools, viewport, list),
    focus: () => viewport.focus({ preventScroll: true }),
    value: () => (mode === "boxes" ? shapes.map(({ x, y, w, h, label }) => ({ x, y, w, h, label }))
      : mode === "keypoints" ? shapes.map(({ x, y, label }) => ({ x, y, label }))
        : shapes.map(({ points, label }) => ({ points, label }))),
    pick,
    key: (e) => {
      if (e.key === " ") { spaceDown = true; return true; }
      if ((e.key === "Delete" || e.key === "Backspace") && selected >= 0) { remove(selected); return true; }
      if (e.key === "Escape") { draft = null; selected = -1; draw(); return true; }
      if (e.key === "Enter" && draft) { closeDraft(); return true; }
      if (e.key === "+" || e.key === "=") { zoomBy(1.25); return true; }
      if (e.key === "-" || e.key === "_") { zoomBy(0.8); return true; }
      if (e.key === "0" && !labels[9]) { resetView(); return true; }
      if ((e.key === "]" || e.key === "[") && shapes.length) {
        selected = (selected + (e.key === "]" ? 1 : shapes.length - 1 + (selected < 0 ? 1 : 0))) % shapes.length; draw(); return true;
      }
      if (e.key.toLowerCase() === "n" && W && mode !== "polygons") {  // a new shape without the mouse
        const size = Math.round(Math.min(W, H) / 4);
        shapes.push(mode === "boxes"
          ? { x: Math.round((W - size) / 2), y: Math.round((H - size) / 2), w: size, h: size, label: current, suggested: false }
          : { x: Math.round(W / 2), y: Math.round(H / 2), label: current, suggested: false });
        selected = shapes.length - 1;
        draw();
        return true;
      }
      const arrow = ARROWS[e.key];
      if (arrow) {
        if (selected >= 0 && e.shiftKey && mode === "boxes") {  // Shift+arrows: move the right or bottom edge
          const s = shapes[selected];
          s.w = Math.max(2, Math.min(W - s.x, s.w + arrow[0] * 5));
          s.h = Math.max(2, Math.min(H - s.y, s.h + arrow[1] * 5));
          s.suggested = false;
          draw();
        } else if (selected >= 0) nudge(arrow[0] * (e.shiftKey ? 10 : 1), arrow[1] * (e.shiftKey ? 10 : 1));
        else { tx -= arrow[0] * 40; ty -= arrow[1] * 40; applyView(); }
        return true;
      }
      return false;
    },
    help: mode === "keypoints"
      ? [["click or N", "place a point with the current label"], ["1-9", "current label, or relabel the selected point"],
        ["[ ]", "select a point"], ["arrows", "move the selected point"], ["Delete", "delete it"], ["Enter", "submit"]]
      : mode === "boxes"
      ? [["drag", "draw a box with the current label"], ["1-9", "current label, or relabel the selected box"],
        ["N", "a new box in the middle (no mouse needed)"], ["[ ]", "select the previous / next box"],
        ["arrows", "move the selected box, or pan"], ["Shift+arrows", "resize it (right and bottom edges)"],
        ["Delete", "delete the selected box"], ["+ − 0", "zoom in, out, fit"], ["Enter", "submit"]]
      : [["click", "add a point"], ["Enter", "close the polygon, then submit"], ["1-9", "current label, or relabel"],
        ["[ ]", "select a polygon"], ["Delete", "delete the selected polygon"], ["+ − 0", "zoom in, out, fit"]],
  };
}

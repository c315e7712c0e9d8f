// Draw labelled boxes, polygons or key points over each <figure class="shape-preview"> image.
// The shapes come from the figure's data-shapes attribute (JSON, image pixels); colours from data-colors.
const SVG = "http://www.w3.org/2000/svg";

function draw(figure) {
  const img = figure.querySelector("img");
  const shapes = JSON.parse(figure.dataset.shapes || "[]");
  const colors = JSON.parse(figure.dataset.colors || "{}");
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${img.naturalWidth} ${img.naturalHeight}`);
  svg.setAttribute("class", "preview-overlay");
  svg.setAttribute("aria-hidden", "true");
  for (const s of shapes) {
    const colour = colors[s.label] || "#555";
    let node;
    if (Array.isArray(s.points)) {
      node = document.createElementNS(SVG, "polygon");
      node.setAttribute("points", s.points.map((p) => p.join(",")).join(" "));
    } else if (s.w != null) {
      node = document.createElementNS(SVG, "rect");
      for (const k of ["x", "y"]) node.setAttribute(k, s[k]);
      node.setAttribute("width", s.w);
      node.setAttribute("height", s.h);
    } else {
      node = document.createElementNS(SVG, "circle");
      node.setAttribute("cx", s.x);
      node.setAttribute("cy", s.y);
      node.setAttribute("r", Math.max(3, img.naturalWidth / 80));
    }
    node.setAttribute("stroke", colour);
    node.setAttribute("fill", s.w == null && !s.points ? colour : "none");
    node.setAttribute("stroke-width", "2.5");
    node.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(node);
  }
  figure.querySelector(".preview-frame").append(svg);
}

for (const figure of document.querySelectorAll("figure.shape-preview")) {
  const img = figure.querySelector("img");
  if (img.complete && img.naturalWidth) draw(figure);
  else img.addEventListener("load", () => draw(figure), { once: true });
}

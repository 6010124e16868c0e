// The milestone DAG as SVG: columns by dependency depth, edges as curves with arrows.

const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 190;
const NODE_H = 54;
const GAP_X = 70;
const GAP_Y = 22;
const PAD = 16;
const TITLE_CHARS = 24;

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Depth of each milestone: 0 for roots, else 1 + the deepest dependency. */
export function depths(milestones) {
  const byKey = new Map(milestones.map((m) => [m.key, m]));
  const memo = new Map();
  const visit = (key, trail) => {
    if (memo.has(key)) return memo.get(key);
    if (trail.has(key)) return 0; // a cycle cannot pass validation; never loop on one
    trail.add(key);
    const deps = (byKey.get(key)?.depends_on || []).filter((d) => byKey.has(d));
    const depth = deps.length ? 1 + Math.max(...deps.map((d) => visit(d, trail))) : 0;
    trail.delete(key);
    memo.set(key, depth);
    return depth;
  };
  for (const m of milestones) visit(m.key, new Set());
  return memo;
}

export function renderDag(container, milestones, activeKeys = new Set()) {
  container.replaceChildren();
  if (!milestones.length) {
    container.textContent = "No plan yet.";
    return;
  }
  const level = depths(milestones);
  const columns = [];
  for (const m of [...milestones].sort((a, b) => a.position - b.position)) {
    const d = level.get(m.key);
    (columns[d] ||= []).push(m);
  }
  const rows = Math.max(...columns.map((c) => c.length));
  const width = PAD * 2 + columns.length * NODE_W + (columns.length - 1) * GAP_X;
  const height = PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y;
  const svg = el("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": "milestone graph",
    class: "dag",
  });
  const defs = el("defs");
  const marker = el("marker", {
    id: "arrow",
    viewBox: "0 0 10 10",
    refX: 9,
    refY: 5,
    markerWidth: 7,
    markerHeight: 7,
    orient: "auto-start-reverse",
  });
  marker.append(el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }));
  defs.append(marker);
  svg.append(defs);
  const pos = new Map();
  columns.forEach((column, c) => {
    const offset = ((rows - column.length) * (NODE_H + GAP_Y)) / 2;
    column.forEach((m, r) => {
      pos.set(m.key, { x: PAD + c * (NODE_W + GAP_X), y: PAD + offset + r * (NODE_H + GAP_Y) });
    });
  });
  const edges = el("g", { class: "edges" });
  for (const m of milestones) {
    for (const dep of m.depends_on) {
      const from = pos.get(dep);
      const to = pos.get(m.key);
      if (!from || !to) continue;
      const x1 = from.x + NODE_W;
      const y1 = from.y + NODE_H / 2;
      const x2 = to.x;
      const y2 = to.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      edges.append(
        el("path", {
          d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2 - 2} ${y2}`,
          class: "edge",
          "marker-end": "url(#arrow)",
        }),
      );
    }
  }
  svg.append(edges);
  for (const m of milestones) {
    const p = pos.get(m.key);
    const active = activeKeys.has(m.key) ? " active" : "";
    const g = el("g", {
      class: `node status-${m.status}${active}`,
      transform: `translate(${p.x},${p.y})`,
      "data-key": m.key,
      "data-status": m.status,
    });
    g.append(el("title", {}, `${m.key}: ${m.title}\n${m.status}, attempt ${m.attempts}`));
    g.append(el("rect", { width: NODE_W, height: NODE_H, rx: 8, ry: 8 }));
    g.append(el("text", { x: 10, y: 20, class: "key" }, m.key));
    g.append(el("text", { x: NODE_W - 10, y: 20, class: "status", "text-anchor": "end" }, m.status));
    const title = m.title.length > TITLE_CHARS ? `${m.title.slice(0, TITLE_CHARS - 1)}…` : m.title;
    g.append(el("text", { x: 10, y: 40, class: "title" }, title));
    if (m.attempts > 1) {
      g.append(el("text", { x: NODE_W - 10, y: 40, class: "attempts", "text-anchor": "end" }, `×${m.attempts}`));
    }
    svg.append(g);
  }
  container.append(svg);
}

// The replication topology as SVG, laid out by hand: a tree is all it is (listeners on top, the
// master under them, each replica under the node it replicates from), so no layout library.

const NS = 'http://www.w3.org/2000/svg';
const W = 230; // node box
const H = 84;
const GAP_X = 24;
const GAP_Y = 56;
const TOP_H = 46; // listener / router boxes

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const yn = (b) => (b === null ? '-' : b ? 'Yes' : 'No');

/**
 * Rows of nodes: row 0 the write target (else the master record's node), then each node under the
 * one it replicates from; what hangs from nothing we know (down, detached) goes in a last row.
 */
export function layoutRows(status) {
  const byName = new Map(status.nodes.map((n) => [n.node, n]));
  const rootName = [status.route?.write, status.master?.node].find((n) => n && byName.has(n)) ?? null;
  const rows = [];
  const placed = new Set();
  if (rootName !== null) {
    rows.push([rootName]);
    placed.add(rootName);
    for (let level = 0; level < status.nodes.length; level++) {
      const parents = new Set(rows[level]);
      const next = status.nodes
        .filter((n) => !placed.has(n.node) && n.replicatesFrom !== null && parents.has(n.replicatesFrom))
        .map((n) => n.node);
      if (next.length === 0) break;
      next.forEach((n) => placed.add(n));
      rows.push(next);
    }
  }
  const rest = status.nodes.filter((n) => !placed.has(n.node)).map((n) => n.node);
  if (rest.length > 0) rows.push(rest);
  return rows;
}

function nodeMarkers(n, status, banned) {
  const m = [];
  for (const s of n.state) if (s !== 'online') m.push(s);
  if (banned.has(n.node)) m.push('banned');
  if (n.priority === 0) m.push('never promote');
  if (status.candidate.node === n.node) m.push('★ would promote');
  return m;
}

export function drawTopology(container, status, alerts) {
  const banned = new Set(
    alerts
      .filter((a) => a.ok && a.kind === 'node-banned' && typeof a.detail.node === 'string')
      .map((a) => a.detail.node),
  );
  const rows = layoutRows(status);
  const widest = Math.max(1, ...rows.map((r) => r.length), 2 + status.routers.length);
  const width = widest * (W + GAP_X) + GAP_X;
  const height = TOP_H + GAP_Y + rows.length * (H + GAP_Y) + 10;
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
    'aria-label': `topology of ${status.group}`,
    'data-topology': status.group,
  });
  const defs = svg('defs');
  for (const kind of ['repl', 'write', 'read']) {
    const mk = svg('marker', {
      id: `arrow-${kind}`,
      viewBox: '0 0 10 10',
      refX: 9,
      refY: 5,
      markerWidth: 10,
      markerHeight: 10,
      markerUnits: 'userSpaceOnUse',
      orient: 'auto',
    });
    mk.append(svg('path', { d: 'M0,0 L10,5 L0,10 z', class: `arrow ${kind}` }));
    defs.append(mk);
  }
  root.append(defs);
  const edges = svg('g', { class: 'edges' });
  const boxes = svg('g', { class: 'boxes' });
  root.append(edges, boxes);

  // Row of listeners and routers.
  const pos = new Map();
  const top = (i, cls, attrs, lines) => {
    const x = GAP_X + i * (W + GAP_X);
    const g = svg('g', { class: `box ${cls}`, transform: `translate(${x},10)`, ...attrs });
    g.append(svg('rect', { width: W, height: TOP_H, rx: 6 }));
    lines.forEach((t, j) =>
      g.append(svg('text', { x: 10, y: 18 + j * 16, class: j === 0 ? 'title' : '' }, t)),
    );
    boxes.append(g);
    return { x: x + W / 2, y: 10 + TOP_H };
  };
  const route = status.route;
  const writeAt = top(0, route?.write === null ? 'listener cut' : 'listener', { 'data-listener': 'write' }, [
    `write :${status.writePort ?? '?'}`,
    route === null
      ? 'no route'
      : route.write === null
        ? 'WRITES CUT'
        : `→ ${route.write} (epoch ${route.epoch})`,
  ]);
  const readAt = top(1, 'listener', { 'data-listener': 'read' }, [
    `read :${status.readPort ?? '?'}`,
    route === null ? 'no route' : `→ ${route.read.length} replica(s)`,
  ]);
  status.routers.forEach((r, i) =>
    top(
      2 + i,
      r.behind ? 'router behind' : 'router',
      { 'data-router': r.id, 'data-epoch': r.appliedEpoch ?? '' },
      [`router ${r.id}`, `applied epoch ${r.appliedEpoch ?? 'none'}${r.behind ? ' — BEHIND' : ''}`],
    ),
  );

  rows.forEach((row, level) => {
    const y = 10 + TOP_H + GAP_Y + level * (H + GAP_Y);
    const offset = (width - row.length * (W + GAP_X) + GAP_X) / 2;
    row.forEach((name, i) => {
      const n = status.nodes.find((x) => x.node === name);
      const x = offset + i * (W + GAP_X);
      pos.set(name, { x, y });
      const markers = nodeMarkers(n, status, banned);
      const cls = ['box', 'node', n.role, n.state[0], ...markers.map((m) => m.replace(/[^a-z]+/g, '-'))].join(
        ' ',
      );
      const g = svg('g', {
        class: cls,
        transform: `translate(${x},${y})`,
        'data-node': name,
        'data-role': n.role,
        'data-state': n.state.join(','),
        'data-candidate': status.candidate.node === name ? 'yes' : null,
      });
      g.append(
        svg('title', {}, `${name}: ${n.role}, ${n.state.join(', ')}${n.gtid ? `, gtid ${n.gtid}` : ''}`),
      );
      g.append(svg('rect', { width: W, height: H, rx: 8 }));
      g.append(svg('text', { x: 10, y: 18, class: 'title' }, name));
      g.append(
        svg(
          'text',
          { x: 10, y: 35 },
          `${n.role}${n.readOnly === false ? ' (writable)' : ''}${n.dc ? ` · dc ${n.dc}` : ''} · prio ${n.priority ?? '-'}`,
        ),
      );
      if (n.role !== 'master')
        g.append(
          svg(
            'text',
            { x: 10, y: 51 },
            `lag ${n.lagSeconds === null ? '-' : `${n.lagSeconds}s`} · backlog ${n.backlogTrx ?? '-'}${n.backlogSeconds != null ? ` (~${n.backlogSeconds}s)` : ''} · IO ${yn(n.ioRunning)} SQL ${yn(n.sqlRunning)}`,
          ),
        );
      else g.append(svg('text', { x: 10, y: 51 }, `gtid ${n.gtid ?? '-'}`));
      g.append(svg('text', { x: 10, y: 70, class: 'markers' }, markers.join(' · ')));
      boxes.append(g);
    });
  });

  const line = (from, to, kind, attrs) => {
    const midY = (from.y + to.y) / 2;
    edges.append(
      svg('path', {
        d: `M${from.x},${from.y} C${from.x},${midY} ${to.x},${midY} ${to.x},${to.y}`,
        class: `edge ${kind}`,
        'marker-end': `url(#arrow-${kind})`,
        'data-edge': kind,
        ...attrs,
      }),
    );
  };
  for (const n of status.nodes) {
    const p = pos.get(n.node);
    const parent = n.replicatesFrom !== null ? pos.get(n.replicatesFrom) : undefined;
    if (parent !== undefined && parent !== p)
      line({ x: parent.x + W / 2 + 12, y: parent.y + H }, { x: p.x + W / 2 + 12, y: p.y }, 'repl', {
        'data-from': n.replicatesFrom,
        'data-to': n.node,
        'data-running': n.ioRunning && n.sqlRunning ? 'yes' : 'no',
      });
  }
  if (route !== null && route.write !== null && pos.has(route.write)) {
    const p = pos.get(route.write);
    line(writeAt, { x: p.x + W / 2 - 12, y: p.y }, 'write', { 'data-to': route.write });
  }
  for (const r of route?.read ?? []) {
    const p = pos.get(r);
    if (p !== undefined) line(readAt, { x: p.x + W / 2 - 12, y: p.y }, 'read', { 'data-to': r });
  }
  container.replaceChildren(root);
}

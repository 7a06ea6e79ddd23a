// The overview: one row per group, updated in place from /api/events (a snapshot, then one
// `summary` per changed group). Filtering only hides rows, so 1,000 groups stay quick.
import { ago, el, follow } from './common.js';

const tbody = document.querySelector('#groups tbody');
const search = document.getElementById('search');
const unhealthy = document.getElementById('unhealthy');
const count = document.getElementById('count');
const rows = new Map(); // group -> { tr, summary }

const params = new URLSearchParams(location.search);
search.value = params.get('q') ?? '';
unhealthy.checked = params.get('unhealthy') === '1';

function matches(s) {
  const q = search.value.trim().toLowerCase();
  if (unhealthy.checked && s.health === 'ok') return false;
  if (q === '') return true;
  return s.group.includes(q) || (s.master ?? '').toLowerCase().includes(q) || s.health.includes(q);
}

function rowFor(s) {
  const link = el('a', { href: `/group/${encodeURIComponent(s.group)}` }, s.group);
  return el(
    'tr',
    { 'data-group': s.group, 'data-health': s.health },
    el('td', {}, link),
    el('td', {}, el('span', { class: `badge ${s.health}` }, s.health)),
    el('td', { class: 'mono' }, s.master ?? '—'),
    el('td', {}, s.epoch ?? '—'),
    el('td', {}, `${s.online}/${s.nodes}`),
    el('td', {}, String(s.readPool)),
    el('td', {}, s.alerts > 0 ? el('span', { class: 'badge degraded' }, String(s.alerts)) : '0'),
    el('td', { class: 'why' }, s.why.join('; ')),
  );
}

function upsert(s) {
  const old = rows.get(s.group);
  const tr = rowFor(s);
  tr.hidden = !matches(s);
  if (old !== undefined) old.tr.replaceWith(tr);
  else {
    // Keep name order: insert before the first row whose name sorts after this one.
    let next;
    for (const g of rows.keys()) if (g > s.group && (next === undefined || g < next)) next = g;
    tbody.insertBefore(tr, next !== undefined ? rows.get(next).tr : null);
  }
  rows.set(s.group, { tr, summary: s });
}

function refilter() {
  let shown = 0;
  let bad = 0;
  for (const { tr, summary } of rows.values()) {
    tr.hidden = !matches(summary);
    if (!tr.hidden) shown++;
    if (summary.health !== 'ok') bad++;
  }
  count.textContent = `${shown} of ${rows.size} groups shown · ${bad} not ok`;
  const q = new URLSearchParams();
  if (search.value !== '') q.set('q', search.value);
  if (unhealthy.checked) q.set('unhealthy', '1');
  history.replaceState(null, '', q.size > 0 ? `?${q}` : location.pathname);
}

function showProcesses(p) {
  const box = document.getElementById('processes');
  const servers = p.servers.map((s) => `${s.id} (${s.host}, up since ${ago(s.at)})`);
  const routers = p.routers.map((r) => `${r.id} (${r.host})`);
  box.replaceChildren(
    el(
      'div',
      { 'data-servers': p.servers.length },
      `server workers: ${servers.length > 0 ? servers.join(', ') : 'NONE — no automatic failover'}`,
    ),
    el('div', {}, `routers: ${routers.length > 0 ? routers.join(', ') : 'none'}`),
  );
  box.className = p.servers.length === 0 ? 'processes bad' : 'processes';
}

let pending = null;
const refilterSoon = () => {
  if (pending === null) pending = setTimeout(() => ((pending = null), refilter()), 0);
};

follow('/api/events', {
  snapshot: (d) => {
    tbody.replaceChildren();
    rows.clear();
    const frag = document.createDocumentFragment();
    for (const s of d.groups) {
      const tr = rowFor(s);
      rows.set(s.group, { tr, summary: s });
      frag.append(tr);
    }
    tbody.append(frag);
    showProcesses(d);
    refilter();
  },
  summary: (s) => {
    upsert(s);
    refilterSoon();
  },
  removed: ({ group }) => {
    rows.get(group)?.tr.remove();
    rows.delete(group);
    refilterSoon();
  },
  processes: showProcesses,
});
search.addEventListener('input', refilter);
unhealthy.addEventListener('change', refilter);

// One group, live: every `detail` event from /api/groups/<g>/events carries the whole picture
// (status model, history with outages, alerts), redrawn in place — no reload, no polling.
import { ago, clock, el, follow } from './common.js';
import { drawTopology } from './topology.js';

const group = decodeURIComponent(location.pathname.split('/')[2] ?? '');
document.getElementById('group-name').textContent = group;
document.title = `zkmha — ${group}`;

function summary(d) {
  const s = d.status;
  const items = [
    [
      'master',
      s.master === null
        ? 'none'
        : `${s.master.node} · epoch ${s.master.epoch} · since ${ago(s.master.since)} (${s.master.reason})`,
    ],
    [
      'would promote now',
      s.candidate.node === null
        ? `nobody — ${s.candidate.reason}`
        : `${s.candidate.node} — ${s.candidate.reason}`,
    ],
    ['flavor', s.flavor ?? '?'],
    ['positions', d.mysql ? 'read from every member' : 'from online/ records'],
    ['as of', `${clock(d.readAt)} UTC`],
    [
      'server workers',
      d.servers.length > 0 ? d.servers.map((x) => x.id).join(', ') : 'NONE — no automatic failover',
    ],
  ];
  if (s.task !== null)
    items.splice(1, 0, [
      'running',
      `${s.task.kind} at step '${s.task.step}' by ${s.task.worker}, started ${ago(s.task.startedAt)}${s.task.noLockHolder ? ' — NO LOCK HOLDER' : ''}`,
    ]);
  if (s.lock !== null)
    items.push([
      'lock',
      `${s.lock.owner} since ${ago(s.lock.at)}${s.lock.waiters > 0 ? `, ${s.lock.waiters} waiting` : ''}`,
    ]);
  const dl = el('dl');
  for (const [k, v] of items) dl.append(el('dt', {}, k), el('dd', { 'data-field': k.replace(/ /g, '-') }, v));
  document.getElementById('summary').replaceChildren(dl);
  const banner = document.getElementById('banner');
  banner.replaceChildren();
  if (s.white !== null)
    banner.append(
      el(
        'div',
        { class: 'white', 'data-white': 'yes' },
        `MAINTENANCE (white): ${s.white.reason} — by ${s.white.by}, ${ago(s.white.at)}. No automatic failover.`,
      ),
    );
  if (s.route !== null && s.route.write === null)
    banner.append(el('div', { class: 'cut' }, 'WRITES ARE CUT: the route names no write target.'));
  if (s.semiSync != null && s.semiSync.state === 'at-risk')
    banner.append(
      el(
        'div',
        { class: 'cut', 'data-semi-sync': 'at-risk' },
        `SEMI-SYNC ${s.semiSync.policy.toUpperCase()}, NOT IN EFFECT: ${s.semiSync.note}`,
      ),
    );
}

function alerts(d) {
  const ul = document.getElementById('alerts');
  ul.replaceChildren();
  for (const a of d.alerts)
    ul.append(
      a.ok
        ? el(
            'li',
            { class: 'alert', 'data-alert': a.kind },
            `ALERT ${a.kind} · ${ago(a.at)} · ${JSON.stringify(a.detail)}`,
          )
        : el('li', { class: 'alert' }, `invalid alert ${a.name}: ${a.error}`),
    );
  for (const w of d.status.warnings) ul.append(el('li', { class: 'warning' }, w));
  if (ul.children.length === 0) ul.append(el('li', { class: 'none' }, 'none'));
}

function timeline(d) {
  const ol = document.getElementById('timeline');
  ol.replaceChildren();
  const entries = [...d.history].reverse();
  if (entries.length === 0) ol.append(el('li', { class: 'none' }, 'no events yet'));
  for (const h of entries) {
    if (!h.ok) {
      ol.append(el('li', { class: 'event invalid' }, `${h.name}: invalid (${h.error})`));
      continue;
    }
    const e = h.event;
    const total = e.steps.reduce((sum, s) => sum + s.ms, 0) || 1;
    const bar = el('div', { class: 'steps' });
    const list = el('ul', { class: 'step-list' });
    for (const s of e.steps) {
      const seg = el('span', { class: `step ${s.ok ? 'ok' : 'failed'}`, title: `${s.name}: ${s.ms} ms` });
      seg.style.flexGrow = String(Math.max(s.ms / total, 0.02));
      bar.append(seg);
      list.append(
        el(
          'li',
          { class: s.ok ? 'ok' : 'failed', 'data-step': s.name },
          `${s.ok ? '✓' : '✗'} ${s.name} ${s.ms} ms`,
        ),
      );
    }
    const outage =
      h.outage === null
        ? null
        : el(
            'span',
            { class: 'outage', 'data-outage-ms': h.outage.ms },
            `writes cut ${h.outage.ms} ms (from ${h.outage.from})`,
          );
    ol.append(
      el(
        'li',
        { class: `event ${e.kind}`, 'data-kind': e.kind, 'data-epoch': e.epoch, 'data-to': e.to ?? '' },
        el(
          'div',
          { class: 'event-head' },
          el('b', {}, e.kind),
          ` ${e.from ?? '—'} → ${e.to ?? '—'} · epoch ${e.epoch} · ${clock(e.startedAt)}–${clock(e.endedAt)} UTC (${ago(e.endedAt)}) `,
          outage,
          e.lostTransactions ? el('span', { class: 'lost' }, ` lost: ${e.lostTransactions}`) : null,
        ),
        bar,
        list,
      ),
    );
  }
  if (d.historyTotal > d.history.length)
    ol.append(
      el(
        'li',
        { class: 'none' },
        `${d.historyTotal - d.history.length} older event(s): /api/groups/${group}/history`,
      ),
    );
}

function render(d) {
  summary(d);
  drawTopology(document.getElementById('topology'), d.status, d.alerts);
  alerts(d);
  timeline(d);
  document.body.dataset.epoch = String(d.status.master?.epoch ?? '');
}

follow(`/api/groups/${encodeURIComponent(group)}/events`, {
  detail: render,
  removed: () => {
    document
      .getElementById('banner')
      .replaceChildren(el('div', { class: 'cut' }, `group ${group} was removed`));
  },
});

import { describeDrain } from '../core/ops/drain';
import { type GroupStatus, type OpenTaskStatus, type StatusReport } from '../core/status';
import { ago, isoTime, renderTable } from './output';

/**
 * `mha status [group]`: renders the status model (core/status.ts, shared with `mha web`) as text;
 * --json prints the model itself.
 */
export {
  buildGroupStatus,
  positionFromOnline,
  readStatus,
  type GroupStatus,
  type NodeState,
  type NodeStatus,
  type OpenTaskStatus,
  type RouterStatus,
  type StatusReport,
} from '../core/status';

const yn = (b: boolean | null): string => (b === null ? '-' : b ? 'ON' : 'OFF');

export function renderGroupStatus(g: GroupStatus, now: number): string {
  const out: string[] = [];
  out.push(
    `group ${g.group} (${g.flavor ?? '?'}; write port ${g.writePort ?? '?'}, read port ${g.readPort ?? '?'})`,
  );
  out.push(
    g.master === null
      ? g.records !== null && g.records.finding.kind === 'master-invalid'
        ? `  master: INVALID (${g.records.finding.message})`
        : '  master: none'
      : `  master: ${g.master.node}  epoch ${g.master.epoch}  since ${isoTime(g.master.since)}  (${g.master.reason})`,
  );
  out.push(
    g.route === null
      ? g.records !== null && g.records.finding.kind === 'route-invalid'
        ? `  route:  INVALID (${g.records.finding.message})`
        : '  route:  none'
      : `  route:  epoch ${g.route.epoch}  write ${g.route.write ?? 'NONE (cut)'}  read [${g.route.read.join(', ')}]`,
  );
  if (g.semiSync !== null)
    out.push(
      g.semiSync.state === 'at-risk'
        ? `  SEMI-SYNC ${g.semiSync.policy.toUpperCase()}, NOT IN EFFECT: ${g.semiSync.note}`
        : `  semi-sync: ${g.semiSync.policy} (${g.semiSync.state}): ${g.semiSync.note}`,
    );
  if (g.white !== null)
    out.push(
      `  WHITE (maintenance, no automatic failover): ${g.white.reason} — by ${g.white.by} ${ago(g.white.at, now)}`,
    );
  if (g.task !== null)
    out.push(
      `  task: ${g.task.kind} at step '${g.task.step}' by ${g.task.worker}, started ${ago(g.task.startedAt, now)}` +
        (g.task.noLockHolder
          ? ' — NO LOCK HOLDER: its process is gone; the server workers resolve it (alert operation-abandoned)'
          : '') +
        (g.task.drain != null ? `; ${describeDrain(g.task.drain)}` : ''),
    );
  if (g.lock !== null)
    out.push(
      `  lock: held by ${g.lock.owner} since ${ago(g.lock.at, now)}${g.lock.waiters > 0 ? `, ${g.lock.waiters} waiting` : ''}`,
    );
  out.push('');
  const rows = g.nodes.map((n) => [
    n.node,
    n.role + (n.isWriteTarget ? '*' : ''),
    n.state.join(', '),
    yn(n.readOnly),
    n.gtid ?? '-',
    n.lagSeconds === null ? '-' : `${n.lagSeconds}s`,
    n.backlogTrx === null
      ? '-'
      : `${n.backlogTrx}${n.backlogSeconds !== null ? ` (~${n.backlogSeconds}s)` : ''}`,
    n.replicatesFrom === null ? '-' : `${n.replicatesFrom} io:${yn(n.ioRunning)} sql:${yn(n.sqlRunning)}`,
    n.priority === null ? '-' : String(n.priority),
    n.dc ?? '-',
    n.inReadPool ? 'yes' : 'no',
  ]);
  out.push(
    renderTable(
      [
        'node',
        'role',
        'state',
        'read_only',
        'gtid',
        'lag',
        'apply backlog',
        'replicates from',
        'prio',
        'dc',
        'read pool',
      ],
      rows,
    )
      .trimEnd()
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
  );
  out.push('');
  out.push(
    g.candidate.node !== null
      ? `  would promote: ${g.candidate.node} — ${g.candidate.reason}`
      : `  would promote: nobody — ${g.candidate.reason}`,
  );
  for (const r of g.routers)
    out.push(
      `  router ${r.id} (${r.host}): epoch ${r.appliedEpoch ?? 'none'}${r.behind ? '  BEHIND' : ''}${r.lastError !== null ? `  error: ${r.lastError}` : ''}`,
    );
  for (const a of g.alerts) out.push(`  ALERT ${a.kind} ${ago(a.at, now)}: ${JSON.stringify(a.detail)}`);
  for (const w of g.warnings) out.push(`  ! ${w}`);
  return out.join('\n') + '\n';
}

export function renderOpenTask(t: OpenTaskStatus, now: number): string {
  const out = [
    `group ${t.group} (not registered): task ${t.kind} at step '${t.step}' by ${t.worker}, started ${ago(t.startedAt, now)}` +
      (t.lock !== null
        ? `; lock held by ${t.lock.owner}`
        : ' — NO LOCK HOLDER: its process is gone; check the nodes, delete the task and run the command again'),
  ];
  for (const a of t.alerts) out.push(`  ALERT ${a.kind} ${ago(a.at, now)}: ${JSON.stringify(a.detail)}`);
  return out.join('\n') + '\n';
}

export function renderStatus(r: StatusReport, now: number): string {
  const parts = r.groups.map((g) => renderGroupStatus(g, now));
  parts.push(...r.openTasks.map((t) => renderOpenTask(t, now)));
  if (r.groups.length === 0 && r.openTasks.length === 0) parts.push('no groups\n');
  const servers = r.servers.map((s) => `${s.id} (${s.host} pid ${s.pid}, up since ${ago(s.at, now)})`);
  const routers = r.routers.map((x) => `${x.id} (${x.host})`);
  parts.push(
    `servers: ${servers.length > 0 ? servers.join('; ') : 'NONE (no automatic failover)'}\n` +
      `routers: ${routers.length > 0 ? routers.join('; ') : 'none'}\n` +
      r.problems.map((p) => `! invalid ${p.path}: ${p.message}\n`).join(''),
  );
  return parts.join('\n');
}

import type { AlertEntry } from '../core/alerts';
import { writeOutage, type HistoryEntry, type WriteOutage } from '../core/history';
import type { GroupStatus, StatusReport } from '../core/status';

/**
 * What the page shows, derived purely from the status model (core/status.ts): one line per group
 * for the overview, and the detail of one group (status + history with outages + alerts).
 */

/** Worst first: the overview sorts and filters on it. */
export type GroupHealth = 'writes-cut' | 'failing-over' | 'degraded' | 'maintenance' | 'ok';

export interface GroupSummary {
  readonly group: string;
  readonly health: GroupHealth;
  /** Why the health is what it is, one short phrase per finding. */
  readonly why: readonly string[];
  readonly master: string | null;
  readonly epoch: number | null;
  readonly nodes: number;
  readonly online: number;
  readonly readPool: number;
  readonly alerts: number;
  readonly white: boolean;
  readonly task: string | null;
}

export function summarize(g: GroupStatus): GroupSummary {
  const why: string[] = [];
  const down = g.nodes.filter((n) => n.state[0] === 'down');
  const writesCut = g.master === null || g.route === null || g.route.write === null;
  if (g.master === null) why.push('no master record');
  if (g.route !== null && g.route.write === null) why.push('writes cut');
  if (g.task !== null) why.push(`${g.task.kind} at ${g.task.step}`);
  if (g.white !== null) why.push(`maintenance: ${g.white.reason}`);
  const semiSyncAtRisk = g.semiSync?.state === 'at-risk';
  if (semiSyncAtRisk) why.push('semi-sync not in effect: acknowledged writes at risk');
  for (const n of down) why.push(`${n.node} down`);
  const behind = g.routers.filter((r) => r.behind);
  if (behind.length > 0) why.push(`${behind.length} router(s) behind`);
  if (g.alerts.length > 0) why.push(`${g.alerts.length} alert(s)`);
  const otherWarnings = g.warnings.filter(
    (w) => !w.startsWith('router ') && w !== 'writes are cut (route write: null)',
  );
  why.push(...otherWarnings);
  const health: GroupHealth = writesCut
    ? 'writes-cut'
    : g.task !== null
      ? 'failing-over'
      : down.length > 0 ||
          behind.length > 0 ||
          g.alerts.length > 0 ||
          otherWarnings.length > 0 ||
          semiSyncAtRisk
        ? 'degraded'
        : g.white !== null
          ? 'maintenance'
          : 'ok';
  return {
    group: g.group,
    health,
    why,
    master: g.master?.node ?? null,
    epoch: g.master?.epoch ?? null,
    nodes: g.nodes.length,
    online: g.nodes.length - down.length,
    readPool: g.route?.read.length ?? 0,
    alerts: g.alerts.length,
    white: g.white !== null,
    task: g.task === null ? null : `${g.task.kind}:${g.task.step}`,
  };
}

export type TimelineEntry = HistoryEntry & { readonly outage: WriteOutage | null };

/** Everything the group page draws, pushed whole on every change (no client-side merging). */
export interface GroupDetail {
  readonly group: string;
  /** Local clock of the service when this was read (ms). */
  readonly readAt: number;
  /** Whether replication positions were read from MySQL (else: from online/ records). */
  readonly mysql: boolean;
  readonly status: GroupStatus;
  /** Newest last; at most `HISTORY_LIMIT` (the API serves all of it). */
  readonly history: readonly TimelineEntry[];
  readonly historyTotal: number;
  readonly alerts: readonly AlertEntry[];
  readonly servers: StatusReport['servers'];
}

export const HISTORY_LIMIT = 50;

export function timeline(entries: readonly HistoryEntry[], limit = HISTORY_LIMIT): TimelineEntry[] {
  return entries.slice(-limit).map((e) => ({ ...e, outage: e.ok ? writeOutage(e.event) : null }));
}

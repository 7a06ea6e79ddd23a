import { readHistoryEntries, type HistoryEntry } from '../core/history';
import type { HistoryRecord } from '../core/records';
import type { CliContext } from './context';
import { existingGroup } from './lookup';
import { isoTime, renderTable } from './output';

/** `mha history <group>`: the group's events (core/history.ts) as a table, or --json. */
export { eventSeq, type HistoryEntry } from '../core/history';

export async function readHistory(ctx: CliContext, group: string): Promise<HistoryEntry[]> {
  await existingGroup(ctx, group);
  return readHistoryEntries(ctx.zk, ctx.paths, group);
}

export function formatSteps(steps: HistoryRecord['steps']): string {
  return steps.map((s) => `${s.name} ${Math.round(s.ms)}ms${s.ok ? '' : ' FAILED'}`).join(', ');
}

export function renderHistory(group: string, entries: readonly HistoryEntry[]): string {
  if (entries.length === 0) return `no history for group '${group}'\n`;
  const rows = entries.map((e) => {
    if (!e.ok) return [String(e.seq), '-', 'INVALID', '-', '-', '-', '-', e.error];
    const ev = e.event;
    const failed = ev.steps.some((s) => !s.ok);
    return [
      String(e.seq),
      isoTime(ev.startedAt),
      ev.kind + (failed ? ' (failed)' : ''),
      `${ev.from ?? '-'} -> ${ev.to ?? '-'}`,
      String(ev.epoch),
      `${ev.endedAt - ev.startedAt}ms`,
      ev.lostTransactions !== undefined && ev.lostTransactions !== '' ? ev.lostTransactions : '-',
      formatSteps(ev.steps),
    ];
  });
  return renderTable(['#', 'started', 'kind', 'from -> to', 'epoch', 'total', 'lost', 'steps'], rows);
}

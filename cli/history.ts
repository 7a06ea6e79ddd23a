import { errorMessage } from '../core/errors';
import { decodeRecord, historySchema, type HistoryRecord } from '../core/records';
import type { CliContext } from './context';
import { existingGroup } from './lookup';
import { isoTime, renderTable } from './output';

/** `mha history <group>`: past failovers, switchovers and other master changes, oldest first. */
export type HistoryEntry =
  | { readonly seq: number; readonly name: string; readonly ok: true; readonly event: HistoryRecord }
  | { readonly seq: number; readonly name: string; readonly ok: false; readonly error: string };

/** Sequence number of `event-0000000012`; null for names that are not events. */
export function eventSeq(name: string): number | null {
  const m = /^event-(\d{10,})$/.exec(name);
  return m === null ? null : Number(m[1]);
}

export async function readHistory(ctx: CliContext, group: string): Promise<HistoryEntry[]> {
  await existingGroup(ctx, group);
  const dir = ctx.paths.historyDir(group);
  const events = (await ctx.zk.childrenOrEmpty(dir))
    .map((name) => ({ name, seq: eventSeq(name) }))
    .filter((e): e is { name: string; seq: number } => e.seq !== null)
    .sort((a, b) => a.seq - b.seq);
  return Promise.all(
    events.map(async ({ name, seq }): Promise<HistoryEntry> => {
      const p = `${dir}/${name}`;
      try {
        const nd = await ctx.zk.get(p);
        return { seq, name, ok: true, event: decodeRecord(historySchema, nd.data, p) };
      } catch (err) {
        return { seq, name, ok: false, error: errorMessage(err) };
      }
    }),
  );
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

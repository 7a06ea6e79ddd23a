import { randomBytes } from 'node:crypto';
import { appendAfter, type AppendRequest, type AppendResult } from '../../core/append';
import { errorMessage } from '../../core/errors';
import { agentSchema, decodeRecord } from '../../core/records';
import { delay, withTimeout } from '../../core/timeout';
import { member, type GroupView } from '../../core/view';
import type { FailoverContext } from './steps';

/**
 * The failover's half of "append from the dead master" (core/append.ts): after the drain, ask the
 * old master's agent — alive, with its mysqld reported down — to apply to the candidate what its
 * binlog holds beyond the candidate's position, and wait for its answer in agent/<node>, bounded
 * by settings.appendTimeoutMs. Never throws: a skipped, failed or late append is an outcome that
 * the history records, and the failover goes on.
 */
export type AppendOutcome =
  | ({ readonly kind: 'answered' } & AppendResult)
  | { readonly kind: 'skipped'; readonly why: string }
  | { readonly kind: 'timed-out'; readonly id: string; readonly ms: number };

/** How often agent/<node> is read while waiting (one small read; the answer comes in ms when nothing is missing). */
const POLL_MS = 10;

export async function appendFromOldMaster(
  ctx: FailoverContext,
  view: GroupView,
  candidate: string,
): Promise<AppendOutcome> {
  const agent = member(view, ctx.oldMaster)?.agent ?? undefined;
  if (agent === undefined)
    return { kind: 'skipped', why: `no agent/${ctx.oldMaster}: its host or agent is gone` };
  if (agent.mysqldDown !== true)
    return { kind: 'skipped', why: `the agent of ${ctx.oldMaster} does not report its mysqld down` };
  const timeoutMs = view.meta!.settings.appendTimeoutMs;
  const t0 = Date.now();
  let after: string;
  try {
    const st = await withTimeout(
      ctx.conns.run(candidate, (c) => ctx.flavor.readState(c)),
      Math.max(1000, ctx.cfg.mysql.connectTimeoutMs),
      `read the position of ${candidate}`,
      'MYSQL_TIMEOUT',
    );
    after = appendAfter(st.gtidSlavePos, st.gtidBinlogPos);
  } catch (err) {
    return { kind: 'skipped', why: `could not read the position of ${candidate}: ${errorMessage(err)}` };
  }
  const req: AppendRequest = {
    id: randomBytes(6).toString('hex'),
    node: ctx.oldMaster,
    candidate,
    after,
    requestedAt: t0,
    timeoutMs,
  };
  await ctx.journal.save({ detail: { ...ctx.journal.task.detail, append: req } });
  const path = ctx.store.paths.agent(ctx.oldMaster);
  // The agent's own bound is timeoutMs; a little more here lets its answer (even "timed out") arrive.
  const deadline = t0 + timeoutMs + 250;
  while (Date.now() < deadline) {
    const d = await ctx.store.getOrNull(path).catch(() => undefined);
    if (d === null) return { kind: 'skipped', why: `agent/${ctx.oldMaster} went away while appending` };
    if (d !== undefined) {
      try {
        const rec = decodeRecord(agentSchema, d.data, path);
        if (rec.append?.id === req.id) return { kind: 'answered', ...rec.append };
      } catch (err) {
        return { kind: 'skipped', why: `invalid agent/${ctx.oldMaster}: ${errorMessage(err)}` };
      }
    }
    await delay(POLL_MS);
  }
  return { kind: 'timed-out', id: req.id, ms: Date.now() - t0 };
}

/** One line for the log and the history. */
export function describeAppend(o: AppendOutcome): string {
  switch (o.kind) {
    case 'skipped':
      return `append skipped: ${o.why}`;
    case 'timed-out':
      return `append timed out after ${o.ms} ms`;
    case 'answered':
      return o.state === 'done'
        ? o.count === 0
          ? `nothing to append: the candidate had every transaction of the old master's binlog (${o.ms} ms)`
          : `appended ${o.count} transactions ${o.first}..${o.last} in ${o.ms} ms`
        : `append failed: ${o.error ?? 'unknown error'}`;
  }
}

import type { Command } from 'commander';
import { ZkmhaError, isZkmhaError } from '../core/errors';
import { readHistoryEntries } from '../core/history';
import { acceptLossSchema, encodeRecord, type AcceptLossRecord } from '../core/records';
import { readGroupView } from '../core/view';
import { delay } from '../core/timeout';
import { groupArg, positiveIntArg, textArg, usage } from './args';
import { withContext, type CliContext } from './context';
import { existingGroup } from './lookup';
import { printOut, refuse, step, toJson } from './output';
import { operator } from './white';

/**
 * `mha failover <group> --accept-loss [--reason R] [--wait-ms N] [--json]` (issue 10 §2): a
 * person decides that the open failover may promote although some replicas did not answer — under
 * semi-sync `required` it is blocked (alert `failover-blocked`) until they answer or this.
 *
 * The decision is a one-shot record, accept_loss/<group> (core/records.ts acceptLossSchema),
 * naming the failover's epoch. Not a write into task/<group>: the worker owns the task and writes
 * it compare-and-set, so a CLI write would make it believe another worker took over. The worker
 * reads the record under the lock when it decides and deletes it in the commit multi, so it
 * applies to exactly one failover; the history event says `operator-accepted-loss` and by whom.
 * The command then waits (bounded) until master/ reaches that epoch and prints the outcome.
 */
export interface AcceptLossInput {
  readonly group: string;
  readonly reason: string;
  /** How long to wait for the promotion (0: do not wait). */
  readonly waitMs: number;
}

export interface AcceptLossResult {
  readonly group: string;
  readonly epoch: number;
  readonly request: AcceptLossRecord;
  /** The failover-blocked alert was up when the decision was given. */
  readonly wasBlocked: boolean;
  /** 'promoted' once master/ reached the epoch; 'requested' when not waited for. */
  readonly outcome: 'promoted' | 'requested';
  readonly newMaster: string | null;
  /** What the failover's history event says may be missing. */
  readonly lostTransactions: string | null;
  readonly rule: string | null;
}

export async function acceptLoss(ctx: CliContext, input: AcceptLossInput): Promise<AcceptLossResult> {
  const { zk, paths } = ctx;
  const { group } = input;
  const view = await existingGroup(ctx, group, { master: true });
  const task = view.task?.record;
  const S = `check failover of ${group}`;
  if (task === undefined || task.kind !== 'failover' || task.epoch === undefined)
    throw refuse(S, `no failover of '${group}' is open: there is nothing to accept`);
  const epoch = task.epoch;
  const blockedAlert = view.alerts.find(
    (a) => a.nameKind === 'failover-blocked' && a.record.detail.epoch === epoch,
  );
  const request: AcceptLossRecord = {
    v: 1,
    epoch,
    taskId: task.id,
    by: operator(),
    reason: input.reason,
    at: Date.now(),
  };
  const p = paths.acceptLoss(group);
  const data = encodeRecord(acceptLossSchema, request, p);
  await step(`write ${p}`, async () => {
    await zk.mkdirp(paths.dir('accept_loss'));
    try {
      await zk.create(p, data, 'persistent');
    } catch (err) {
      if (!isZkmhaError(err, 'ZK_NODE_EXISTS')) throw err;
      await zk.set(p, data, -1);
    }
  });
  const base = { group, epoch, request, wasBlocked: blockedAlert !== undefined };
  if (input.waitMs === 0)
    return { ...base, outcome: 'requested', newMaster: null, lostTransactions: null, rule: null };

  const deadline = Date.now() + input.waitMs;
  for (;;) {
    const v = await step(`read group ${group}`, () => readGroupView(zk, paths, group));
    if (v.master !== null && v.master.record.epoch >= epoch) {
      const events = await readHistoryEntries(zk, paths, group);
      const ev = events
        .flatMap((e) => (e.ok ? [e.event] : []))
        .find((e) => e.kind === 'failover' && e.epoch === epoch);
      const safety = ev?.detail.safety as { rule?: unknown } | null | undefined;
      return {
        ...base,
        outcome: 'promoted',
        newMaster: v.master.record.node,
        lostTransactions: ev?.lostTransactions ?? null,
        rule: typeof safety?.rule === 'string' ? safety.rule : null,
      };
    }
    if (Date.now() >= deadline)
      throw new ZkmhaError(
        'OPERATION_FAILED',
        `wait for the failover of ${group}: not promoted within ${input.waitMs} ms; ${p} stays until that failover commits`,
      );
    await delay(200);
  }
}

export function renderAcceptLoss(r: AcceptLossResult): string {
  if (r.outcome === 'requested')
    return `${r.group}: loss accepted for the failover of epoch ${r.epoch}${r.wasBlocked ? '' : ' (it was not blocked)'}; a worker promotes at its next attempt\n`;
  return (
    `${r.group}: promoted ${r.newMaster ?? '?'} at epoch ${r.epoch}` +
    `${r.rule !== null ? ` (rule ${r.rule})` : ''}` +
    `${r.lostTransactions !== null ? `\n  may be missing: ${r.lostTransactions}` : ''}\n`
  );
}

/** Registers `mha failover` on the program (cli/index.ts calls this). */
export function registerFailoverCommand(program: Command): void {
  program
    .command('failover <group>')
    .description(
      'decide for a blocked failover: --accept-loss promotes although some replicas did not answer',
    )
    .option('--accept-loss', 'promote anyway; acknowledged transactions only they hold may be lost')
    .option('--reason <text>', 'why (kept in the request and the history)')
    .option('--wait-ms <n>', 'how long to wait for the promotion (default 30000; 0: do not wait)')
    .option('--json', 'machine-readable output')
    .option('--config <file>', 'configuration file (default $MHA_CONFIG, then /etc/zkmha/mha.yaml)')
    .action(
      async (
        g: string,
        opts: { acceptLoss?: boolean; reason?: string; waitMs?: string; json?: boolean; config?: string },
      ) => {
        const group = groupArg(g);
        if (opts.acceptLoss !== true)
          throw usage(
            'mha failover needs --accept-loss (a planned change of a live master is mha switchover)',
          );
        const reason = textArg(opts.reason, '--reason') ?? 'accepted by an operator';
        const waitMs = opts.waitMs === '0' ? 0 : positiveIntArg(opts.waitMs, '--wait-ms', 30_000);
        const r = await withContext(opts.config, (ctx) => acceptLoss(ctx, { group, reason, waitMs }));
        printOut(opts.json === true ? toJson(r) : renderAcceptLoss(r));
      },
    );
}

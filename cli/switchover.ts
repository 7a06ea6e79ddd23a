import { ZkmhaError } from '../core/errors';
import type { Flavor } from '../core/mysql/flavor';
import { flavorFor } from '../core/mysql/index';
import { NodeConnections, SWITCHOVER_STEPS, type OpsContext, type SwitchoverStep } from '../core/ops';
import { existingGroup } from '../core/ops/group';
import { refuse, step } from '../core/ops/step';
import {
  recordSwitchoverFailed,
  runSwitchover,
  type CutWrites,
  type SwitchoverInput,
  type SwitchoverResult,
} from '../core/ops/switchover-run';
import { acquireLock } from '../core/zk/lock';
import type { CliContext } from './context';
import { cliWorker } from './worker';

/**
 * `mha switchover <group> [--to node] [--max-pause-ms N]`: a planned master change that loses no
 * transaction. The procedure is core/ops/switchover-run.ts; this file keeps the command's side:
 * the arguments, lock/<group> (taken before task/<group> is written, released after), the
 * signals, and what is printed.
 *
 * SIGINT, SIGTERM and SIGHUP (a dropped terminal) are ignored while it runs: every step is bounded,
 * so it finishes or rolls back. A failure after writes were cut always leaves the alert
 * `watch_down/<group>__switchover-failed` (step, reason, and what it rolled back to, if anything).
 */
export {
  SWITCHOVER_FAILED_ALERT,
  pickSwitchoverCandidate,
  type CandidatePick,
  type StepTiming,
  type SwitchoverInput,
  type SwitchoverOutcome,
  type SwitchoverResult,
} from '../core/ops/switchover-run';

/**
 * Parses MHA_FAULT_SWITCHOVER_PAUSE_BEFORE_STEP ("promote:5000"): pause before that step, after
 * recording it in task/<group> ('commit': after the promotion, before the commit multi).
 */
export function switchoverFaultFromEnv(
  value: string | undefined,
): { step: SwitchoverStep; ms: number } | undefined {
  if (value === undefined || value === '') return undefined;
  const m = /^([a-z]+):(\d{1,7})$/.exec(value);
  if (m === null || !SWITCHOVER_STEPS.includes(m[1] as SwitchoverStep))
    throw new ZkmhaError(
      'BAD_CONFIG',
      `MHA_FAULT_SWITCHOVER_PAUSE_BEFORE_STEP must be <step>:<ms> with step one of ${SWITCHOVER_STEPS.join(', ')}`,
    );
  return { step: m[1] as SwitchoverStep, ms: Number(m[2]) };
}

export async function switchover(ctx: CliContext, input: SwitchoverInput): Promise<SwitchoverResult> {
  const { zk, paths, cfg } = ctx;
  const group = input.group;
  const pre = await existingGroup(ctx, group, {
    master: true,
    route: true,
    replicationOnly: { command: 'mha switchover', instead: 'to move a Galera writer: mha drain <writer>' },
  });
  if (input.to !== undefined && !pre.meta!.members.includes(input.to))
    throw refuse('check zookeeper', `${input.to} is not a member of '${group}'`);
  const flavor: Flavor = flavorFor(pre.meta!.flavor);
  const owner = cliWorker();
  const lock = await step(`lock ${group}`, () => acquireLock(zk, paths, group, { timeoutMs: 5000, owner }));
  const conns = NodeConnections.fromConfig(cfg.mysql);
  const ops: OpsContext = { flavor, conns };
  // Interrupted half-way, writes would stay cut: every step is bounded, so finish or roll back.
  // A hang-up means the terminal is gone: say nothing (a write to it could fail), carry on.
  const onSignal = (sig: NodeJS.Signals): void => {
    if (sig === 'SIGHUP') return;
    process.stderr.write(
      `mha switchover: ${sig} ignored: the switchover finishes or rolls back (bounded by --max-pause-ms)\n`,
    );
  };
  const onStderrError = (): void => undefined; // a terminal that went away must not end the switchover
  for (const sig of SIGNALS) process.on(sig, onSignal);
  process.stderr.on('error', onStderrError);
  let cut: CutWrites | null = null;
  try {
    return await runSwitchover(ctx, input, ops, {
      held: () => lock.isHeld(),
      onCut: (c) => {
        cut = c;
      },
      workerId: owner,
      say: (line) => process.stderr.write(`mha switchover: ${line}\n`),
    });
  } catch (err) {
    if (cut !== null) {
      const unrecorded = await recordSwitchoverFailed(ctx, cut, err);
      if (unrecorded !== null) process.stderr.write(`mha switchover: ${unrecorded}\n`);
    }
    throw err;
  } finally {
    for (const sig of SIGNALS) process.off(sig, onSignal);
    process.stderr.off('error', onStderrError);
    await lock.release().catch(() => undefined);
    await conns.closeAll();
  }
}

/** Signals ignored while a switchover runs. */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

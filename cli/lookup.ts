import { ZkmhaError } from '../core/errors';
import {
  decodeRecord,
  encodeRecord,
  haproxySchema,
  metaGroupSchema,
  metaHostSchema,
  type HaproxyRecord,
  type MetaGroup,
  type MetaHost,
} from '../core/records';
import type { Versioned } from '../core/view';
import type { GroupView } from '../core/view';
import type { MultiOp } from '../core/zk/client';
import { acquireLock } from '../core/zk/lock';
import type { CliContext } from './context';
import { cliWorker } from './worker';

export { existingGroup } from '../core/ops/group';
import { refuse, step } from './output';

/**
 * Reads and checks shared by several commands; each refuses (exit 1) with the step named. Also the
 * one write they share: a new read pool for haproxy/<group>.
 */
export async function groupOfNode(ctx: CliContext, node: string): Promise<MetaHost> {
  return step(`look up ${node}`, async () => {
    const p = ctx.paths.metaHost(node);
    const nd = await ctx.zk.getOrNull(p);
    if (nd === null) throw new ZkmhaError('CONFLICT', `node ${node} is not registered (no ${p})`);
    return decodeRecord(metaHostSchema, nd.data, p);
  });
}

/** Refuses while task/<group> records an open operation (failover, switchover, add). */
export function refuseOpenTask(ctx: CliContext, group: string, view: GroupView): void {
  if (view.task !== null)
    throw refuse(
      'check zookeeper',
      `an operation on '${group}' is open (${ctx.paths.task(group)}, kind ${view.task.record.kind})`,
    );
}

/** Compare-and-set of haproxy/<group> with `read` as its read pool (epoch and write target kept). */
export function setReadPool(
  ctx: CliContext,
  group: string,
  route: Versioned<HaproxyRecord>,
  read: readonly string[],
): MultiOp {
  const path = ctx.paths.haproxy(group);
  return {
    op: 'set',
    path,
    data: encodeRecord(haproxySchema, { ...route.record, read: [...read] }, path),
    version: route.version,
  };
}

/** meta_group/<group> with its version, for a compare-and-set of the member list. */
export async function readMeta(ctx: CliContext, group: string): Promise<Versioned<MetaGroup>> {
  const p = ctx.paths.metaGroup(group);
  return step(`read ${p}`, async () => {
    const nd = await ctx.zk.getOrNull(p);
    if (nd === null) throw new ZkmhaError('CONFLICT', `group '${group}' does not exist`);
    return { record: decodeRecord(metaGroupSchema, nd.data, p), version: nd.stat.version };
  });
}

/**
 * Runs `fn` holding lock/<group> — the lock the server workers take for failovers and read-pool
 * changes — so a command never interleaves with a failover or a switchover.
 */
export async function withGroupLock<T>(
  ctx: CliContext,
  group: string,
  fn: (held: () => boolean) => Promise<T>,
): Promise<T> {
  const lock = await step(`lock ${group}`, () =>
    acquireLock(ctx.zk, ctx.paths, group, { timeoutMs: 5000, owner: cliWorker() }),
  );
  try {
    return await fn(() => lock.isHeld());
  } finally {
    await lock.release().catch(() => undefined);
  }
}

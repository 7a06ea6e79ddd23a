import type { Secret } from '../config';
import { errorMessage } from '../errors';
import { classifyMysqlError, type MysqlErrorKind } from '../mysql/connection';
import type { Flavor, ServerState } from '../mysql/flavor';
import { parseNode } from '../names';
import { withTimeout } from '../timeout';
import type { NodeConnections } from './connections';
import { receivedPos } from '../candidate';
import { formatGtidPos } from '../gtid';
import { toNodePosition } from './positions';
import { waitApplied, type DrainProgress } from './drain';
import type { ParallelApply } from '../records';

/**
 * The MySQL side of a master change, shared by failover (server) and switchover / add /
 * setmaster (CLI). Each function is one idempotent step: running it again after a crash, or on
 * a node where it already happened, does no harm. The SQL itself lives in the flavor module.
 */
export interface OpsContext {
  readonly flavor: Flavor;
  readonly conns: NodeConnections;
}

export interface ReplicationCredentials {
  readonly user: string;
  readonly password: Secret;
}

export type FenceResult =
  | { readonly kind: 'fenced'; readonly killed: number; readonly state: ServerState }
  | { readonly kind: 'unreachable'; readonly errorKind: MysqlErrorKind; readonly error: string };

/**
 * Fences a master that may still answer: read_only=ON, then kills every client connection (so a
 * client with READ ONLY ADMIN or an open transaction cannot go on writing). Unreachable is not an
 * error: a dead master takes no writes. Bounded by `timeoutMs` overall.
 */
export async function fenceOldMaster(
  ctx: OpsContext,
  node: string,
  opts: { readonly timeoutMs: number; readonly keepUsers: readonly string[] },
): Promise<FenceResult> {
  try {
    return await withTimeout(
      (async (): Promise<FenceResult> => {
        const conn = await ctx.conns.open(node, Math.min(ctx.conns.connectTimeoutMs, opts.timeoutMs));
        try {
          await ctx.flavor.setReadOnly(conn, true);
          const killed = await ctx.flavor.killClientConnections(conn, { keepUsers: opts.keepUsers });
          const state = await ctx.flavor.readState(conn);
          return { kind: 'fenced', killed, state };
        } finally {
          await conn.close(200);
        }
      })(),
      opts.timeoutMs,
      `fence ${node}`,
      'MYSQL_TIMEOUT',
    );
  } catch (err) {
    return { kind: 'unreachable', errorKind: classifyMysqlError(err), error: errorMessage(err) };
  }
}

export interface DrainResult {
  /** Everything received was applied (before apply stalled, or the overall bound). */
  readonly applied: boolean;
  /** The received position that had to be applied. */
  readonly target: string;
  /** Why not, when not applied (stalled / too long, with the remaining transactions). */
  readonly why?: string;
}

export interface DrainOptions {
  /** Apply stalled: nothing applied for this long (the group's drainTimeoutMs). */
  readonly timeoutMs: number;
  /** Bound on the whole wait while apply progresses (the group's drainMaxMs; default timeoutMs). */
  readonly maxMs?: number;
  /** Hears of each step of progress (awaited; core/ops/drain). */
  readonly onProgress?: (p: DrainProgress) => Promise<void>;
  /**
   * Deadline of each round trip (beyond its own wait): a node that answers nothing fails with a
   * MYSQL_TIMEOUT within it, while one that answers and applies is waited for as above.
   */
  readonly answerMs?: number;
}

/** `p` bounded by `ms` (a MYSQL_TIMEOUT naming `what`), or as it is when no deadline is given. */
function answerWithin<T>(p: Promise<T>, ms: number | undefined, what: string): Promise<T> {
  return ms === undefined ? p : withTimeout(p, ms, what, 'MYSQL_TIMEOUT');
}

/**
 * Stops the replica receiving from its (old) master and waits until it applied what it received
 * (MASTER_GTID_WAIT on Gtid_IO_Pos), as long as apply progresses (core/ops/drain). Unapplied
 * relay logs would be thrown away by a promotion, so a `false` here must stop the promotion, not
 * be ignored.
 */
export async function drainReplica(ctx: OpsContext, node: string, opts: DrainOptions): Promise<DrainResult> {
  return ctx.conns.run(node, async (conn) => {
    await answerWithin(ctx.flavor.stopIoThread(conn), opts.answerMs, `stop the IO thread on ${node}`);
    const st = await answerWithin(ctx.flavor.readState(conn), opts.answerMs, `read the state of ${node}`);
    const target = formatGtidPos(receivedPos(toNodePosition(st)));
    if (target === '') return { applied: true, target };
    const r = await waitApplied(
      ctx.flavor,
      conn,
      node,
      target,
      {
        stallMs: opts.timeoutMs,
        maxMs: opts.maxMs ?? opts.timeoutMs,
        ...(opts.answerMs !== undefined ? { answerMs: opts.answerMs } : {}),
      },
      opts.onProgress,
    );
    return r.kind === 'applied' ? { applied: true, target } : { applied: false, target, why: r.why };
  });
}

/**
 * Lets `candidate` fetch from `source` (a more advanced replica, already drained) everything up to
 * `target`, then stops replication again. Used when the most advanced replica may not be promoted
 * (priority 0) but holds transactions — possibly acknowledged ones — the candidate lacks.
 */
export async function catchUpFrom(
  ctx: OpsContext,
  candidate: string,
  source: { readonly node: string; readonly target: string },
  opts: {
    readonly timeoutMs: number;
    readonly replication: ReplicationCredentials;
    /** Deadline of each round trip beyond its own wait (a candidate that answers nothing). */
    readonly answerMs?: number;
  },
): Promise<boolean> {
  const { host, port } = parseNode(source.node);
  const wait = opts.answerMs !== undefined ? opts.timeoutMs + opts.answerMs : undefined;
  return ctx.conns.run(candidate, async (conn) => {
    await answerWithin(
      ctx.flavor.replicateFrom(conn, {
        host,
        port,
        user: opts.replication.user,
        password: opts.replication.password,
        semiSync: false,
        gtidMode: 'slave_pos',
        tls: ctx.conns.tls,
      }),
      opts.answerMs,
      `replicate ${candidate} from ${source.node}`,
    );
    const ok = await answerWithin(
      ctx.flavor.waitForGtid(conn, source.target, opts.timeoutMs),
      wait,
      `wait on ${candidate} for ${source.target}`,
    );
    await answerWithin(ctx.flavor.stopIoThread(conn), opts.answerMs, `stop the IO thread on ${candidate}`);
    return ok;
  });
}

/**
 * Makes `node` the writable master: replication stopped and forgotten, the master side of
 * semi-sync on (AFTER_SYNC) iff the group uses it, read_only=OFF. Returns its state afterwards
 * (its gtid_binlog_pos is what the old master must reconcile against).
 */
export async function promoteCandidate(
  ctx: OpsContext,
  node: string,
  opts: {
    readonly semiSync: boolean;
    readonly semiSyncTimeoutMs?: number;
    readonly parallelApply?: ParallelApply;
    /** Deadline of the whole promotion (a dozen statements of milliseconds each when it answers). */
    readonly deadlineMs?: number;
  },
): Promise<ServerState> {
  return answerWithin(
    ctx.conns.run(node, async (conn) => {
      await ctx.flavor.promote(conn, opts);
      return ctx.flavor.readState(conn);
    }),
    opts.deadlineMs,
    `promote ${node}`,
  );
}

export type RepointResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

/**
 * Re-points every given replica to `master` with GTID auto-position (slave_pos) and starts it, in
 * parallel. Per-node results; one failing replica does not stop the others.
 */
export async function repointReplicas(
  ctx: OpsContext,
  replicas: readonly string[],
  master: string,
  opts: {
    readonly replication: ReplicationCredentials;
    readonly semiSync: boolean;
    readonly timeoutMs: number;
    /** Group setting: configured while each replica's replication is stopped. */
    readonly parallelApply?: ParallelApply;
  },
): Promise<Map<string, RepointResult>> {
  const { host, port } = parseNode(master);
  const out = new Map<string, RepointResult>();
  await Promise.all(
    replicas.map(async (node) => {
      try {
        await withTimeout(
          ctx.conns.run(node, (conn) =>
            ctx.flavor.replicateFrom(conn, {
              host,
              port,
              user: opts.replication.user,
              password: opts.replication.password,
              semiSync: opts.semiSync,
              gtidMode: 'slave_pos',
              tls: ctx.conns.tls,
              ...(opts.parallelApply !== undefined ? { parallelApply: opts.parallelApply } : {}),
            }),
          ),
          opts.timeoutMs,
          `re-point ${node} to ${master}`,
          'MYSQL_TIMEOUT',
        );
        out.set(node, { ok: true });
      } catch (err) {
        out.set(node, { ok: false, error: errorMessage(err) });
      }
    }),
  );
  return out;
}

import type { Config } from '../config';
import { errantTips } from '../candidate';
import { compareGtidPos, formatGtid, gtidGaps, parseGtidPos, type GtidPosLike } from '../gtid';
import { connectMysql, type MysqlConnection } from '../mysql/connection';
import type { Flavor, ServerState } from '../mysql/flavor';
import { parseNode } from '../names';
import { step } from './step';

/** MySQL access for the admin commands: admin connections per node, states, errant GTIDs. */

export function openAdmin(
  cfg: Config,
  node: string,
  opts: { queryTimeoutMs?: number } = {},
): Promise<MysqlConnection> {
  const { host, port } = parseNode(node);
  return connectMysql(
    { host, port },
    {
      user: cfg.mysql.user,
      password: cfg.mysql.password,
      connectTimeoutMs: cfg.mysql.connectTimeoutMs,
      ...(cfg.mysql.tls !== undefined ? { tls: cfg.mysql.tls } : {}),
      queryTimeoutMs: opts.queryTimeoutMs ?? Math.max(5000, cfg.mysql.connectTimeoutMs * 5),
    },
  );
}

/**
 * Opens an admin connection to every node in parallel (step "connect <node>" on failure, after
 * closing whatever did open), runs `fn`, and closes them all.
 */
export async function withNodes<T>(
  cfg: Config,
  nodes: readonly string[],
  fn: (conns: ReadonlyMap<string, MysqlConnection>) => Promise<T>,
): Promise<T> {
  const settled = await Promise.allSettled(nodes.map((n) => step(`connect ${n}`, () => openAdmin(cfg, n))));
  const conns = new Map<string, MysqlConnection>();
  settled.forEach((s, i) => {
    if (s.status === 'fulfilled') conns.set(nodes[i]!, s.value);
  });
  try {
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return await fn(conns);
  } finally {
    await Promise.all([...conns.values()].map((c) => c.close()));
  }
}

export async function readStates(
  flavor: Flavor,
  conns: ReadonlyMap<string, MysqlConnection>,
): Promise<Map<string, ServerState>> {
  const entries = await Promise.all(
    [...conns].map(
      async ([n, c]) => [n, await step(`read state of ${n}`, () => flavor.readState(c))] as const,
    ),
  );
  return new Map(entries);
}

/**
 * The transactions `node` holds that `master` lacks, as text for an error message
 * ("0-3-1..0-3-2", "0-3-5 (master has 0-1-5)"); null when the node holds nothing extra.
 * Only positions are compared (core/gtid explains what that can and cannot see).
 */
export function errantTransactions(nodePos: GtidPosLike, masterPos: GtidPosLike): string | null {
  const rel = compareGtidPos(masterPos, nodePos);
  if (rel === 'equal' || rel === 'ahead') return null;
  const master = typeof masterPos === 'string' ? parseGtidPos(masterPos) : masterPos;
  const parts = gtidGaps(masterPos, nodePos).map((g) => {
    const d = g.domain;
    const s = g.upTo.server;
    if (g.diverged) {
      const m = master.find((x) => x.domain === d);
      return `${formatGtid(g.upTo)} (master has ${m !== undefined ? formatGtid(m) : 'nothing'} in domain ${d})`;
    }
    const from = (g.after?.seq ?? 0n) + 1n;
    return from === g.upTo.seq ? formatGtid(g.upTo) : `${d}-${s}-${from}..${formatGtid(g.upTo)}`;
  });
  return parts.join(', ');
}

/**
 * Errant transactions of a node about to replicate from `master` (add, addhost): what positions
 * show (errantTransactions), plus local writes positions cannot show — a binlog tip carrying the
 * node's own server_id that it did not get from replication and that is not the master's own tip
 * in that domain (a fresh server written to directly, whose sequence numbers happen to be lower
 * than the master's). Null when none.
 */
export function errantForReplica(node: ServerState, master: ServerState): string | null {
  const byPos = errantTransactions(node.gtidCurrentPos, master.gtidCurrentPos);
  if (byPos !== null) return byPos;
  const masterTips = new Map(parseGtidPos(master.gtidBinlogPos).map((g) => [g.domain, g]));
  const local = errantTips(node.gtidBinlogPos, node.gtidSlavePos, node.serverId).filter((g) => {
    const m = masterTips.get(g.domain);
    return m === undefined || m.server !== g.server || m.seq !== g.seq;
  });
  if (local.length === 0) return null;
  return local.map((g) => `local writes up to ${formatGtid(g)} (server_id ${g.server})`).join(', ');
}

/** `host:port` of the master a replica is configured to replicate from. */
export function masterOf(state: ServerState): string | null {
  return state.replica === null ? null : `${state.replica.masterHost}:${state.replica.masterPort}`;
}

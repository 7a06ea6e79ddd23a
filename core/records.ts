import { z } from 'zod';
import { GROUP_RE, isHost, isNodeName, isPort } from './names';
import { appendResultSchema } from './append';
import { ZkmhaError } from './errors';

/**
 * One validated type per znode value (design §3). Every value is UTF-8 JSON with `"v": 1`; reading
 * goes through `decodeRecord`, which either returns a fully typed value or throws BAD_RECORD naming
 * the path — never a half-parsed object.
 */
const v = z.literal(1);
const node = z.string().refine(isNodeName, 'must be host:port');
const group = z.string().regex(GROUP_RE, 'invalid group name');
const port = z.number().int().refine(isPort, 'must be a port 1-65535');
// Safe integers only: past 2^53, `epoch + 1 === epoch` and a route could never be superseded.
const ts = z.number().int().nonnegative().safe(); // epoch milliseconds
const epoch = z.number().int().nonnegative().safe();
/** A timer's budget: setTimeout fires at once (after 1 ms) for any delay past 2^31-1 ms. */
const timerMs = z.number().int().positive().max(2_147_483_647);
const gtid = z.string().max(65536); // validated further by core/gtid where used

/**
 * MariaDB parallel replication on every replica, set by `mha add`, `addhost`, every re-point and
 * promotion. Single-threaded apply (MariaDB's default) falls seconds behind a master under 8
 * concurrent writers on this 2-core machine, and a failover must wait for that backlog (issue 12;
 * `npm run bench:apply` measures the modes). `threads: 0` turns it off.
 */
export const parallelApplySchema = z
  .object({
    /** slave_parallel_threads: worker threads applying in parallel (0: the SQL thread alone). */
    threads: z.number().int().min(0).max(256).default(4),
    /**
     * slave_parallel_mode. 'conservative' applies in parallel only what committed together on
     * the master (group commit); 'optimistic' also runs non-conflicting transactions in
     * parallel and retries the ones that conflict.
     */
    mode: z.enum(['conservative', 'optimistic', 'aggressive', 'minimal', 'none']).default('optimistic'),
    /**
     * innodb_flush_log_at_trx_commit while the node is a replica; a promotion sets 1 before it
     * takes writes. 2 (no fsync per applied commit) is safe for a replica: its applied position
     * (mysql.gtid_slave_pos) is in the same redo log as the data, so an OS crash only makes it
     * fetch the last second again, and semi-sync acknowledges on receipt, before apply. It let
     * replicas keep up in bench:apply, but bench:load showed no gain yet, so 1 stays the default.
     */
    replicaFlushLogAtCommit: z.union([z.literal(1), z.literal(2)]).default(1),
  })
  .strict();
export type ParallelApply = z.infer<typeof parallelApplySchema>;

export const groupSettingsSchema = z
  .object({
    /** Lag beyond which a replica leaves the read pool. */
    maxReadLagSeconds: z.number().nonnegative().default(30),
    /** Anti-flap: no second automatic failover within this period. */
    recoveryBlockSeconds: z.number().int().nonnegative().safe().default(300),
    /** Confirmation budget before declaring the master dead (design §5.3). */
    confirmMs: timerMs.default(1500),
    /**
     * Bound on how long an old master's agent, cut off from ZooKeeper, takes to fence its mysqld
     * once the failover stopped the replicas' IO threads (its failsafe re-check: the next check,
     * client.checkIntervalMs, plus asking the replicas, at most mysql.connectTimeoutMs, plus the
     * fence). A candidate is not made writable before it ran out when nothing else proves the old
     * master can no longer acknowledge a commit (issue 11 hole 3, server/failover/old-master-gate.ts).
     */
    failsafeRecheckMs: timerMs.default(2000),
    /**
     * The candidate's drain (applying what it received) fails when apply makes no progress for
     * this long; while it progresses the failover waits (up to drainMaxMs).
     */
    drainTimeoutMs: timerMs.default(5000),
    /** Bound on a drain that keeps progressing (a huge backlog): then the failover fails and alerts. */
    drainMaxMs: timerMs.default(600_000),
    /**
     * Bound on appending from the dead master's binlog through its agent (core/append.ts); past it
     * the failover goes on without (and the semi-sync policy decides what that means).
     */
    appendTimeoutMs: timerMs.default(3000),
    /**
     * How long the failover's choice waits for replicas that do not answer (issue 10 §2): with
     * MariaDB semi-sync one replica's acknowledgement is enough, so a replica not heard from may
     * be the only one holding an acknowledged commit. Past it the semi-sync policy decides
     * (core/candidate-safety.ts).
     */
    replicaWaitMs: timerMs.default(2000),
    /**
     * A failover not finished this long after it began raises `failover-stuck` (and goes on
     * trying); every step touching the candidate has its own, shorter deadline (issue 11 hole 1).
     */
    failoverTimeoutMs: timerMs.default(30_000),
    /** Semi-sync policy (core/semisync.ts); round 1's boolean still reads as on/off. */
    semiSync: z
      .union([z.enum(['off', 'on', 'required']), z.boolean()])
      .default('off')
      .transform((x) => (x === true ? 'on' : x === false ? 'off' : x)),
    /** rpl_semi_sync_master_timeout under `on`: how long a commit waits before going async. */
    semiSyncTimeoutMs: z.number().int().positive().max(3_600_000).default(1000),
    autoRejoin: z.boolean().default(false),
    parallelApply: parallelApplySchema.default({}),
    /**
     * Ban (issue 11, the CTDB "ban" of a misbehaving node): a node that was the failed master of
     * this many automatic failovers within banWindowMs is no longer promoted until a person lifts
     * it (`mha unban <node>`). 0 turns banning off.
     */
    banAfterFailovers: z.number().int().min(0).max(1000).default(3),
    banWindowMs: z
      .number()
      .int()
      .positive()
      .max(31 * 24 * 3_600_000)
      .default(3_600_000),
  })
  .strict();
export type GroupSettings = z.infer<typeof groupSettingsSchema>;

export const metaGroupSchema = z
  .object({
    v,
    name: group,
    flavor: z.enum(['mariadb', 'mysql', 'galera']),
    writePort: port,
    readPort: port,
    members: z.array(node),
    settings: groupSettingsSchema.default({}),
  })
  .strict();
export type MetaGroup = z.infer<typeof metaGroupSchema>;

export const metaHostSchema = z
  .object({
    v,
    group,
    host: z.string().refine(isHost, 'invalid host'),
    port,
    dc: z.string().max(64).optional(),
    priority: z.union([z.literal(0), z.literal(1), z.literal(2)]),
    tags: z.array(z.string().max(64)).optional(),
    /**
     * Set by a server worker when the node failed over too often (settings.banAfterFailovers within
     * banWindowMs): never chosen as a candidate while present; `mha unban <node>` removes it.
     */
    banned: z
      .object({
        at: ts,
        /** Failovers away from this node in the window (their master epochs). */
        epochs: z.array(epoch).max(1000),
        windowMs: z.number().int().positive(),
        by: z.string().max(128),
      })
      .strict()
      .optional(),
  })
  .strict();
export type MetaHost = z.infer<typeof metaHostSchema>;

export const roleSchema = z.enum(['master', 'replica', 'none']);

/** online.galera: what the router decision (core/galera-route.ts) needs of a Galera node. */
export const galeraOnlineSchema = z
  .object({
    /** wsrep_cluster_status; only 'Primary' is ever routed. */
    clusterStatus: z.enum(['Primary', 'non-Primary', 'Disconnected']),
    /** wsrep_local_state: 1 Joining, 2 Donor/Desynced, 3 Joined, 4 Synced (0: not connected). */
    localState: z.number().int().min(0).max(16),
    localStateComment: z.string().max(64),
    ready: z.boolean(),
    clusterSize: z.number().int().nonnegative().max(1024),
    /** wsrep_cluster_state_uuid ('' while unknown). */
    stateUuid: z
      .string()
      .regex(/^(|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/, 'must be a UUID'),
    /** wsrep_last_committed when published (-1 unknown); not republished for every commit. */
    lastCommitted: z.number().int().min(-1).safe(),
  })
  .strict();
export type GaleraOnline = z.infer<typeof galeraOnlineSchema>;
export const onlineSchema = z
  .object({
    v,
    mysqldUp: z.literal(true),
    role: roleSchema,
    readOnly: z.boolean(),
    gtidCurrent: gtid,
    gtidIo: gtid.optional(),
    /** gtid_slave_pos: what the replica applied from its master. */
    gtidSlave: gtid.optional(),
    lagSeconds: z.number().nonnegative().nullable().optional(),
    ioRunning: z.boolean().optional(),
    /** The IO thread retries its connection to the master (it is gone or unreachable). */
    ioConnecting: z.boolean().optional(),
    sqlRunning: z.boolean().optional(),
    /** The master this replica replicates from, as reported by SHOW SLAVE STATUS. */
    masterNode: node.optional(),
    /** Apply backlog (core/backlog): received (gtidIo) − applied (gtidSlave) transactions. */
    backlogTrx: z.number().int().nonnegative().optional(),
    /** Seconds to apply the backlog at the measured apply rate; null when not estimable. */
    backlogSeconds: z.number().nonnegative().nullable().optional(),
    /** A master's semi-sync side: enabled, in effect (Rpl_semi_sync_master_status), clients. */
    semiSync: z
      .object({ enabled: z.boolean(), active: z.boolean(), clients: z.number().int().nonnegative() })
      .strict()
      .optional(),
    /** A Galera node's wsrep state (groups of flavor galera; core/mysql/galera.ts). */
    galera: galeraOnlineSchema.optional(),
    at: ts,
  })
  .strict();
export type OnlineRecord = z.infer<typeof onlineSchema>;

export const agentSchema = z
  .object({
    v,
    pid: z.number().int().positive().safe(),
    httpPort: z.number().int().min(0).max(65535),
    /**
     * The address the agent's HTTP listener is bound to (client.httpHost). Routers point HAProxy's
     * health check at it; a wildcard (0.0.0.0) means "the node's own address". Absent in records
     * of older agents.
     */
    httpHost: z.string().max(253).refine(isHost, 'invalid host').optional(),
    binlogDir: z.string(),
    /** Set while the agent's mysqld is down (design §5.3: a definitive "dead"). */
    mysqldDown: z.boolean().optional(),
    /**
     * Set while the agent's mysqld is down because it stopped answering (failAfter consecutive
     * check timeouts: hung, not dead): for how long, in ms, it had given no answer when this was
     * published. The server's confirmation builds on it instead of repeating it (issue 11 hole 2).
     */
    unansweredMs: z.number().int().nonnegative().safe().optional(),
    /** The answer to the last append request (core/append.ts). */
    append: appendResultSchema.optional(),
    at: ts,
  })
  .strict();
export type AgentRecord = z.infer<typeof agentSchema>;

export const masterSchema = z.object({ v, node, epoch, since: ts, reason: z.string().max(1024) }).strict();
export type MasterRecord = z.infer<typeof masterSchema>;

export const haproxySchema = z.object({ v, epoch, write: node.nullable(), read: z.array(node) }).strict();
export type HaproxyRecord = z.infer<typeof haproxySchema>;

export const whiteSchema = z
  .object({ v, reason: z.string().max(1024), by: z.string().max(256), at: ts })
  .strict();
export type WhiteRecord = z.infer<typeof whiteSchema>;

export const taskSchema = z
  .object({
    v,
    id: z.string().max(128),
    kind: z.enum(['failover', 'switchover', 'add']),
    step: z.string().max(64),
    oldMaster: node.nullable(),
    candidate: node.nullable(),
    startedAt: ts,
    worker: z.string().max(128),
    /** New epoch the operation is moving the group to. */
    epoch: epoch.optional(),
    detail: z.record(z.unknown()).default({}),
  })
  .strict();
export type TaskRecord = z.infer<typeof taskSchema>;

export const alertSchema = z
  .object({ v, kind: z.string().max(64), at: ts, detail: z.record(z.unknown()).default({}) })
  .strict();
export type AlertRecord = z.infer<typeof alertSchema>;

/**
 * The alerts zkmha writes: the `<kind>` of `watch_down/<group>__<kind>` and the record's `kind`.
 * Writers take this union; readers keep accepting any string (alertSchema), so an alert from a
 * newer version is still listed, not rejected.
 */
export const ALERT_KINDS = [
  /** Anti-flap marker of the last automatic failover (deleting it acknowledges it). */
  'failover',
  'failover-failed',
  'no-candidate',
  'failover-suppressed',
  'antiflap-blocked',
  'heartbeat-lost-mysql-alive',
  'route-mismatch',
  'master-read-only',
  'operation-abandoned',
  'switchover-failed',
  'router',
  /** A master that acknowledges less safely than its group's semi-sync policy asks. */
  'semi-sync-off',
  /** A Galera group with no Synced member of a Primary Component to write to (core/galera-route). */
  'galera-non-primary',
  /**
   * Replicas a master change could not re-point (detail.nodes); the workers retry them until they
   * follow the master, then delete the alert (server/actions/repoint.ts).
   */
  'repoint-failed',
  /** Members banned from candidacy after too many failovers (meta_host.banned; `mha unban`). */
  'node-banned',
  /** haproxy/ or master/ invalid or inconsistent and not (yet) rewritten: what, and what fixes it. */
  'record-invalid',
  /** haproxy/ or master/ was rewritten from the last good state at a new epoch: what was found. */
  'record-repaired',
  /**
   * A failover that may not promote: replicas did not answer, so no candidate provably holds every
   * acknowledged commit, and the group's semi-sync policy is `required` (core/candidate-safety.ts).
   */
  'failover-blocked',
  /** A failover not finished within settings.failoverTimeoutMs (still trying). */
  'failover-stuck',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/**
 * accept_loss/<group>: a person's one-shot decision (`mha failover <group> --accept-loss`) that
 * the open failover of `epoch` may promote although some replicas did not answer, so that
 * acknowledged transactions only they hold may be missing. The worker reads it under the lock when
 * it decides, and deletes it in the failover's commit multi; one for another epoch is ignored.
 */
export const acceptLossSchema = z
  .object({
    v,
    /** The epoch of the failover it applies to (task/<group>.epoch when it was given). */
    epoch,
    /** The task it was given for (informational: a re-created task of the same epoch still counts). */
    taskId: z.string().max(128),
    /** Who decided (user@host), and why. */
    by: z.string().max(256),
    reason: z.string().max(1024),
    at: ts,
  })
  .strict();
export type AcceptLossRecord = z.infer<typeof acceptLossSchema>;

export const slaveDownSchema = z
  .object({ v, since: ts, reason: z.string().max(1024), drained: z.boolean().optional() })
  .strict();
export type SlaveDownRecord = z.infer<typeof slaveDownSchema>;

export const rejoinSchema = z
  .object({
    v,
    group,
    newMaster: node,
    epoch,
    promotedAt: ts,
    gtidAtPromotion: gtid,
    appendedTo: gtid.optional(),
  })
  .strict();
export type RejoinRecord = z.infer<typeof rejoinSchema>;

export const metaRouterSchema = z
  .object({
    v,
    host: z.string().max(253),
    applied: z.record(epoch),
    at: ts,
    lastError: z.string().max(4096).optional(),
  })
  .strict();
export type MetaRouterRecord = z.infer<typeof metaRouterSchema>;

export const serverSchema = z
  .object({ v, host: z.string().max(253), pid: z.number().int().positive().safe(), at: ts })
  .strict();
export type ServerRecord = z.infer<typeof serverSchema>;

/** Value of a `lock/<group>/lock-<guid>-<seq>` node: who holds (or waits for) the lock. */
export const lockSchema = z
  .object({
    v,
    owner: z.string().min(1).max(256),
    pid: z.number().int().positive().safe().optional(),
    at: ts,
  })
  .strict();
export type LockRecord = z.infer<typeof lockSchema>;

export const historyStepSchema = z
  .object({ name: z.string(), ms: z.number().nonnegative(), ok: z.boolean() })
  .strict();
export const historySchema = z
  .object({
    v,
    kind: z.string().max(64),
    from: node.nullable(),
    to: node.nullable(),
    epoch,
    startedAt: ts,
    endedAt: ts,
    steps: z.array(historyStepSchema),
    lostTransactions: z.string().optional(),
    detail: z.record(z.unknown()).default({}),
  })
  .strict();
export type HistoryRecord = z.infer<typeof historySchema>;

/** Encodes a record for a znode; validates first, so nothing invalid is ever written. */
/**
 * The layout root's value, written by `mha init --acl`: the digest identity (`user:digest`, no
 * password) of each role, so a client or router can name them in the ACL of the nodes it creates
 * (ZooKeeper shows digests in getACL only to a session with ADMIN on the node: readers see
 * `user:x`). A root without a value (or with `acl: null`) means ACLs are not set up.
 */
const digestIdentity = z.string().regex(/^[A-Za-z0-9_.@-]{1,64}:[A-Za-z0-9+/]{27}=$/, 'must be user:digest');
export const layoutSchema = z
  .object({
    v,
    acl: z
      .object({
        full: z.array(digestIdentity).min(1).max(16),
        router: z.array(digestIdentity).max(16),
        client: z.array(digestIdentity).max(16),
      })
      .strict()
      .nullable(),
  })
  .strict();
export type LayoutRecord = z.infer<typeof layoutSchema>;

export function encodeRecord<S extends z.ZodTypeAny>(schema: S, value: z.input<S>, path: string): Buffer {
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new ZkmhaError(
      'BAD_RECORD',
      `refusing to write invalid record to ${path}: ${formatZodError(parsed.error)}`,
      { path },
    );
  return Buffer.from(JSON.stringify(parsed.data), 'utf8');
}

/** Decodes and validates a znode value; throws BAD_RECORD naming the path on any defect. */
export function decodeRecord<S extends z.ZodTypeAny>(
  schema: S,
  data: Buffer | null | undefined,
  path: string,
): z.output<S> {
  if (data === null || data === undefined || data.length === 0) {
    throw new ZkmhaError('BAD_RECORD', `${path}: empty value`, { path });
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch (err) {
    throw new ZkmhaError('BAD_RECORD', `${path}: not UTF-8 JSON (${(err as Error).message})`, { path });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success)
    throw new ZkmhaError('BAD_RECORD', `${path}: ${formatZodError(parsed.error)}`, { path });
  return parsed.data;
}

export function formatZodError(err: z.ZodError): string {
  return err.issues
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(value)'}: ${i.message}`)
    .join('; ');
}

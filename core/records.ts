import { z } from 'zod';
import { GROUP_RE, isHost, isNodeName, isPort } from './names';
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
const ts = z.number().int().nonnegative(); // epoch milliseconds
const epoch = z.number().int().nonnegative();
const gtid = z.string().max(65536); // validated further by core/gtid where used

export const groupSettingsSchema = z
  .object({
    /** Lag beyond which a replica leaves the read pool. */
    maxReadLagSeconds: z.number().nonnegative().default(30),
    /** Anti-flap: no second automatic failover within this period. */
    recoveryBlockSeconds: z.number().int().nonnegative().default(300),
    /** Confirmation budget before declaring the master dead (design §5.3). */
    confirmMs: z.number().int().positive().default(1500),
    /** Bound on the candidate's drain (applying what it received). */
    drainTimeoutMs: z.number().int().positive().default(5000),
    /** Semi-sync policy (core/semisync.ts); round 1's boolean still reads as on/off. */
    semiSync: z
      .union([z.enum(['off', 'on', 'required']), z.boolean()])
      .default('off')
      .transform((x) => (x === true ? 'on' : x === false ? 'off' : x)),
    /** rpl_semi_sync_master_timeout under `on`: how long a commit waits before going async. */
    semiSyncTimeoutMs: z.number().int().positive().max(3_600_000).default(1000),
    autoRejoin: z.boolean().default(false),
  })
  .strict();
export type GroupSettings = z.infer<typeof groupSettingsSchema>;

export const metaGroupSchema = z
  .object({
    v,
    name: group,
    flavor: z.enum(['mariadb', 'mysql']),
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
  })
  .strict();
export type MetaHost = z.infer<typeof metaHostSchema>;

export const roleSchema = z.enum(['master', 'replica', 'none']);
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
    /** A master's semi-sync side: enabled, in effect (Rpl_semi_sync_master_status), clients. */
    semiSync: z
      .object({ enabled: z.boolean(), active: z.boolean(), clients: z.number().int().nonnegative() })
      .strict()
      .optional(),
    at: ts,
  })
  .strict();
export type OnlineRecord = z.infer<typeof onlineSchema>;

export const agentSchema = z
  .object({
    v,
    pid: z.number().int().positive(),
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
  .object({ v, host: z.string().max(253), pid: z.number().int().positive(), at: ts })
  .strict();
export type ServerRecord = z.infer<typeof serverSchema>;

/** Value of a `lock/<group>/lock-<guid>-<seq>` node: who holds (or waits for) the lock. */
export const lockSchema = z
  .object({ v, owner: z.string().min(1).max(256), pid: z.number().int().positive().optional(), at: ts })
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

import type { Config, ClientConfig } from '../core/config';
import { requireSection } from '../core/config';
import { errorMessage, isZkmhaError } from '../core/errors';
import { createLogger, type Logger } from '../core/log';
import { flavorFor, galera, type Flavor, type MysqlTarget } from '../core/mysql';
import { parseNode } from '../core/names';
import {
  agentSchema,
  decodeRecord,
  encodeRecord,
  masterSchema,
  metaGroupSchema,
  metaHostSchema,
  onlineSchema,
  taskSchema,
  type AgentRecord,
  type MasterRecord,
  type MetaGroup,
  type OnlineRecord,
} from '../core/records';
import { Zk, type NodeData, type Watch } from '../core/zk/client';
import { ZkPaths } from '../core/zk/paths';
import { appendRequestSchema, type AppendResult } from '../core/append';
import { performAppend } from './append';
import type { AgentCounters, AgentSnapshot } from './endpoints';
import {
  decideFence,
  decideStray,
  fenceGate,
  fenceThresholdMs,
  replicasToConfirm,
  unregistered,
  type ReplicaReport,
  type StrayDecision,
  type StrayView,
} from './fence';
import {
  decideHealth,
  desiredOnline,
  liveStatus,
  liveStatusAt,
  onlineAction,
  reportsMysqldDown,
  unansweredMs,
  type Health,
  type Observation,
  type OnlineWish,
} from './health';
import { startAgentHttp, type AgentHttp } from './http';
import { createClientMetrics, type ClientMetrics } from './metrics';
import { askReplica, fenceLocal, MysqldProbe, registeredReplicas } from './probe';

/**
 * The heartbeat client (design §4) as a thin adapter around the pure core in health.ts and
 * fence.ts. Three independent loops, so none can stall another:
 *  - checks: probe mysqld every checkIntervalMs, or at once when the held connection drops;
 *  - publication: bring online/<node> and agent/<node> in line with the health (serialised, re-run
 *    on every change, on reconnect and after a new session);
 *  - fencing: while ZooKeeper is lost for 2/3 of the session timeout, fence a writable mysqld
 *    unless every replica is still attached (re-evaluated on every check while disconnected);
 *    while connected, fence a writable mysqld that ZooKeeper says must not be writable (master/
 *    names another node, or rejoin/<node> exists; decideStray), confirmed by fresh reads.
 */
export interface StartClientOptions {
  readonly logger?: Logger;
}

export interface ClientHandle {
  readonly node: string;
  /** The real HTTP port (ephemeral when configured as 0). */
  readonly httpPort: number;
  snapshot(): AgentSnapshot;
  stop(): Promise<void>;
}

type RejoinState = 'unknown' | 'absent' | 'present';

/** Checks after a wsrep notification, in ms after it (see onWsrepNotify). */
const WSREP_NOTIFY_RECHECK_MS = [100, 300, 1000, 2000] as const;

/** Runs `fn` one at a time; a request while it runs schedules exactly one more run. */
class Serial {
  private running = false;
  private again = false;
  constructor(private readonly fn: () => Promise<void>) {}
  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void (async () => {
      do {
        this.again = false;
        try {
          await this.fn();
        } catch {
          // fn logs its own failures
        }
      } while (this.again);
      this.running = false;
    })();
  }
}

class Agent {
  readonly node: string;
  private readonly cc: ClientConfig;
  private readonly paths: ZkPaths;
  private readonly flavor: Flavor;
  private readonly probe: MysqldProbe;
  private zk!: Zk;
  private http!: AgentHttp;
  private closed = false;

  private health: Health = { kind: 'starting' };
  private group: string | null = null;
  private meta: MetaGroup | null = null;
  private master: MasterRecord | null = null;
  /** When the current master/ record was learnt (endpoints.ts: a status older than it is stale). */
  private masterSeenAt = 0;
  private masterRefresh: Promise<void> | null = null;
  /** HTTP checks waiting for the next change of the snapshot (http.ts settle). */
  private changeWaiters: Array<() => void> = [];
  private metrics!: ClientMetrics;
  private rejoin: RejoinState = 'unknown';
  private rejoinLogged = false;
  private lastWish: string | null = null;

  /** What we believe ZooKeeper holds for our ephemerals (null: absent). */
  private onlinePublished: OnlineRecord | null = null;
  private agentPublished: AgentRecord | null = null;
  /** The answer to the last append request (published in agent/<node>), and the ids handled. */
  private appendAnswer: AppendResult | null = null;
  private readonly appendsHandled = new Set<string>();

  private zkConnected = false;
  private zkSilentSince: number | null = null;
  private lastFenceLog: string | null = null;
  /** When either fence last set read_only=ON: statuses read before it are not acted on again. */
  private lastFenceAt: number | null = null;
  private lastStray: StrayDecision | null = null;

  private checkTimer: NodeJS.Timeout | null = null;
  private fenceTimer: NodeJS.Timeout | null = null;
  private checking = false;
  private checkAgain = false;
  private readonly publisher = new Serial(() => this.reconcile());
  private readonly fencer = new Serial(() => this.evaluateFence());
  private readonly strayFencer = new Serial(() => this.evaluateStray());
  private groupWatches: Watch[] = [];
  private nodeWatches: Watch[] = [];

  private readonly counters: {
    checks: Record<Observation['kind'], number>;
    lastCheckMs: number;
    onlineWrites: number;
    selfFences: number;
    failsafeHolds: number;
    strayFences: number;
    sessions: number;
    expiries: number;
    wsrepNotifies: number;
  } = {
    checks: { ok: 0, refused: 0, dropped: 0, timeout: 0, error: 0 },
    lastCheckMs: 0,
    onlineWrites: 0,
    selfFences: 0,
    failsafeHolds: 0,
    strayFences: 0,
    sessions: 0,
    expiries: 0,
    wsrepNotifies: 0,
  };

  constructor(
    private readonly cfg: Config,
    private readonly log: Logger,
  ) {
    this.cc = requireSection(cfg, 'client');
    this.node = this.cc.node;
    this.paths = new ZkPaths(cfg.zookeeper.root);
    this.flavor = flavorFor('mariadb');
    const { host, port } = parseNode(this.node);
    const target: MysqlTarget =
      this.cc.socket !== undefined ? { socketPath: this.cc.socket } : { host, port };
    this.probe = new MysqldProbe({
      target,
      cfg,
      // A Galera group's checks also read the wsrep state (published in online.galera).
      flavor: { ...this.flavor, readState: (c) => (this.isGalera() ? galera : this.flavor).readState(c) },
      timeoutMs: this.queryTimeoutMs(),
      onDrop: (why) => {
        this.log.warn({ why }, 'connection to mysqld dropped; checking at once');
        this.requestCheck();
      },
    });
  }

  /** The node's group is a Galera cluster (meta_group.flavor), as last read. */
  private isGalera(): boolean {
    return this.meta?.flavor === 'galera';
  }

  /**
   * `mha client notify` (wsrep_notify_cmd): mariadbd says its wsrep state changed. The event is
   * only a hint — nothing in it is trusted — the agent checks mysqld at once and publishes what it
   * reads, instead of waiting for the next tick. mariadbd runs the command before its status
   * variables show the change (a check at once still read the old view here), so a short burst
   * of checks follows.
   */
  private onWsrepNotify(event: Readonly<Record<string, string>>): void {
    this.counters.wsrepNotifies++;
    this.log.info({ event }, 'wsrep notification; checking mysqld now');
    this.requestCheck();
    for (const ms of WSREP_NOTIFY_RECHECK_MS) setTimeout(() => this.requestCheck(), ms).unref();
  }

  /** A check must answer within the interval (so a hung mysqld is counted once per tick), but never below 200 ms. */
  private queryTimeoutMs(): number {
    return Math.max(200, Math.min(this.cfg.mysql.connectTimeoutMs, this.cc.checkIntervalMs));
  }

  async start(): Promise<void> {
    this.metrics = createClientMetrics(() => this.snapshot());
    this.http = await startAgentHttp(this.cc.httpHost, this.cc.httpPort, {
      snapshot: () => this.snapshot(),
      metrics: this.metrics,
      nextChange: (ms) => this.nextChange(ms),
      onWsrepNotify: (e) => this.onWsrepNotify(e),
    });
    try {
      this.zk = await Zk.connect({
        hosts: this.cfg.zookeeper.hosts,
        sessionTimeoutMs: this.cfg.zookeeper.sessionTimeoutMs,
        ...(this.cfg.zookeeper.auth ? { auth: this.cfg.zookeeper.auth } : {}),
        aclRoot: this.cfg.zookeeper.root,
        logger: this.log,
      });
    } catch (err) {
      await this.http.close();
      throw err;
    }
    this.zkConnected = true;
    this.counters.sessions = 1;
    this.zk.on('connected', () => {
      this.zkConnected = true;
      if (this.zkSilentSince !== null)
        this.log.info({ lostMs: Date.now() - this.zkSilentSince }, 'zookeeper connection back');
      this.zkSilentSince = null;
      this.clearFenceTimer();
      this.publisher.kick();
    });
    this.zk.on('disconnected', () => {
      this.zkConnected = false;
      // The ensemble counts the session's silence from the last exchange, not from when we noticed
      // (a hung server is only detected after a third of the session timeout): so do we.
      this.zkSilentSince ??= Math.min(Date.now(), this.zk.lastHeardAt);
      this.armFenceTimer();
    });
    this.zk.on('expired', () => {
      // Our ephemerals died with the session.
      this.counters.expiries++;
      // A failover may have created rejoin/<node> meanwhile: hold online/ back until the watch
      // reads it again in the new session.
      this.rejoin = 'unknown';
      this.onlinePublished = null;
      this.agentPublished = null;
    });
    this.zk.on('session', () => {
      this.counters.sessions++;
      this.onlinePublished = null;
      this.agentPublished = null;
      this.log.info({ session: this.zk.sessionId }, 'new zookeeper session; republishing agent/ and online/');
      this.publisher.kick();
    });

    this.nodeWatches.push(this.zk.watchData(this.paths.rejoin(this.node), (v) => this.onRejoin(v)));
    this.nodeWatches.push(this.zk.watchData(this.paths.metaHost(this.node), (v) => this.onMetaHost(v)));
    this.log.info(
      {
        httpPort: this.http.port,
        checkIntervalMs: this.cc.checkIntervalMs,
        failAfter: this.cc.failAfter,
        sessionTimeoutMs: this.zk.sessionTimeoutMs,
      },
      'heartbeat client started',
    );
    this.publisher.kick();
    this.requestCheck();
  }

  get httpPort(): number {
    return this.http.port;
  }

  // --- watches ---------------------------------------------------------------------------------

  private onRejoin(v: NodeData | null): void {
    const next: RejoinState = v === null ? 'absent' : 'present';
    if (next === 'present' && this.rejoin !== 'present') this.log.info(`rejoin/${this.node} exists`);
    if (next === 'absent' && this.rejoin === 'present') {
      this.log.info(`rejoin/${this.node} removed`);
      this.rejoinLogged = false;
    }
    this.rejoin = next;
    this.publisher.kick();
  }

  private onMetaHost(v: NodeData | null): void {
    const path = this.paths.metaHost(this.node);
    let group: string | null = null;
    if (v !== null) {
      try {
        group = decodeRecord(metaHostSchema, v.data, path).group;
      } catch (err) {
        // Invalid: keep the last good group (design §2).
        this.log.error({ err: errorMessage(err) }, 'invalid meta_host record; keeping the last good one');
        return;
      }
    }
    if (group === this.group) return;
    this.log.info(
      { group, previous: this.group },
      group === null ? `meta_host/${this.node} absent: node not in a group` : 'node belongs to group',
    );
    for (const w of this.groupWatches) w.cancel();
    this.groupWatches = [];
    this.group = group;
    this.meta = null;
    this.master = null;
    if (group === null) return;
    this.groupWatches.push(
      this.zk.watchData(this.paths.metaGroup(group), (d) => {
        if (d === null) {
          this.meta = null;
          return;
        }
        try {
          const wasGalera = this.isGalera();
          this.meta = decodeRecord(metaGroupSchema, d.data, this.paths.metaGroup(group));
          // A Galera group: read the wsrep state now rather than at the next tick.
          if (this.isGalera() && !wasGalera) this.requestCheck();
          this.publisher.kick();
        } catch (err) {
          this.log.error({ err: errorMessage(err) }, 'invalid meta_group record; keeping the last good one');
        }
      }),
      this.zk.watchData(this.paths.master(group), (d) => this.onMaster(group, d)),
      this.zk.watchData(this.paths.task(group), (d) => this.onTask(group, d)),
    );
  }

  /**
   * task/<group> asks this agent to append from its binlog (core/append.ts). Done once per request
   * and only while this agent reports its own mysqld down: a running mysqld's binlog is not final,
   * and a live master is no one to append from.
   */
  private onTask(group: string, d: NodeData | null): void {
    if (group !== this.group || d === null) return;
    let req;
    try {
      const task = decodeRecord(taskSchema, d.data, this.paths.task(group));
      if (task.detail.append === undefined) return;
      req = appendRequestSchema.parse(task.detail.append);
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'invalid append request in task record; ignored');
      return;
    }
    if (req.node !== this.node || this.appendsHandled.has(req.id)) return;
    this.appendsHandled.add(req.id);
    const answer = (a: AppendResult): void => {
      this.appendAnswer = a;
      this.log.warn({ append: a }, a.state === 'done' ? 'append done' : 'append failed');
      this.publisher.kick();
    };
    if (!reportsMysqldDown(this.health)) {
      answer({
        id: req.id,
        state: 'failed',
        count: 0,
        first: null,
        last: null,
        ms: 0,
        savedTo: null,
        error: `the agent of ${this.node} does not see its mysqld down (${this.health.kind}): its binlog is not final`,
      });
      return;
    }
    this.log.warn({ candidate: req.candidate, after: req.after }, 'appending from the local binlog');
    void performAppend({ client: this.cc, mysql: this.cfg.mysql, group }, req).then(answer);
  }

  private onMaster(group: string, d: NodeData | null): void {
    if (group !== this.group) return;
    if (d === null) {
      this.master = null;
      this.notifyChange();
      return;
    }
    try {
      const m = decodeRecord(masterSchema, d.data, this.paths.master(group));
      if (m.node !== this.master?.node || m.epoch !== this.master.epoch) {
        this.log.info({ master: m.node, epoch: m.epoch }, 'master record');
        this.masterSeenAt = Date.now();
        // Named master: HAProxy's /master check follows the route at once; let it find a status
        // read after the promotion rather than the replica seen before it.
        if (m.node === this.node) this.requestCheck();
      }
      this.master = m;
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'invalid master record; keeping the last good one');
    }
    this.notifyChange();
  }

  /** Reads master/<group> now (one read in flight at most), for a check that asks for a newer epoch. */
  private refreshMaster(): void {
    const group = this.group;
    if (group === null || this.masterRefresh !== null || !this.zkConnected) return;
    this.masterRefresh = this.zk
      .getOrNull(this.paths.master(group))
      .then(
        (d) => this.onMaster(group, d),
        () => undefined,
      )
      .finally(() => {
        this.masterRefresh = null;
      });
  }

  private notifyChange(): void {
    const ws = this.changeWaiters;
    this.changeWaiters = [];
    for (const w of ws) w();
  }

  private nextChange(ms: number): Promise<void> {
    this.refreshMaster();
    this.requestCheck();
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.changeWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  // --- checks ----------------------------------------------------------------------------------

  private requestCheck(): void {
    if (this.closed) return;
    if (this.checking) {
      this.checkAgain = true;
      return;
    }
    if (this.checkTimer !== null) clearTimeout(this.checkTimer);
    this.checkTimer = null;
    void this.runCheck();
  }

  private async runCheck(): Promise<void> {
    this.checking = true;
    const t0 = Date.now();
    const obs = await this.probe.check();
    this.checking = false;
    if (this.closed) return;
    this.counters.checks[obs.kind]++;
    this.counters.lastCheckMs = Date.now() - t0;
    this.metrics.observeCheck(this.counters.lastCheckMs / 1000, obs.kind);
    const prev = this.health;
    this.health = decideHealth(prev, obs, this.cc.failAfter);
    this.logTransition(prev, this.health, obs);
    this.notifyChange();
    this.publisher.kick();
    if (!this.zkConnected) this.fencer.kick();
    else this.strayFencer.kick();
    if (this.checkAgain) {
      this.checkAgain = false;
      this.requestCheck();
      return;
    }
    this.checkTimer = setTimeout(
      () => {
        this.checkTimer = null;
        this.requestCheck();
      },
      Math.max(0, this.cc.checkIntervalMs - (Date.now() - t0)),
    );
  }

  private logTransition(prev: Health, next: Health, obs: Observation): void {
    const reasonChanged = prev.kind === 'down' && next.kind === 'down' && prev.reason !== next.reason;
    if (prev.kind === next.kind && next.kind !== 'suspect' && !reasonChanged) return;
    const base = { from: prev.kind, to: next.kind, check: obs.kind };
    switch (next.kind) {
      case 'up':
        this.log.info({ ...base, role: next.status.role, readOnly: next.status.readOnly }, 'mysqld healthy');
        break;
      case 'suspect':
        this.log.warn(
          { ...base, failures: next.failures, failAfter: this.cc.failAfter, why: next.message },
          'mysqld check failed',
        );
        break;
      case 'down':
        this.log.warn(
          { ...base, reason: next.reason, reportedDown: reportsMysqldDown(next), why: next.message },
          'mysqld down',
        );
        break;
      case 'starting':
        break;
    }
  }

  // --- publication -----------------------------------------------------------------------------

  private agentRecord(): AgentRecord {
    const unanswered = unansweredMs(this.health, Date.now());
    return {
      v: 1,
      pid: process.pid,
      httpPort: this.http.port,
      httpHost: this.cc.httpHost,
      binlogDir: this.cc.binlogDir,
      ...(reportsMysqldDown(this.health) ? { mysqldDown: true } : {}),
      ...(unanswered !== null ? { unansweredMs: unanswered } : {}),
      ...(this.appendAnswer !== null ? { append: this.appendAnswer } : {}),
      at: Date.now(),
    };
  }

  private async reconcile(): Promise<void> {
    if (this.closed || !this.zk.connected) return;
    try {
      // agent/ first: when online/ vanishes, the agent already says why (design §5.3). Only a
      // mysqld that is really not running is reported down; a hung or erroring one is left to the
      // server's own probe (reportsMysqldDown), told how long it has been silent (unansweredMs).
      const wantDown = reportsMysqldDown(this.health);
      if (
        this.agentPublished === null ||
        (this.agentPublished.mysqldDown === true) !== wantDown ||
        (this.agentPublished.unansweredMs !== undefined) !==
          (unansweredMs(this.health, Date.now()) !== null) ||
        this.agentPublished.append?.id !== this.appendAnswer?.id
      ) {
        const rec = this.agentRecord();
        await this.putEphemeral(
          this.paths.agent(this.node),
          encodeRecord(agentSchema, rec, this.paths.agent(this.node)),
        );
        this.agentPublished = rec;
      }
      const wish = desiredOnline(this.health, this.rejoin);
      this.logWish(wish);
      const maxLag = this.meta?.settings.maxReadLagSeconds ?? 30;
      const action = onlineAction(this.onlinePublished, wish, maxLag);
      const path = this.paths.online(this.node);
      switch (action.kind) {
        case 'keep':
          break;
        case 'create':
        case 'update': {
          const data = encodeRecord(onlineSchema, action.record, path);
          if (action.kind === 'update') await this.updateEphemeral(path, data);
          else await this.putEphemeral(path, data);
          this.onlinePublished = action.record;
          this.counters.onlineWrites++;
          this.log.info(
            { role: action.record.role, readOnly: action.record.readOnly, lag: action.record.lagSeconds },
            `online/ ${action.kind}d`,
          );
          break;
        }
        case 'delete':
          await this.zk.deleteIfExists(path);
          this.onlinePublished = null;
          this.counters.onlineWrites++;
          this.log.warn({ why: wish.kind === 'absent' ? wish.why : undefined }, 'online/ deleted');
          break;
      }
    } catch (err) {
      if (!this.closed)
        this.log.warn({ err: errorMessage(err) }, 'publishing to zookeeper failed; will retry');
    }
  }

  private logWish(wish: OnlineWish): void {
    const key = wish.kind === 'publish' ? 'publish' : wish.why;
    if (key === this.lastWish) return;
    this.lastWish = key;
    if (wish.kind === 'absent' && wish.why === 'rejoin-pending' && !this.rejoinLogged) {
      this.rejoinLogged = true;
      this.log.warn(
        { rejoin: this.paths.rejoin(this.node) },
        'mysqld is healthy but rejoin/ exists: online/ is held back until an operator (mha setha) or the rejoin step reconciles this node',
      );
    }
  }

  /** Updates a node this session published (one round trip); recreates it if it is gone. */
  private async updateEphemeral(path: string, data: Buffer): Promise<void> {
    try {
      await this.zk.set(path, data, -1);
    } catch (err) {
      if (!isZkmhaError(err, 'ZK_NO_NODE')) throw err;
      await this.putEphemeral(path, data);
    }
  }

  /** online/ and agent/ are this agent's alone: one left by an earlier run's session is replaced. */
  private putEphemeral(path: string, data: Buffer): Promise<void> {
    return this.zk.putEphemeral(path, data, { replaceAnySession: true });
  }

  // --- self-fencing ----------------------------------------------------------------------------

  private armFenceTimer(): void {
    this.clearFenceTimer();
    if (this.zkSilentSince === null) return;
    const due = this.zkSilentSince + fenceThresholdMs(this.zk.sessionTimeoutMs) - Date.now();
    this.fenceTimer = setTimeout(
      () => {
        this.fenceTimer = null;
        this.fencer.kick();
      },
      Math.max(0, due),
    );
  }

  private clearFenceTimer(): void {
    if (this.fenceTimer !== null) clearTimeout(this.fenceTimer);
    this.fenceTimer = null;
  }

  private logFence(key: string, level: 'info' | 'warn' | 'error', obj: object, msg: string): void {
    if (key === this.lastFenceLog && level !== 'error') return;
    this.lastFenceLog = key;
    this.log[level](obj, msg);
  }

  private async evaluateFence(): Promise<void> {
    if (this.closed) return;
    // Galera fences itself: a node cut off from the Primary Component refuses writes (wsrep quorum),
    // and every member is writable by design, so replication's self-fence does not apply.
    if (this.isGalera()) return;
    const st = liveStatus(this.health);
    const zkSilentMs = this.zkSilentSince === null ? 0 : Date.now() - this.zkSilentSince;
    const sessionTimeoutMs = this.zk.sessionTimeoutMs;
    // After a fence, decide again only on a status read after it (not on one that was in flight).
    const statusAt = liveStatusAt(this.health);
    if (this.lastFenceAt !== null && statusAt !== null && statusAt <= this.lastFenceAt) return;
    const gate = fenceGate({
      zkConnected: this.zkConnected,
      zkSilentMs,
      sessionTimeoutMs,
      readOnly: st?.readOnly ?? null,
    });
    if (gate.kind === 'skip') {
      if (gate.why !== 'zk-connected' && gate.why !== 'below-threshold') {
        this.logFence(
          `skip:${gate.why}`,
          'info',
          { zkSilentMs, why: gate.why },
          'zookeeper lost: no fencing needed',
        );
      }
      return;
    }
    // Asking the replicas must end well before the session can expire.
    const askMs = Math.max(100, Math.min(this.cfg.mysql.connectTimeoutMs, Math.floor(sessionTimeoutMs / 6)));
    const members = this.meta?.members ?? null;
    let registered: Awaited<ReturnType<typeof registeredReplicas>> = [];
    const reports = new Map<string, ReplicaReport | null>();
    try {
      registered = await registeredReplicas(this.probe, this.flavor, askMs);
      const replicas = replicasToConfirm(members, this.node) ?? [];
      const missing = new Set(unregistered(replicas, registered));
      const asked = await Promise.all(
        replicas
          .filter((r) => !missing.has(r))
          .map(async (r) => [r, await askReplica(r, this.cfg, this.flavor, askMs)] as const),
      );
      for (const [r, rep] of asked) reports.set(r, rep);
    } catch (err) {
      // Could not even list replicas on our own mysqld: nothing proves failsafe.
      this.log.warn({ err: errorMessage(err) }, 'fencing: could not list replicas on the local mysqld');
    }
    const decision = decideFence({ self: this.node, members, registered, reports });
    if (decision.kind === 'failsafe') {
      this.counters.failsafeHolds++;
      this.logFence(
        'failsafe',
        'warn',
        { zkSilentMs, replicas: decision.replicas },
        'zookeeper lost but every replica is still attached to this master: failsafe, staying writable',
      );
      return;
    }
    this.log.error(
      { zkSilentMs, sessionTimeoutMs, reason: decision.reason },
      'zookeeper lost and failsafe does not hold: fencing (read_only=ON, killing client connections)',
    );
    this.lastFenceLog = 'fence';
    try {
      const killed = await fenceLocal(
        this.probe,
        this.flavor,
        Math.max(200, this.cfg.mysql.connectTimeoutMs),
      );
      // read_only is ON from here: a check that started earlier may still report it OFF.
      this.lastFenceAt = Date.now();
      this.counters.selfFences++;
      this.log.error({ killed }, 'fenced: read_only=ON, client connections killed');
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'fencing failed');
    }
    this.requestCheck();
  }

  // --- fencing a writable node that is not the master ------------------------------------------

  /** What ZooKeeper says now (decideStray's view), read after the check that saw mysqld writable. */
  private async readStrayView(group: string): Promise<StrayView> {
    // node-zookeeper-client has no `sync`: a write-path request (a check-only multi, changing
    // nothing) makes our ZooKeeper server catch up with the leader first, so the reads below
    // include every write acknowledged before the check (such as a task naming us the candidate
    // of a promotion under way). A missing meta_host/ (ZK_NO_NODE) means no group any more.
    const hostPath = this.paths.metaHost(this.node);
    try {
      await this.zk.multi([{ op: 'check', path: hostPath, version: -1 }]);
    } catch (err) {
      if (!isZkmhaError(err, 'ZK_NO_NODE')) throw err;
      return { group: null, master: 'absent', rejoinPending: false, task: null, white: false };
    }
    // task/ before master/: a promotion's commit deletes task/ and moves master/ in one multi, so
    // read in this order a candidate shows up in task/ or as the master, never as neither.
    const taskPath = this.paths.task(group);
    const taskNd = await this.zk.getOrNull(taskPath);
    let task: StrayView['task'] = null;
    if (taskNd !== null) {
      try {
        const t = decodeRecord(taskSchema, taskNd.data, taskPath);
        task = { kind: t.kind, candidate: t.candidate };
      } catch (err) {
        this.log.error({ err: errorMessage(err) }, 'invalid task record');
        task = 'invalid';
      }
    }
    const white = (await this.zk.exists(this.paths.white(group))) !== null;
    const masterPath = this.paths.master(group);
    const masterNd = await this.zk.getOrNull(masterPath);
    let master: StrayView['master'] = 'absent';
    if (masterNd !== null) {
      try {
        const m = decodeRecord(masterSchema, masterNd.data, masterPath);
        master = { node: m.node, epoch: m.epoch };
      } catch (err) {
        this.log.error({ err: errorMessage(err) }, 'invalid master record');
        master = 'invalid';
      }
    }
    const rejoinPending = (await this.zk.exists(this.paths.rejoin(this.node))) !== null;
    return { group, master, rejoinPending, task, white };
  }

  /** Logs a decision when it differs from the last one; a fence decision is logged every time. */
  private noteStray(d: StrayDecision, extra: object = {}): void {
    const key = (x: StrayDecision | null): string | null =>
      x === null || x.kind === 'fence' ? null : x.kind === 'none' ? `none:${x.why}` : `hold:${x.detail}`;
    const prev = this.lastStray;
    this.lastStray = d;
    if (key(d) !== null && key(d) === key(prev)) return;
    switch (d.kind) {
      case 'none':
        if (prev !== null && prev.kind !== 'none')
          this.log.info({ why: d.why }, 'no longer writable against zookeeper: nothing to fence');
        else this.log.debug({ why: d.why }, 'stray-writable check: nothing to fence');
        break;
      case 'hold':
        this.log.warn(
          { ...extra, stray: d.stray, why: d.why, detail: d.detail },
          'writable but not the master in zookeeper: not fencing',
        );
        break;
      case 'fence':
        this.log.error(
          { ...extra, stray: d.stray, reason: d.reason },
          'writable but not the master in zookeeper: fencing (read_only=ON, killing client connections)',
        );
        break;
    }
  }

  private async evaluateStray(): Promise<void> {
    if (this.closed || !this.zkConnected) return;
    // Every Galera member is writable; the single writer is chosen by the route, not read_only.
    if (this.isGalera()) return;
    const h = this.health;
    // Only a status read by the last check, and read after our last fence, is acted on.
    if (h.kind !== 'up') {
      this.noteStray({ kind: 'none', why: 'mysqld-not-up' });
      return;
    }
    if (this.lastFenceAt !== null && h.at <= this.lastFenceAt) return;
    const readOnly = h.status.readOnly;
    // The watched records first (no I/O): only a possible fence is worth fresh reads.
    const watched = decideStray({
      self: this.node,
      readOnly,
      view: {
        group: this.group,
        master: this.master === null ? 'absent' : { node: this.master.node, epoch: this.master.epoch },
        rejoinPending: this.rejoin === 'present',
        task: null,
        white: false,
      },
    });
    if (watched.kind !== 'fence' || this.group === null) {
      this.noteStray(watched);
      return;
    }
    let view: StrayView;
    try {
      view = await this.readStrayView(this.group);
    } catch (err) {
      if (!this.closed)
        this.log.warn(
          { err: errorMessage(err), reason: watched.reason },
          'writable but maybe not the master: could not confirm in zookeeper; will look again',
        );
      return;
    }
    if (this.closed) return;
    const decision = decideStray({ self: this.node, readOnly, view });
    this.noteStray(decision, { checkedAt: h.at });
    if (decision.kind !== 'fence') return;
    try {
      // The admin and replication accounts are spared: a server worker or the CLI may be working
      // on this node (setha, re-pointing) and never writes as an application.
      const killed = await fenceLocal(
        this.probe,
        this.flavor,
        Math.max(200, this.cfg.mysql.connectTimeoutMs),
        [this.cfg.mysql.user, this.cfg.mysql.replicationUser],
      );
      this.lastFenceAt = Date.now();
      this.counters.strayFences++;
      this.log.error(
        { killed, stray: decision.stray, reason: decision.reason },
        'fenced: read_only=ON, client connections killed',
      );
      this.requestCheck();
    } catch (err) {
      // No immediate re-check: that would retry in a tight loop; the next regular check does.
      this.log.error({ err: errorMessage(err) }, 'fencing failed; will try again on the next check');
    }
  }

  // --- state for HTTP --------------------------------------------------------------------------

  snapshot(): AgentSnapshot {
    const counters: AgentCounters = { ...this.counters, checks: { ...this.counters.checks } };
    return {
      node: this.node,
      group: this.group,
      health: this.health,
      master: this.master,
      masterSeenAt: this.masterSeenAt,
      statusAt: liveStatusAt(this.health),
      maxReadLagSeconds: this.meta?.settings.maxReadLagSeconds ?? 30,
      zkConnected: this.zkConnected,
      onlinePublished: this.onlinePublished !== null,
      rejoinPending: this.rejoin === 'present',
      strayWritable: this.lastStray !== null && this.lastStray.kind !== 'none',
      counters,
    };
  }

  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.notifyChange();
    if (this.checkTimer !== null) clearTimeout(this.checkTimer);
    this.clearFenceTimer();
    for (const w of [...this.groupWatches, ...this.nodeWatches]) w.cancel();
    // Closing the session removes online/ and agent/ at once.
    await Promise.allSettled([this.zk.close(), this.probe.close(), this.http.close()]);
    this.log.info('heartbeat client stopped');
  }
}

/** Starts the heartbeat client in-process (tests, sandbox); `mha client` wraps it in runClient. */
export async function startClient(cfg: Config, opts: StartClientOptions = {}): Promise<ClientHandle> {
  const cc = requireSection(cfg, 'client');
  const log = (opts.logger ?? createLogger({ level: cfg.log.level, name: 'zkmha-client' })).child({
    role: 'client',
    node: cc.node,
  });
  const agent = new Agent(cfg, log);
  await agent.start();
  return {
    node: agent.node,
    httpPort: agent.httpPort,
    snapshot: () => agent.snapshot(),
    stop: () => agent.stop(),
  };
}

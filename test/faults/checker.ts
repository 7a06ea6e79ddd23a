import { MysqlConnection } from '../../core/mysql/connection';
import { parseNode } from '../../core/names';
import { showServersState } from '../../core/haproxy/cli';
import { decodeRecord, haproxySchema, masterSchema } from '../../core/records';
import type { Ack } from '../../devenv/cluster';
import type { E2EWorld } from '../../devenv/e2e';
import { secretOf, TEST_CREDENTIALS } from '../../devenv/mariadb';

/**
 * The continuous safety checker of the fault suite (design §9, issue 11). Every 50 ms it samples
 * every mysqld's read_only (own short-timeout connections: a hung or cut node is `unknown`), the
 * routes in ZooKeeper (master/ and haproxy/) and what HAProxy actually routes (the write
 * backend's servers that are UP and not in maintenance). It records:
 *  - any sample with two writable nodes that are routed (by ZooKeeper's route or by HAProxy);
 *  - the time with two writable nodes at all (the window of hole 3: a figure, not a verdict);
 *  - routes to a node after it stopped being the master (`routedOld`);
 * and, at the end, acknowledged writes later missing and writes acknowledged by a node that
 * ZooKeeper no longer named master when the write was acknowledged.
 */
export type ReadOnly = 'ro' | 'rw' | 'unknown';

export interface Sample {
  readonly hr: number;
  readonly readOnly: ReadonlyMap<string, ReadOnly>;
  /** master/<group>.node and epoch, or null when ZooKeeper did not answer. */
  readonly master: { node: string; epoch: number } | null;
  readonly zkWrite: string | null | undefined;
  /** Write-backend servers HAProxy would use now (UP, not in maintenance); null: no answer. */
  readonly haproxyWrite: readonly string[] | null;
}

export interface Violation {
  readonly hr: number;
  readonly kind: 'two-writable-routed' | 'old-master-routed' | 'ack-by-non-master' | 'lost-ack';
  readonly detail: string;
}

export interface CheckerReport {
  readonly samples: number;
  readonly violations: readonly Violation[];
  /** Milliseconds (sum of sample intervals) with two or more writable nodes, routed or not. */
  readonly twoWritableMs: number;
  /** Distinct masters (epochs) seen in ZooKeeper. */
  readonly epochs: readonly number[];
}

const INTERVAL_MS = 50;
const PROBE_TIMEOUT_MS = 200;

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout')), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

export class Checker {
  readonly samples: Sample[] = [];
  readonly violations: Violation[] = [];
  private readonly conns = new Map<string, MysqlConnection | null>();
  private stopped = false;
  private loop: Promise<void> | null = null;
  /** Nodes that were master at some epoch, with the epoch at which they stopped being it. */
  private readonly formerMasters = new Map<string, number>();
  private twoWritable = 0;

  constructor(private readonly w: E2EWorld) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        const t0 = performance.now();
        await this.sample().catch(() => undefined);
        const rest = INTERVAL_MS - (performance.now() - t0);
        if (rest > 0) await new Promise((r) => setTimeout(r, rest));
      }
    })();
  }

  private async readOnlyOf(node: string): Promise<ReadOnly> {
    const inst = this.w.c.instance(node);
    if (!inst.running) return 'unknown';
    try {
      let conn = this.conns.get(node) ?? null;
      if (conn === null || conn.broken) {
        conn?.destroy();
        this.conns.set(node, null);
        const { host, port } = parseNode(node);
        conn = await MysqlConnection.open(
          { host, port },
          {
            user: TEST_CREDENTIALS.admin.user,
            password: secretOf('admin'),
            connectTimeoutMs: PROBE_TIMEOUT_MS,
            queryTimeoutMs: PROBE_TIMEOUT_MS,
          },
        );
        this.conns.set(node, conn);
      }
      const [row] = await conn.query('SELECT @@read_only AS ro');
      return Number(row?.ro) === 1 ? 'ro' : 'rw';
    } catch {
      this.conns.get(node)?.destroy();
      this.conns.set(node, null);
      return 'unknown';
    }
  }

  private async zkState(): Promise<Pick<Sample, 'master' | 'zkWrite'>> {
    const { c } = this.w;
    try {
      const [m, r] = await within(
        Promise.all([
          c.zkClient.get(c.paths.master(c.group)),
          c.zkClient.getOrNull(c.paths.haproxy(c.group)),
        ]),
        PROBE_TIMEOUT_MS * 2,
      );
      const master = decodeRecord(masterSchema, m.data, 'master');
      let zkWrite: string | null | undefined;
      try {
        zkWrite = r === null ? undefined : decodeRecord(haproxySchema, r.data, 'haproxy').write;
      } catch {
        zkWrite = undefined;
      }
      return { master: { node: master.node, epoch: master.epoch }, zkWrite };
    } catch {
      return { master: null, zkWrite: undefined };
    }
  }

  private async haproxyWrite(): Promise<string[] | null> {
    try {
      const servers = await showServersState(this.w.hp.adminSocket, PROBE_TIMEOUT_MS * 2);
      return servers
        .filter((s) => s.backend === `${this.w.c.group}_write` && s.opState === 2 && !s.maint)
        .map((s) => `${s.addr}:${s.port}`);
    } catch {
      return null;
    }
  }

  /**
   * A probe still running from an earlier sample (a hung node, a cut link) is not waited for:
   * the sample counts it as unanswered, so the checker keeps its 50 ms pace through any fault.
   */
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private probe<T>(key: string, run: () => Promise<T>, unanswered: T): Promise<T> {
    let p = this.inFlight.get(key) as Promise<T> | undefined;
    if (p === undefined) {
      p = run().finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, p);
    }
    return Promise.race([p, new Promise<T>((r) => setTimeout(() => r(unanswered), INTERVAL_MS - 10))]);
  }

  private async sample(): Promise<void> {
    const nodes = this.w.c.nodes;
    const [ro, zk, hap] = await Promise.all([
      Promise.all(nodes.map((n) => this.probe(`ro ${n}`, () => this.readOnlyOf(n), 'unknown' as ReadOnly))),
      this.probe('zk', () => this.zkState(), { master: null, zkWrite: undefined }),
      this.probe('haproxy', () => this.haproxyWrite(), null),
    ]);
    const hr = performance.now();
    const readOnly = new Map(nodes.map((n, i) => [n, ro[i] ?? 'unknown'] as const));
    const s: Sample = { hr, readOnly, master: zk.master, zkWrite: zk.zkWrite, haproxyWrite: hap };
    const prev = this.samples[this.samples.length - 1];
    this.samples.push(s);

    if (s.master !== null) {
      const last = [...this.samples].reverse().find((x, i) => i > 0 && x.master !== null)?.master;
      if (last && last.node !== s.master.node) this.formerMasters.set(last.node, s.master.epoch);
      this.formerMasters.delete(s.master.node);
    }
    const writable = nodes.filter((n) => readOnly.get(n) === 'rw');
    if (writable.length >= 2 && prev !== undefined) this.twoWritable += hr - prev.hr;
    const routed = (n: string): boolean => s.zkWrite === n || (s.haproxyWrite ?? []).includes(n);
    const writableRouted = writable.filter(routed);
    if (writableRouted.length >= 2)
      this.violations.push({ hr, kind: 'two-writable-routed', detail: writableRouted.join(' + ') });
    for (const old of this.formerMasters.keys()) {
      if ((s.haproxyWrite ?? []).includes(old) || s.zkWrite === old)
        this.violations.push({
          hr,
          kind: 'old-master-routed',
          detail: `${old} routed (zk ${String(s.zkWrite)}, haproxy ${(s.haproxyWrite ?? []).join(',')})`,
        });
    }
  }

  /** Stops sampling and judges the writer's acknowledgements against the timeline and the rows. */
  async stop(acks: readonly Ack[], finalRows: ReadonlySet<number>): Promise<CheckerReport> {
    this.stopped = true;
    await this.loop;
    await Promise.allSettled([...this.inFlight.values()]);
    for (const c of this.conns.values()) c?.destroy();
    // An ack by X after the checker had seen X named master and then another node named master:
    // X had been superseded before it acknowledged. (A new master acknowledging before the next
    // sample saw it is not one: it had never been superseded.)
    let i = 0;
    const demotedAt = new Map<string, number>();
    let masterNow: string | null = null;
    for (const a of acks) {
      while (i < this.samples.length && (this.samples[i]?.hr ?? Infinity) <= a.hr) {
        const m = this.samples[i]?.master;
        if (m && m.node !== masterNow) {
          if (masterNow !== null) demotedAt.set(masterNow, this.samples[i]?.hr ?? 0);
          demotedAt.delete(m.node);
          masterNow = m.node;
        }
        i++;
      }
      const since = demotedAt.get(a.node);
      if (since !== undefined)
        this.violations.push({
          hr: a.hr,
          kind: 'ack-by-non-master',
          detail: `row ${a.id} acknowledged by ${a.node} ${Math.round(a.hr - since)} ms after ZooKeeper named ${String(masterNow)}`,
        });
    }
    for (const a of acks)
      if (!finalRows.has(a.id))
        this.violations.push({ hr: a.hr, kind: 'lost-ack', detail: `row ${a.id} acknowledged by ${a.node}` });
    const epochs = [...new Set(this.samples.flatMap((s) => (s.master ? [s.master.epoch] : [])))];
    return {
      samples: this.samples.length,
      violations: this.violations,
      twoWritableMs: this.twoWritable,
      epochs,
    };
  }
}

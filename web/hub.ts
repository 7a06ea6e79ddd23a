import { EventEmitter } from 'node:events';
import { listAlerts } from '../core/alerts';
import type { MysqlConfig } from '../core/config';
import { errorMessage } from '../core/errors';
import { readHistoryEntries } from '../core/history';
import type { Logger } from '../core/log';
import { isGroupName, isNodeName } from '../core/names';
import { NodeConnections } from '../core/ops';
import { decodeRecord, metaGroupSchema } from '../core/records';
import { buildGroupStatus, readGroupSnapshot, readProcesses, type StatusReport } from '../core/status';
import type { Watch, Zk } from '../core/zk/client';
import type { ZkPaths } from '../core/zk/paths';
import { summarize, timeline, type GroupDetail, type GroupSummary } from './model';

/**
 * Keeps every group's summary (and the detail of groups someone is looking at) current, driven
 * by ZooKeeper watches only: a watch marks its group dirty, dirty groups are re-read after a short
 * settle (one failover's multi fires several watches at once) and re-summarised, one read at a
 * time per group. Nothing is polled: between watch events nothing is read.
 *
 * Watched: meta_group/ (children, and each group's record for its member list); per group
 * master/, haproxy/, white/, task/ (data), slave_down/, history/, lock/ (children); per member
 * online/, agent/, rejoin/, meta_host/ (data); watch_down/ (children and each alert's data);
 * meta_router/ (children and each router's data) and servers/ (children).
 *
 * Events: 'summary' (GroupSummary), 'removed' (group), 'detail' (GroupDetail, only for groups
 * with a detail subscriber), 'processes' (servers and routers changed).
 */
export interface HubDeps {
  readonly zk: Zk;
  readonly paths: ZkPaths;
  readonly cfg: { readonly mysql: MysqlConfig };
  /** Read positions from MySQL for groups with a detail subscriber. */
  readonly readMysql: boolean;
  readonly log: Logger;
  /** Wait after a watch event before re-reading its group (default 25 ms). */
  readonly settleMs?: number;
  /** Groups re-read at the same time (default 8). */
  readonly concurrency?: number;
}

interface GroupWatches {
  readonly own: Watch[];
  /** Member node → its four watches. */
  readonly members: Map<string, Watch[]>;
}

export class StatusHub extends EventEmitter {
  readonly #d: HubDeps;
  readonly #conns: NodeConnections;
  readonly #summaries = new Map<string, GroupSummary>();
  readonly #details = new Map<string, GroupDetail>();
  readonly #subscribers = new Map<string, number>();
  readonly #groups = new Map<string, GroupWatches>();
  readonly #alertWatches = new Map<string, Watch>();
  readonly #routerWatches = new Map<string, Watch>();
  readonly #top: Watch[] = [];
  #processes: Pick<StatusReport, 'routers' | 'servers'> = { routers: [], servers: [] };
  readonly #dirty = new Set<string>();
  readonly #running = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  #processesDirty = false;
  #stopped = false;
  /** Resolves once every group listed at start has a summary. */
  #ready: Promise<void>;
  #markReady: () => void = () => undefined;

  constructor(deps: HubDeps) {
    super();
    this.#d = deps;
    this.#conns = NodeConnections.fromConfig(deps.cfg.mysql);
    this.#ready = new Promise((r) => (this.#markReady = r));
    this.setMaxListeners(0);
  }

  start(): Promise<void> {
    const { zk, paths } = this.#d;
    let first = true;
    this.#top.push(
      zk.watchChildren(paths.dir('meta_group'), (names) => {
        this.#syncGroups((names ?? []).filter(isGroupName));
        if (first) {
          first = false;
          if ((names ?? []).length === 0) this.#markReady();
        }
      }),
      zk.watchChildren(paths.dir('watch_down'), (names) => this.#syncAlerts(names ?? [])),
      zk.watchChildren(paths.dir('meta_router'), (ids) => this.#syncRouters(ids ?? [])),
      zk.watchChildren(paths.dir('servers'), () => this.#processesChanged()),
    );
    return this.#ready;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    for (const w of this.#top) w.cancel();
    for (const g of [...this.#groups.keys()]) this.#dropGroup(g);
    for (const w of [...this.#alertWatches.values(), ...this.#routerWatches.values()]) w.cancel();
    this.#alertWatches.clear();
    this.#routerWatches.clear();
    await this.#conns.closeAll();
  }

  summaries(): GroupSummary[] {
    return [...this.#summaries.values()].sort((a, b) => a.group.localeCompare(b.group));
  }

  processes(): Pick<StatusReport, 'routers' | 'servers'> {
    return this.#processes;
  }

  hasGroup(group: string): boolean {
    return this.#groups.has(group);
  }

  /**
   * Registers interest in a group's detail (MySQL positions, history, alerts are then re-read on
   * its watch events) and returns the current detail, read now. Call the returned function to end it.
   */
  async subscribe(group: string): Promise<{ detail: GroupDetail; unsubscribe: () => void }> {
    this.#subscribers.set(group, (this.#subscribers.get(group) ?? 0) + 1);
    let done = false;
    const unsubscribe = (): void => {
      if (done) return;
      done = true;
      const n = (this.#subscribers.get(group) ?? 1) - 1;
      if (n > 0) this.#subscribers.set(group, n);
      else {
        this.#subscribers.delete(group);
        this.#details.delete(group);
      }
    };
    try {
      const detail = this.#details.get(group) ?? (await this.#readDetail(group));
      return { detail, unsubscribe };
    } catch (err) {
      unsubscribe();
      throw err;
    }
  }

  // --- watches -----------------------------------------------------------------------------------

  #syncGroups(names: readonly string[]): void {
    const wanted = new Set(names);
    for (const g of [...this.#groups.keys()]) if (!wanted.has(g)) this.#dropGroup(g);
    for (const g of names) if (!this.#groups.has(g)) this.#watchGroup(g);
  }

  #watchGroup(group: string): void {
    const { zk, paths } = this.#d;
    const dirty = (): void => this.#markDirty(group);
    const gw: GroupWatches = { own: [], members: new Map() };
    this.#groups.set(group, gw);
    gw.own.push(
      zk.watchData(paths.metaGroup(group), (nd) => {
        let members: string[] = [];
        try {
          if (nd !== null) members = decodeRecord(metaGroupSchema, nd.data, paths.metaGroup(group)).members;
        } catch {
          // An invalid record: the status read reports it; no member watches meanwhile.
        }
        this.#syncMembers(group, gw, members.filter(isNodeName));
        dirty();
      }),
      zk.watchData(paths.master(group), dirty),
      zk.watchData(paths.haproxy(group), dirty),
      zk.watchData(paths.white(group), dirty),
      zk.watchData(paths.task(group), dirty),
      zk.watchChildren(paths.slaveDownDir(group), dirty),
      zk.watchChildren(paths.historyDir(group), dirty),
      zk.watchChildren(paths.lockDir(group), dirty),
    );
  }

  #syncMembers(group: string, gw: GroupWatches, members: readonly string[]): void {
    const { zk, paths } = this.#d;
    const wanted = new Set(members);
    for (const [n, ws] of gw.members)
      if (!wanted.has(n)) {
        for (const w of ws) w.cancel();
        gw.members.delete(n);
      }
    const dirty = (): void => this.#markDirty(group);
    for (const n of members)
      if (!gw.members.has(n))
        gw.members.set(n, [
          zk.watchData(paths.online(n), dirty),
          zk.watchData(paths.agent(n), dirty),
          zk.watchData(paths.rejoin(n), dirty),
          zk.watchData(paths.metaHost(n), dirty),
        ]);
  }

  #dropGroup(group: string): void {
    const gw = this.#groups.get(group);
    if (gw === undefined) return;
    for (const w of gw.own) w.cancel();
    for (const ws of gw.members.values()) for (const w of ws) w.cancel();
    this.#groups.delete(group);
    this.#dirty.delete(group);
    if (this.#summaries.delete(group)) this.emit('removed', group);
  }

  #syncAlerts(names: readonly string[]): void {
    const { zk, paths } = this.#d;
    const wanted = new Set(names);
    for (const [n, w] of this.#alertWatches)
      if (!wanted.has(n)) {
        w.cancel();
        this.#alertWatches.delete(n);
        this.#markAlertDirty(n);
      }
    for (const n of names)
      if (!this.#alertWatches.has(n))
        this.#alertWatches.set(
          n,
          zk.watchData(`${paths.dir('watch_down')}/${n}`, () => this.#markAlertDirty(n)),
        );
  }

  #markAlertDirty(name: string): void {
    // `<group>` or `<group>__<kind>`; a name that is neither belongs to no group.
    const i = name.lastIndexOf('__');
    const group = i < 0 ? name : name.slice(0, i);
    if (this.#groups.has(group)) this.#markDirty(group);
  }

  #syncRouters(ids: readonly string[]): void {
    const { zk, paths } = this.#d;
    const wanted = new Set(ids);
    for (const [id, w] of this.#routerWatches)
      if (!wanted.has(id)) {
        w.cancel();
        this.#routerWatches.delete(id);
      }
    for (const id of ids)
      if (!this.#routerWatches.has(id))
        this.#routerWatches.set(
          id,
          zk.watchData(`${paths.dir('meta_router')}/${id}`, () => this.#processesChanged()),
        );
    this.#processesChanged();
  }

  /** Routers' applied epochs are part of every group's status: re-read them, then every group. */
  #processesChanged(): void {
    this.#processesDirty = true;
    this.#schedule();
  }

  #markDirty(group: string): void {
    this.#dirty.add(group);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped || this.#timer !== null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#drain();
    }, this.#d.settleMs ?? 25);
  }

  // --- reading -----------------------------------------------------------------------------------

  async #drain(): Promise<void> {
    if (this.#processesDirty) {
      this.#processesDirty = false;
      const before = JSON.stringify(this.#processes.routers);
      try {
        this.#processes = await readProcesses(this.#d, []);
        this.emit('processes', this.#processes);
        if (JSON.stringify(this.#processes.routers) !== before)
          for (const g of this.#groups.keys()) this.#dirty.add(g);
      } catch (err) {
        this.#d.log.warn({ err: errorMessage(err) }, 'web: reading servers/ and meta_router/ failed');
        this.#processesDirty = true;
      }
    }
    const limit = this.#d.concurrency ?? 8;
    const workers: Promise<void>[] = [];
    for (let i = 0; i < limit; i++) workers.push(this.#work());
    await Promise.all(workers);
    if (!this.#stopped && this.#summaries.size >= this.#groups.size) this.#markReady();
  }

  async #work(): Promise<void> {
    for (;;) {
      const group = [...this.#dirty].find((g) => !this.#running.has(g));
      if (group === undefined || this.#stopped) return;
      this.#dirty.delete(group);
      this.#running.add(group);
      try {
        await this.#refresh(group);
      } catch (err) {
        // ZooKeeper unreachable or the like: the watch fires again once it answers.
        this.#d.log.warn({ group, err: errorMessage(err) }, 'web: reading group failed');
      } finally {
        this.#running.delete(group);
      }
      // A change that came in while this group was read is read on the next round.
      if (this.#dirty.has(group)) this.#schedule();
    }
  }

  async #refresh(group: string): Promise<void> {
    if (!this.#groups.has(group)) return;
    if (this.#subscribers.has(group)) {
      const detail = await this.#readDetail(group);
      if (this.#subscribers.has(group)) {
        this.#details.set(group, detail);
        this.emit('detail', detail);
      }
      this.#setSummary(summarize(detail.status));
      return;
    }
    const snap = await readGroupSnapshot(this.#d, group, null);
    this.#setSummary(
      summarize(buildGroupStatus(snap.view, snap.positions, this.#processes.routers, snap.lock)),
    );
  }

  #setSummary(s: GroupSummary): void {
    if (!this.#groups.has(s.group)) return;
    const old = this.#summaries.get(s.group);
    this.#summaries.set(s.group, s);
    if (old === undefined || JSON.stringify(old) !== JSON.stringify(s)) this.emit('summary', s);
  }

  async #readDetail(group: string): Promise<GroupDetail> {
    const { zk, paths } = this.#d;
    const readAt = Date.now();
    const mysql = this.#d.readMysql;
    const [snap, history, alerts] = await Promise.all([
      readGroupSnapshot(this.#d, group, mysql ? this.#conns : null, this.#d.cfg.mysql.connectTimeoutMs),
      readHistoryEntries(zk, paths, group),
      listAlerts(this.#d, group),
    ]);
    return {
      group,
      readAt,
      mysql,
      status: buildGroupStatus(snap.view, snap.positions, this.#processes.routers, snap.lock),
      history: timeline(history),
      historyTotal: history.length,
      alerts,
      servers: this.#processes.servers,
    };
  }
}

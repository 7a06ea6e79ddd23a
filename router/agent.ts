import { lookup } from 'node:dns/promises';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { RouterConfig, ZookeeperConfig } from '../core/config';
import { ZkmhaError, errorMessage } from '../core/errors';
import {
  cutSessionsInWorker,
  getVars,
  haproxyRun,
  masterAlive,
  showProc,
  showServersState,
  type ServerState,
} from '../core/haproxy/cli';
import { readPidFile, reloadHaproxy, startHaproxy, writeValidatedConfig } from '../core/haproxy/process';
import type { Logger } from '../core/log';
import { startHttpListener, metricsRoute, type HttpListener } from '../core/metrics';
import { alertSchema, encodeRecord, metaRouterSchema, type MetaRouterRecord } from '../core/records';
import { delay, withTimeout } from '../core/timeout';
import { Zk } from '../core/zk/client';
import { ZkPaths } from '../core/zk/paths';
import { buildDesired, hostsToResolve, type Desired, type GroupSnapshot, type Problem } from './desired';
import {
  DEFAULT_READ_SLOTS,
  fitSlots,
  readBackend,
  sameGroup,
  sameGroups,
  writeBackend,
  type GroupState,
} from './model';
import { planRuntime, type ServerRef } from './plan';
import { createRouterMetrics, type RouterMetrics } from './metrics';
import { epochVar, renderHaproxyConfig, renderSkeleton, writeVar, type RenderInput } from './render';
import { loadState, saveState, stateFile, stateText } from './state-store';
import { TemplateManager, type TemplateChoice } from './templates';
import { RouteSource } from './zk-source';

/**
 * The router agent (design §6): makes HAProxy's `<group>_write` / `<group>_read` listeners follow
 * `haproxy/<group>`. Level-triggered: on every ZooKeeper event and every reconcileIntervalMs it
 * compares what ZooKeeper wants with what HAProxy runs (read back through the runtime API) and
 * closes the gap — through the runtime API when only servers change, by a validated, confirmed,
 * seamless reload when listeners change. Without ZooKeeper it keeps HAProxy on the last applied
 * state (kept on disk), and it starts HAProxy itself when none answers on the master socket.
 *
 * An HAProxy this agent started keeps running when the agent exits: applications must not lose
 * their proxy because the agent restarted or was upgraded. Stop it through its master socket or
 * pid file (`<stateDir>/haproxy.pid`).
 */
export interface RouterAgentOptions {
  readonly router: RouterConfig;
  readonly zookeeper: ZookeeperConfig;
  readonly log: Logger;
  /** Reported in meta_router/<id>; default os.hostname(). */
  readonly host?: string;
}

export interface RouterStatus {
  readonly applied: readonly GroupState[];
  readonly problems: readonly Problem[];
  readonly lastError: string | null;
  readonly zkConnected: boolean;
  /** Reconciles done (for tests and benchmarks). */
  readonly reconciles: number;
}

/** How long an identical configuration that failed to reload waits before it is tried again. */
const RELOAD_RETRY_MS = 30_000;
const DNS_TIMEOUT_MS = 1000;
const DNS_TTL_MS = 10_000;

interface Running {
  /** The template text and listener skeleton HAProxy loaded, null when unknown (reload needed). */
  template: string | null;
  skeleton: string | null;
}

export class RouterAgent {
  readonly id: string;
  private readonly cfg: RouterConfig;
  private readonly log: Logger;
  private readonly paths: ZkPaths;
  private readonly host: string;
  private readonly stateFile: string;
  private readonly pidFile: string;
  private readonly readSlots: number;
  private readonly templates: TemplateManager;

  private applied: GroupState[] | null = null;
  private running: Running = { template: null, skeleton: null };
  private problems: Problem[] = [];
  private writerProblem: Problem | null = null;
  private reloadFailure: { key: string; at: number; reason: string } | null = null;
  private lastSavedState = '';

  private zk: Zk | null = null;
  private source: RouteSource | null = null;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;

  private loop: Promise<void> | null = null;
  private dirty = false;
  /** The next reconcile must compare everything (timer, reconnect, errors), not only what changed. */
  private fullPending = true;
  private reconciles = 0;

  private published: string | null = null;
  private readonly alerted = new Map<string, string>();
  private readonly dns = new Map<string, { addr: string | null; at: number }>();

  private readonly metrics: RouterMetrics;
  private http: HttpListener | null = null;

  private writer: Promise<void> = Promise.resolve();
  private pendingWrite: { render: () => string } | null = null;
  private lastWrittenConfig: string | null = null;

  constructor(private readonly opts: RouterAgentOptions) {
    const r = opts.router;
    this.cfg = r;
    this.id = r.id;
    this.log = opts.log;
    this.paths = new ZkPaths(opts.zookeeper.root);
    this.host = opts.host ?? os.hostname();
    this.stateFile = stateFile(r.stateDir, r.id);
    this.pidFile = path.join(r.stateDir, 'haproxy.pid');
    this.readSlots = r.readSlots ?? DEFAULT_READ_SLOTS;
    validateSocketPath(r.adminSocket, 'router.adminSocket');
    validateSocketPath(r.masterSocket, 'router.masterSocket');
    if (!/^[0-9A-Fa-f.:*]+$/.test(r.bindAddress))
      throw new ZkmhaError(
        'BAD_CONFIG',
        `config: router.bindAddress '${r.bindAddress}' must be an IP address`,
      );

    let saved = null;
    try {
      saved = loadState(this.stateFile);
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'router: ignoring a damaged state file');
    }
    if (saved !== null && saved.routerId === this.id) {
      this.applied = saved.groups.map((g) => ({ ...g, read: fitSlots(g.read, this.readSlots) }));
      this.lastSavedState = JSON.stringify(this.applied) + '\u0000' + saved.template;
    }
    this.templates = new TemplateManager(r.template, saved?.template ?? null);
    this.metrics = createRouterMetrics(() => ({
      applied: this.applied ?? [],
      problems: this.allProblems(),
      zkConnected: this.zk?.connected ?? false,
    }));
    try {
      this.lastWrittenConfig = fs.readFileSync(r.haproxyConfig, 'utf8');
    } catch {
      this.lastWrittenConfig = null;
    }
    // HAProxy may be running from what we wrote last: then the skeleton on disk is what runs.
    if (saved !== null && this.applied !== null && this.lastWrittenConfig !== null) {
      try {
        const input = this.renderInput(this.applied);
        if (renderHaproxyConfig(saved.template, input) === this.lastWrittenConfig) {
          this.running = { template: saved.template, skeleton: renderSkeleton(saved.template, input) };
        }
      } catch {
        // unknown: the first reconcile reloads
      }
    }
  }

  /** Brings HAProxy up from the saved state if needed, then connects to ZooKeeper in the background. */
  async start(): Promise<void> {
    fs.mkdirSync(this.cfg.stateDir, { recursive: true });
    if (this.cfg.httpPort !== undefined)
      this.http = await startHttpListener('router', this.cfg.httpHost ?? '127.0.0.1', this.cfg.httpPort, {
        '/metrics': metricsRoute(this.metrics.registry),
      });
    if (this.http !== null)
      this.log.info({ metricsPort: this.http.port, host: this.cfg.httpHost }, 'router: serving /metrics');
    this.log.info({ router: this.id, groups: this.applied?.map((g) => g.name) ?? [] }, 'router: starting');
    await this.reconcileNow();
    this.timer = setInterval(() => this.requestReconcile(), this.cfg.reconcileIntervalMs);
    this.timer.unref();
    void this.connectLoop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.source?.stop();
    await this.loop?.catch(() => undefined);
    await this.flushWriter();
    if (this.zk) await this.zk.close().catch(() => undefined);
    this.zk = null;
    await this.http?.close();
    this.log.info({ router: this.id }, 'router: stopped (HAProxy keeps serving)');
  }

  /** The port `/metrics` is served on (ephemeral when configured as 0); null without router.httpPort. */
  get metricsPort(): number | null {
    return this.http?.port ?? null;
  }

  status(): RouterStatus {
    return {
      applied: this.applied ?? [],
      problems: this.allProblems(),
      lastError: lastErrorOf(this.allProblems()),
      zkConnected: this.zk?.connected ?? false,
      reconciles: this.reconciles,
    };
  }

  /** Runs a reconcile now (or joins the one running and runs once more) and waits for it. */
  async reconcileNow(): Promise<void> {
    this.requestReconcile();
    while (this.loop) await this.loop;
  }

  /**
   * `full` false: a route record changed, and only the groups whose servers changed need looking
   * at (reconcileChanged); every timer tick, reconnect and error still compares everything.
   */
  requestReconcile(full = true): void {
    if (this.stopped) return;
    this.dirty = true;
    if (full) this.fullPending = true;
    if (this.loop) return;
    this.loop = (async () => {
      try {
        while (this.dirty && !this.stopped) {
          this.dirty = false;
          const full = this.fullPending;
          this.fullPending = false;
          try {
            await this.reconcileOnce(full);
          } catch (err) {
            this.fullPending = true;
            this.log.error({ err: errorMessage(err) }, 'router: reconcile failed');
          }
          this.reconciles++;
          this.metrics.reconciled();
        }
      } finally {
        this.loop = null;
      }
    })();
  }

  // --- ZooKeeper ---------------------------------------------------------------------------------

  private async connectLoop(): Promise<void> {
    let wait = 200;
    while (!this.stopped) {
      try {
        const zk = await Zk.connect({
          hosts: this.opts.zookeeper.hosts,
          sessionTimeoutMs: this.opts.zookeeper.sessionTimeoutMs,
          logger: this.log,
          ...(this.opts.zookeeper.auth ? { auth: this.opts.zookeeper.auth } : {}),
          aclRoot: this.opts.zookeeper.root,
        });
        if (this.stopped) {
          await zk.close();
          return;
        }
        this.zk = zk;
        zk.on('session', () => {
          this.published = null; // our ephemeral died with the old session
          this.requestReconcile();
        });
        zk.on('connected', () => this.requestReconcile());
        zk.on('disconnected', () =>
          this.log.warn('router: ZooKeeper connection lost; HAProxy keeps the applied state'),
        );
        this.source = new RouteSource(zk, this.paths, this.log, () => this.requestReconcile(false));
        this.source.start();
        this.log.info({ zookeeper: this.opts.zookeeper.hosts }, 'router: connected to ZooKeeper');
        return;
      } catch (err) {
        this.log.warn(
          { err: errorMessage(err) },
          'router: cannot reach ZooKeeper yet; serving the saved state',
        );
        await delay(wait);
        wait = Math.min(wait * 2, 5000);
      }
    }
  }

  // --- reconcile ---------------------------------------------------------------------------------

  private renderInput(groups: readonly GroupState[]): RenderInput {
    return {
      routerId: this.id,
      bindAddress: this.cfg.bindAddress,
      adminSocket: this.cfg.adminSocket,
      agentChecks: this.agentChecks,
      groups,
    };
  }

  private get agentChecks(): boolean {
    return this.cfg.agentChecks ?? true;
  }

  private async reconcileOnce(full: boolean): Promise<void> {
    const t0 = performance.now();
    const lap = (): number => Math.round((performance.now() - t0) * 10) / 10;
    const ms: Record<string, number> = {};
    const problems: Problem[] = [];
    // 1. What ZooKeeper wants (or, without a complete view of ZooKeeper, what we applied last).
    const source = this.source;
    const snapshot = source?.settled() ? source.snapshot() : null;
    let desired: GroupState[];
    if (source && snapshot !== null) {
      const dirty = source.takeDirty();
      if (!full && dirty !== 'all' && (await this.reconcileDirty(snapshot, dirty, ms, lap))) return;
      const d = await this.desiredFrom(snapshot, this.applied ?? []);
      desired = [...d.groups];
      problems.push(...d.problems);
      ms.desired = lap();
    } else if (this.applied !== null) {
      desired = this.applied;
    } else {
      this.problems = problems;
      await this.publish();
      return; // nothing known yet: leave HAProxy alone
    }

    // 2. Render with the template (a new template text falls back to the last good one).
    const rendered = this.renderWithFallback(desired);
    const tplProblem = this.templates.currentProblem();
    if (tplProblem !== null) problems.push({ group: null, kind: 'template', message: tplProblem });
    if (rendered === null) {
      this.problems = problems;
      await this.publish();
      return;
    }
    const { choice, text, skeleton } = rendered;
    ms.rendered = lap();

    // 3. Persist the decision before acting on it: a restart without ZooKeeper must never go back
    //    to an older state than HAProxy already runs.
    //    (Written while HAProxy is read back; both are awaited before anything changes.)
    const saving = this.saveStateIfChanged(desired, this.running.template ?? choice.text);

    // 4. What HAProxy runs. Nobody on the master socket → start HAProxy ourselves.
    let actual: ServerState[] | null = null;
    // The write checks' variables, read back with the servers (a missing one is set again).
    const varNames = this.agentChecks ? desired.flatMap((g) => [epochVar(g.name), writeVar(g.name)]) : [];
    const [st, vars] = await Promise.all([
      showServersState(this.cfg.adminSocket).catch(() => null),
      getVars(this.cfg.adminSocket, varNames).catch(() => new Map<string, string>()),
    ]);
    actual = st;
    ms.readBack = lap();
    await saving;
    ms.saved = lap();
    if (actual === null && !(await masterAlive(this.cfg.masterSocket))) {
      await this.startFresh(desired, choice, text, skeleton, problems);
      return;
    }

    // 5. Runtime changes for the listeners HAProxy has.
    const plan = planRuntime(desired, actual ?? [], { agentChecks: this.agentChecks, vars });
    let runtimeOk = true;
    if (plan.commands.length > 0) {
      try {
        await haproxyRun(this.cfg.adminSocket, plan.commands);
        ms.applied = lap();
        this.metrics.observeApply('runtime', ms.applied / 1000);
        this.log.info({ commands: plan.commands, ms }, 'router: runtime update applied');
      } catch (err) {
        problems.push({
          group: null,
          kind: 'haproxy',
          message: `runtime update failed: ${errorMessage(err)}`,
        });
        runtimeOk = false;
        this.dirty = true; // read back and try again
        this.fullPending = true;
      }
    }
    if (plan.cuts.length > 0) await this.cutInOldWorkers(plan.cuts);

    // 6. Listener changes (or an unknown / new template) → validated, confirmed reload.
    const needReload =
      actual === null ||
      plan.missing.length > 0 ||
      this.running.template !== choice.text ||
      this.running.skeleton !== skeleton;
    let applied: GroupState[] = desired;
    if (needReload) {
      const key = `${choice.text}\u0000${skeleton}`;
      const failure = this.reloadFailure;
      if (failure !== null && failure.key === key && Date.now() - failure.at < RELOAD_RETRY_MS) {
        applied = this.merged(desired);
        problems.push(...this.reloadProblems(desired, failure.reason));
      } else {
        const tReload = performance.now();
        const r = await this.reload(desired, choice, text, skeleton);
        this.metrics.observeReload(r.ok, (performance.now() - tReload) / 1000);
        if (!r.ok) {
          applied = this.merged(desired);
          if (choice.candidate && this.templates.goodText() !== null) {
            this.templates.reject(choice.text, r.reason);
            this.dirty = true; // again at once with the good template
          } else {
            this.reloadFailure = { key, at: Date.now(), reason: r.reason };
            problems.push(...this.reloadProblems(desired, r.reason));
          }
          const tp = this.templates.currentProblem();
          if (tp !== null && !problems.some((p) => p.kind === 'template'))
            problems.push({ group: null, kind: 'template', message: tp });
        }
      }
    } else if (runtimeOk) {
      this.scheduleWrite(() => text);
    } else if (this.applied !== null) {
      applied = this.applied; // not in effect: report what was, retry from the read-back
    }

    if (this.applied === null || !sameGroups(this.applied, applied)) {
      this.log.info(
        { groups: applied.map((g) => ({ name: g.name, epoch: g.epoch, write: g.write?.node ?? null })) },
        'router: applied',
      );
    }
    this.applied = applied;
    await this.saveStateIfChanged(applied, this.running.template ?? choice.text);
    this.problems = problems;
    await this.publish();
  }

  private async desiredFrom(
    snapshot: readonly GroupSnapshot[],
    previous: readonly GroupState[],
  ): Promise<Desired> {
    return buildDesired({
      snapshot,
      previous,
      readSlots: this.readSlots,
      resolved: await this.resolveHosts(hostsToResolve(snapshot)),
      agents: this.source?.agents() ?? new Map(),
    });
  }

  /**
   * The event path for the groups whose records changed (RouteSource.takeDirty): their desired
   * state alone, the others as applied; reconcileChanged then touches only what differs.
   */
  private async reconcileDirty(
    snapshot: readonly GroupSnapshot[],
    dirty: ReadonlySet<string>,
    ms: Record<string, number>,
    lap: () => number,
  ): Promise<boolean> {
    const applied = this.applied;
    if (applied === null) return false;
    const before = applied.filter((g) => dirty.has(g.name));
    const d = await this.desiredFrom(
      snapshot.filter((g) => dirty.has(g.name)),
      before,
    );
    ms.desired = lap();
    // A group that appears or disappears changes listeners: the full path decides that.
    if (d.groups.length !== before.length) return false;
    const index = new Map(applied.map((g, i) => [g.name, i]));
    const next = [...applied];
    for (const g of d.groups) {
      const i = index.get(g.name);
      if (i === undefined) return false;
      next[i] = g;
    }
    const problems = [...this.problems.filter((p) => p.group === null || !dirty.has(p.group)), ...d.problems];
    return this.reconcileChanged(next, problems, ms, lap);
  }

  /**
   * The event path. With 1,000 groups a full reconcile renders the whole configuration and reads
   * back every server (~250 ms here, bench:scale); a failover's route must not wait for that. When
   * the listeners and the template are what HAProxy runs and only some groups' servers changed,
   * read back and update just those groups' backends, and write the file in the background after.
   * Returns false (nothing done) when a full reconcile is needed instead.
   */
  private async reconcileChanged(
    desired: readonly GroupState[],
    problems: Problem[],
    ms: Record<string, number>,
    lap: () => number,
  ): Promise<boolean> {
    const applied = this.applied;
    const template = this.running.template;
    if (applied === null || template === null || this.running.skeleton === null) return false;
    if (this.reloadFailure !== null || applied.length !== desired.length) return false;
    const changed: GroupState[] = [];
    for (let i = 0; i < desired.length; i++) {
      const d = desired[i]!;
      const a = applied[i]!;
      if (d.name !== a.name) return false;
      if (sameGroup(d, a)) continue;
      if (listenerKey(d) !== listenerKey(a)) return false;
      changed.push(d);
    }
    const choice = this.templates.select();
    if (choice === null || choice.candidate || choice.text !== template) return false;
    if (this.templates.currentProblem() !== null) return false;

    ms.changed = lap();
    const saving = this.saveStateIfChanged(desired, template).then(() => {
      ms.savedAt = lap();
    });
    const varNames = this.agentChecks ? changed.flatMap((g) => [epochVar(g.name), writeVar(g.name)]) : [];
    const backends = changed.flatMap((g) => [writeBackend(g.name), readBackend(g.name)]);
    try {
      const [states, vars] = await Promise.all([
        Promise.all(backends.map((b) => showServersState(this.cfg.adminSocket, undefined, b))),
        getVars(this.cfg.adminSocket, varNames),
        saving,
      ]);
      ms.readBack = lap();
      const plan = planRuntime(changed, states.flat(), { agentChecks: this.agentChecks, vars });
      if (plan.missing.length > 0) return false;
      if (plan.commands.length > 0) {
        await haproxyRun(this.cfg.adminSocket, plan.commands);
        ms.applied = lap();
        this.metrics.observeApply('runtime', ms.applied / 1000);
        this.log.info(
          { commands: plan.commands, ms, groups: changed.length },
          'router: runtime update applied',
        );
      }
      if (plan.cuts.length > 0) await this.cutInOldWorkers(plan.cuts);
    } catch (err) {
      // The full reconcile reads everything back and reports what fails.
      this.log.warn({ err: errorMessage(err) }, 'router: targeted update failed; reconciling everything');
      return false;
    }
    const fn = choice.fn;
    const all = [...desired];
    this.scheduleWrite(() => renderHaproxyConfig(fn, this.renderInput(all)));
    if (changed.length > 0)
      this.log.info(
        { groups: changed.map((g) => ({ name: g.name, epoch: g.epoch, write: g.write?.node ?? null })) },
        'router: applied',
      );
    this.applied = all;
    this.problems = problems;
    await this.publish();
    return true;
  }

  private renderWithFallback(
    groups: readonly GroupState[],
  ): { choice: TemplateChoice; text: string; skeleton: string } | null {
    for (let i = 0; i < 2; i++) {
      const choice = this.templates.select();
      if (choice === null) return null;
      try {
        const input = this.renderInput(groups);
        return {
          choice,
          text: renderHaproxyConfig(choice.fn, input),
          skeleton: renderSkeleton(choice.fn, input),
        };
      } catch (err) {
        if (!choice.candidate) {
          this.log.error({ err: errorMessage(err) }, 'router: the last good template fails to render');
          return null;
        }
        this.templates.reject(choice.text, errorMessage(err));
      }
    }
    return null;
  }

  /** What HAProxy runs after a reload that did not happen: old listeners, runtime-updated servers. */
  private merged(desired: readonly GroupState[]): GroupState[] {
    const prev = this.applied ?? [];
    const want = new Map(desired.map((g) => [g.name, g]));
    return prev.map((p) => {
      const d = want.get(p.name);
      return d ? { ...d, writePort: p.writePort, readPort: p.readPort } : p;
    });
  }

  private reloadProblems(desired: readonly GroupState[], reason: string): Problem[] {
    const prev = new Map((this.applied ?? []).map((g) => [g.name, g]));
    const changed = desired.filter((g) => {
      const p = prev.get(g.name);
      return p === undefined || p.writePort !== g.writePort || p.readPort !== g.readPort;
    });
    const gone = (this.applied ?? []).filter((p) => !desired.some((g) => g.name === p.name));
    const groups = [...changed, ...gone].map((g) => g.name);
    if (groups.length === 0) return [{ group: null, kind: 'reload', message: `reload failed: ${reason}` }];
    return groups.map((g) => ({
      group: g,
      kind: 'reload' as const,
      message: `listener change not applied, reload failed: ${reason}`,
    }));
  }

  private async startFresh(
    desired: GroupState[],
    choice: TemplateChoice,
    text: string,
    skeleton: string,
    problems: Problem[],
  ): Promise<void> {
    try {
      await this.flushWriter();
      fs.mkdirSync(path.dirname(this.cfg.haproxyConfig), { recursive: true });
      await writeValidatedConfig(this.cfg.haproxyBin, this.cfg.haproxyConfig, text);
      this.lastWrittenConfig = text;
      const proc = await startHaproxy({
        bin: this.cfg.haproxyBin,
        configFile: this.cfg.haproxyConfig,
        masterSocket: this.cfg.masterSocket,
        pidFile: this.pidFile,
      });
      await this.awaitBackends(desired);
      this.running = { template: choice.text, skeleton };
      if (choice.candidate) this.templates.promote(choice);
      this.applied = desired;
      await this.saveStateIfChanged(desired, choice.text);
      this.log.info(
        { master: proc.master.pid, groups: desired.map((g) => g.name) },
        'router: started HAProxy',
      );
    } catch (err) {
      // Blame a new template only when there is a proven one to go back to.
      if (choice.candidate && this.templates.goodText() !== null) {
        this.templates.reject(choice.text, errorMessage(err));
        this.dirty = true;
      }
      problems.push({ group: null, kind: 'haproxy', message: `cannot start HAProxy: ${errorMessage(err)}` });
      this.log.error({ err: errorMessage(err) }, 'router: cannot start HAProxy');
    }
    this.problems = problems;
    await this.publish();
  }

  private async reload(
    desired: readonly GroupState[],
    choice: TemplateChoice,
    text: string,
    skeleton: string,
  ): Promise<{ ok: true } | { ok: false; reason: string }> {
    await this.flushWriter();
    const before = this.lastWrittenConfig;
    try {
      await writeValidatedConfig(this.cfg.haproxyBin, this.cfg.haproxyConfig, text);
    } catch (err) {
      return { ok: false, reason: errorMessage(err) };
    }
    this.lastWrittenConfig = text;
    let res;
    try {
      res = await reloadHaproxy(this.cfg.masterSocket);
    } catch (err) {
      res = { ok: false as const, reason: errorMessage(err) };
    }
    if (res.ok) {
      try {
        await this.awaitBackends(desired);
      } catch (err) {
        res = { ok: false as const, reason: errorMessage(err) };
      }
    }
    if (!res.ok) {
      // The previous workers keep serving; put their configuration back so a restart matches.
      this.log.error({ reason: res.reason }, 'router: reload failed; previous configuration keeps serving');
      await this.restoreConfig(before);
      return res;
    }
    this.running = { template: choice.text, skeleton };
    if (choice.candidate) this.templates.promote(choice);
    this.reloadFailure = null;
    this.log.info({ worker: res.worker, groups: desired.map((g) => g.name) }, 'router: HAProxy reloaded');
    return { ok: true };
  }

  private async restoreConfig(before: string | null): Promise<void> {
    const template = this.running.template;
    let text = before;
    if (template !== null && this.applied !== null) {
      try {
        text = renderHaproxyConfig(template, this.renderInput(this.applied));
      } catch {
        text = before;
      }
    }
    if (text === null) return;
    try {
      await writeValidatedConfig(this.cfg.haproxyBin, this.cfg.haproxyConfig, text);
      this.lastWrittenConfig = text;
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'router: could not restore the previous configuration file');
    }
  }

  /** After a start or reload: the new worker answers and runs every backend we rendered. */
  private async awaitBackends(groups: readonly GroupState[], timeoutMs = 10_000): Promise<void> {
    const want = groups.flatMap((g) => [writeBackend(g.name), readBackend(g.name)]);
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      try {
        const have = new Set((await showServersState(this.cfg.adminSocket, 1000)).map((s) => s.backend));
        const missing = want.filter((b) => !have.has(b));
        if (missing.length === 0) return;
        last = `missing backends ${missing.join(', ')}`;
      } catch (err) {
        last = errorMessage(err);
      }
      if (Date.now() > deadline)
        throw new ZkmhaError('HAPROXY_ERROR', `new HAProxy worker not confirmed: ${last}`);
      await delay(10);
    }
  }

  /** Workers left over from a reload keep their own sessions: cut the old write server there too. */
  private async cutInOldWorkers(cuts: readonly ServerRef[]): Promise<void> {
    try {
      const proc = await showProc(this.cfg.masterSocket);
      for (const w of proc.workers.slice(1)) {
        const closed = await cutSessionsInWorker(this.cfg.masterSocket, w.pid, cuts);
        if (closed > 0)
          this.log.info(
            { worker: w.pid, closed, servers: cuts },
            'router: cut old write sessions in a worker left over from a reload',
          );
      }
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'router: could not reach older HAProxy workers');
    }
  }

  // --- files -------------------------------------------------------------------------------------

  private async saveStateIfChanged(groups: readonly GroupState[], template: string): Promise<void> {
    const groupsJson = JSON.stringify(groups);
    const key = groupsJson + '\u0000' + template;
    if (key === this.lastSavedState) return;
    try {
      await saveState(this.stateFile, stateText(this.id, groupsJson, template, Date.now()));
      this.lastSavedState = key;
    } catch (err) {
      this.log.error({ err: errorMessage(err), file: this.stateFile }, 'router: cannot save state');
    }
  }

  /**
   * Writes the configuration file in the background (validated, atomic), latest content wins. The
   * text is rendered there too: with many groups rendering costs more than the runtime update.
   */
  private scheduleWrite(render: () => string): void {
    const idle = this.pendingWrite === null;
    this.pendingWrite = { render };
    if (!idle) return;
    this.writer = this.writer.then(async () => {
      while (this.pendingWrite !== null) {
        const { render: r } = this.pendingWrite;
        this.pendingWrite = null;
        try {
          const t = r();
          if (t === this.lastWrittenConfig) continue;
          await writeValidatedConfig(this.cfg.haproxyBin, this.cfg.haproxyConfig, t);
          this.lastWrittenConfig = t;
          if (this.writerProblem !== null) {
            this.writerProblem = null;
            this.requestReconcile();
          }
        } catch (err) {
          this.writerProblem = {
            group: null,
            kind: 'haproxy',
            message: `configuration file not written: ${errorMessage(err)}`,
          };
          this.log.error({ err: errorMessage(err) }, 'router: configuration file not written');
          this.requestReconcile();
        }
      }
    });
  }

  private async flushWriter(): Promise<void> {
    for (;;) {
      const w = this.writer;
      await w;
      if (w === this.writer && this.pendingWrite === null) return;
    }
  }

  // --- DNS ---------------------------------------------------------------------------------------

  private async resolveHosts(hosts: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    await Promise.all(
      hosts.map(async (h) => {
        const cached = this.dns.get(h);
        if (cached && Date.now() - cached.at < DNS_TTL_MS) {
          if (cached.addr !== null) out.set(h, cached.addr);
          return;
        }
        try {
          const r = await withTimeout(lookup(h), DNS_TIMEOUT_MS, `resolve ${h}`);
          this.dns.set(h, { addr: r.address, at: Date.now() });
          out.set(h, r.address);
        } catch {
          this.dns.set(h, { addr: null, at: Date.now() });
        }
      }),
    );
    return out;
  }

  // --- reporting ---------------------------------------------------------------------------------

  private allProblems(): Problem[] {
    return this.writerProblem === null ? this.problems : [...this.problems, this.writerProblem];
  }

  /** meta_router/<id> (ephemeral) and watch_down/<group>__router alerts; retried until written. */
  private async publish(): Promise<void> {
    const zk = this.zk;
    const problems = this.allProblems();
    if (problems.length > 0) this.log.debug({ problems }, 'router: problems');
    if (zk === null || !zk.connected) return;
    const lastError = lastErrorOf(problems);
    const applied: Record<string, number> = {};
    for (const g of this.applied ?? []) if (g.epoch !== null) applied[g.name] = g.epoch;
    const key = JSON.stringify({ applied, lastError });
    if (key !== this.published) {
      const rec: MetaRouterRecord = {
        v: 1,
        host: this.host,
        applied,
        at: Date.now(),
        ...(lastError !== null ? { lastError } : {}),
      };
      const p = this.paths.metaRouter(this.id);
      try {
        await zk.putEphemeral(p, encodeRecord(metaRouterSchema, rec, p));
        this.published = key;
      } catch (err) {
        this.log.warn({ err: errorMessage(err), path: p }, 'router: cannot publish meta_router');
      }
    }
    await this.raiseAlerts(zk, problems);
  }

  private async raiseAlerts(zk: Zk, problems: readonly Problem[]): Promise<void> {
    const groups = (this.applied ?? []).map((g) => g.name);
    const byGroup = new Map<string, string[]>();
    for (const p of problems) {
      for (const g of p.group === null ? groups : [p.group])
        byGroup.set(g, [...(byGroup.get(g) ?? []), p.message]);
    }
    for (const g of [...this.alerted.keys()]) if (!byGroup.has(g)) this.alerted.delete(g);
    for (const [group, messages] of byGroup) {
      const message = messages.join('; ').slice(0, 2000);
      if (this.alerted.get(group) === message) continue;
      const p = this.paths.watchDown(group, 'router');
      const data = encodeRecord(
        alertSchema,
        {
          v: 1,
          kind: 'router',
          at: Date.now(),
          detail: { router: this.id, host: this.host, error: message },
        },
        p,
      );
      try {
        if ((await zk.exists(p)) === null)
          await zk.create(p, data).catch(async (err: unknown) => {
            if (err instanceof ZkmhaError && err.code === 'ZK_NODE_EXISTS') await zk.set(p, data);
            else throw err;
          });
        else await zk.set(p, data);
        this.alerted.set(group, message);
        this.metrics.alerted(group, 'router');
        this.log.warn({ group, alert: p, error: message }, 'router: alert raised');
      } catch (err) {
        this.log.warn({ err: errorMessage(err), path: p }, 'router: cannot write alert');
      }
    }
  }
}

/** What of a group the listener skeleton depends on (renderSkeleton's input): equal keys, no reload. */
function listenerKey(g: GroupState): string {
  return JSON.stringify({ ...g, epoch: null, write: null, read: g.read.map(() => null) });
}

export function lastErrorOf(problems: readonly Problem[]): string | null {
  if (problems.length === 0) return null;
  return problems
    .map((p) => `${p.group ?? 'router'}: ${p.message}`)
    .join('; ')
    .slice(0, 4000);
}

function validateSocketPath(p: string, key: string): void {
  if (!/^\/[A-Za-z0-9_./@+-]+$/.test(p) || p.length > 100) {
    throw new ZkmhaError(
      'BAD_CONFIG',
      `config: ${key} '${p}' must be an absolute path of letters, digits and _ . / @ + - (at most 100 characters)`,
    );
  }
}

/** The master pid of the HAProxy this router started, from its pid file. */
export function routerHaproxyPid(stateDir: string): number | null {
  return readPidFile(path.join(stateDir, 'haproxy.pid'));
}

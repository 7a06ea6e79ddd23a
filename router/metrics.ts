import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { createRegistry, FAST_BUCKETS, OPERATION_BUCKETS } from '../core/metrics';
import type { Problem } from './desired';
import type { GroupState } from './model';

/**
 * The router's `/metrics` (prom-client, served when router.httpPort is set): how fast it applies a
 * route (runtime path) or a listener change (reload), the epoch applied per group, its current
 * problems by kind, and the alerts it raised.
 */
export interface RouterMetricsView {
  readonly applied: readonly GroupState[];
  readonly problems: readonly Problem[];
  readonly zkConnected: boolean;
}

export interface RouterMetrics {
  readonly registry: Registry;
  /** A runtime update sent and acknowledged by HAProxy: seconds since its reconcile began. */
  observeApply(path: 'runtime', seconds: number): void;
  observeReload(ok: boolean, seconds: number): void;
  reconciled(): void;
  alerted(group: string, kind: string): void;
}

export function createRouterMetrics(view: () => RouterMetricsView): RouterMetrics {
  const registry = createRegistry('router');
  new Gauge({
    name: 'zkmha_router_applied_epoch',
    help: 'epoch of the route applied to HAProxy, per group',
    labelNames: ['group'],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of view().applied) if (g.epoch !== null) this.set({ group: g.name }, g.epoch);
    },
  });
  new Gauge({
    name: 'zkmha_router_write_routed',
    help: '1 while the group has a write target (w1 in service), 0 during a failover or without master',
    labelNames: ['group'],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of view().applied) this.set({ group: g.name }, g.write === null ? 0 : 1);
    },
  });
  new Gauge({
    name: 'zkmha_router_read_routed',
    help: 'replicas in the read backend, per group',
    labelNames: ['group'],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of view().applied) this.set({ group: g.name }, g.read.filter((s) => s !== null).length);
    },
  });
  new Gauge({
    name: 'zkmha_router_problems',
    help: 'current problems by kind (their text is in meta_router/<id>.lastError)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const p of view().problems) counts.set(p.kind, (counts.get(p.kind) ?? 0) + 1);
      for (const [kind, n] of counts) this.set({ kind }, n);
    },
  });
  new Gauge({
    name: 'zkmha_router_zk_connected',
    help: 'the router is connected to ZooKeeper',
    registers: [registry],
    collect() {
      this.set(view().zkConnected ? 1 : 0);
    },
  });
  const apply = new Histogram({
    name: 'zkmha_router_apply_duration_seconds',
    help: 'from the start of a reconcile to HAProxy acknowledging its runtime API commands',
    labelNames: ['path'],
    buckets: [...FAST_BUCKETS],
    registers: [registry],
  });
  const reload = new Histogram({
    name: 'zkmha_router_reload_duration_seconds',
    help: 'validated, confirmed HAProxy reloads (listener or template changes), by result',
    labelNames: ['result'],
    buckets: [...OPERATION_BUCKETS],
    registers: [registry],
  });
  const reconciles = new Counter({
    name: 'zkmha_router_reconciles_total',
    help: 'reconciles run (ZooKeeper events and the periodic one)',
    registers: [registry],
  });
  const alerts = new Counter({
    name: 'zkmha_router_alerts_total',
    help: 'watch_down/ alerts written by this router, by group and kind',
    labelNames: ['group', 'kind'],
    registers: [registry],
  });
  return {
    registry,
    observeApply: (path, seconds) => apply.observe({ path }, seconds),
    observeReload: (ok, seconds) => reload.observe({ result: ok ? 'ok' : 'failed' }, seconds),
    reconciled: () => reconciles.inc(),
    alerted: (group, kind) => alerts.inc({ group, kind }),
  };
}

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { errorMessage } from '../core/errors';
import { createRegistry, FAST_BUCKETS, OPERATION_BUCKETS } from '../core/metrics';
import { alertSchema, decodeRecord } from '../core/records';
import type { Zk } from '../core/zk/client';
import type { ZkPaths } from '../core/zk/paths';
import type { FailoverOutcome } from './failover';

/**
 * The server worker's `/metrics` (prom-client, served when server.httpPort is set). Instrumented at
 * three places of server/worker.ts only: where a failover is decided (detection latency), where its
 * outcome comes back (count, duration, per-step durations) and around the lock (hold time). Open
 * alerts are read from watch_down/ at scrape time, so every worker reports the same (whoever wrote
 * them: servers, routers, the CLI).
 */
export interface ServerMetrics {
  readonly registry: Registry;
  /** The heartbeat's loss was seen `seconds` ago and the master is now declared dead. */
  detected(group: string, seconds: number): void;
  /** A failover this worker ran came back with `outcome` after `seconds` (lock wait included). */
  failover(group: string, outcome: FailoverOutcome, seconds: number): void;
  lockHeld(group: string, seconds: number): void;
}

export function createServerMetrics(zk: Zk, paths: ZkPaths): ServerMetrics {
  const registry = createRegistry('server');
  const failovers = new Counter({
    name: 'zkmha_server_failovers_total',
    help: 'failovers run by this worker, by outcome (done, failed, no-candidate, blocked, lost)',
    labelNames: ['group', 'outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'zkmha_server_failover_duration_seconds',
    help: 'failovers run by this worker, from taking the lock to the outcome, by outcome',
    labelNames: ['group', 'outcome'],
    buckets: [...OPERATION_BUCKETS],
    registers: [registry],
  });
  const steps = new Histogram({
    name: 'zkmha_server_failover_step_duration_seconds',
    help: 'steps of the failovers this worker completed (from their history event)',
    labelNames: ['group', 'step'],
    buckets: [...FAST_BUCKETS],
    registers: [registry],
  });
  const detection = new Histogram({
    name: 'zkmha_server_detection_seconds',
    help: "from the first event seen (the master's online/ gone) to the decision to fail over",
    labelNames: ['group'],
    buckets: [...OPERATION_BUCKETS],
    registers: [registry],
  });
  const locks = new Histogram({
    name: 'zkmha_server_lock_hold_seconds',
    help: 'how long this worker held lock/<group>',
    labelNames: ['group'],
    buckets: [...OPERATION_BUCKETS],
    registers: [registry],
  });
  new Gauge({
    name: 'zkmha_server_alerts_open',
    help: 'watch_down/ alerts present in ZooKeeper, by group and kind',
    labelNames: ['group', 'kind'],
    registers: [registry],
    async collect() {
      this.reset();
      const dir = paths.dir('watch_down');
      let names: string[];
      try {
        names = await zk.children(dir);
      } catch (err) {
        throw new Error(`alerts: cannot list ${dir}: ${errorMessage(err)}`);
      }
      const counts = new Map<string, { group: string; kind: string; n: number }>();
      await Promise.all(
        names.map(async (name) => {
          const nd = await zk.getOrNull(`${dir}/${name}`).catch(() => null);
          if (nd === null) return;
          let kind = 'invalid';
          try {
            kind = decodeRecord(alertSchema, nd.data, `${dir}/${name}`).kind;
          } catch {
            // counted as 'invalid': a record nobody can act on is worth a look too
          }
          const group = name.split('__')[0] ?? name;
          const key = `${group}\u0000${kind}`;
          const c = counts.get(key) ?? { group, kind, n: 0 };
          c.n++;
          counts.set(key, c);
        }),
      );
      for (const c of counts.values()) this.set({ group: c.group, kind: c.kind }, c.n);
    },
  });
  return {
    registry,
    detected: (group, seconds) => detection.observe({ group }, seconds),
    failover(group, outcome, seconds) {
      failovers.inc({ group, outcome: outcome.kind });
      duration.observe({ group, outcome: outcome.kind }, seconds);
      if (outcome.kind === 'done')
        for (const s of outcome.steps) steps.observe({ group, step: s.name }, s.ms / 1000);
    },
    lockHeld: (group, seconds) => locks.observe({ group }, seconds),
  };
}

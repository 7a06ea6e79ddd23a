import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { startE2E, type E2EWorld } from '../../devenv/e2e';
import { histogramCount, histogramLabelValues, samples, scrape, value, type Families } from '../env/prom';
import { waitFor } from '../../devenv/wait';
import { startZooKeeper, type ZkCluster } from '../../devenv/zookeeper';

/**
 * Every daemon serves /metrics in Prometheus text format (issue 14): the sandbox's topology as real
 * processes (three `mha client`, two `mha server`, one `mha router` with its HAProxy, on real
 * ZooKeeper and MariaDB), a master killed, and each daemon scraped and parsed by a real Prometheus
 * text-format parser. The figures must tell what happened: one failover done, its duration and
 * steps, the new epoch applied by the router and seen by the agents, HAProxy's checks answered.
 */
function logged(lines: ReadonlyArray<Record<string, unknown>>, key: string): number | null {
  for (const l of lines) if (typeof l[key] === 'number') return l[key];
  return null;
}

function jsonLines(file: string): Array<Record<string, unknown>> {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('metrics: each daemon after a failover, as Prometheus sees it', () => {
  let zk: ZkCluster;
  let w: E2EWorld;
  before(async () => {
    zk = await startZooKeeper();
    w = await startE2E({ zk, sessionTimeoutMs: 2000 });
  });
  after(async () => {
    await w?.close();
    await zk?.close();
  });

  it('a killed master shows up in the server, router and client metrics', async () => {
    const { c } = w;
    const writer = w.writer();
    await writer.waitForAcks(20);
    const old = (await c.master()).node;
    await c.instance(old).kill();
    const m = await c.waitForNewMaster({ notNode: old, timeoutMs: 20_000 });
    await waitFor(() => writer.acks.some((a) => a.node === m.node), {
      timeoutMs: 15_000,
      what: 'a write on the new master through HAProxy',
    });
    await writer.stop();
    const group = c.group;

    // Servers: exactly one of the two ran the failover.
    const servers: Families[] = [];
    for (const id of ['s1', 's2']) {
      const port = await waitFor(() => logged(c.server(id)!.logs(), 'metricsPort'), {
        timeoutMs: 5000,
        what: `server ${id} metrics port`,
      });
      servers.push(await scrape(port));
    }
    const done = servers.map((f) =>
      samples(f, 'zkmha_server_failovers_total', 'COUNTER', { group, outcome: 'done' }).reduce(
        (a, s) => a + Number(s.value),
        0,
      ),
    );
    assert.equal(done[0]! + done[1]!, 1, 'one failover done, by one worker');
    const ran = servers[done[0] === 1 ? 0 : 1]!;
    assert.equal(
      histogramCount(ran, 'zkmha_server_failover_duration_seconds', { group, outcome: 'done' }),
      1,
    );
    assert.equal(histogramCount(ran, 'zkmha_server_detection_seconds', { group }), 1);
    assert.ok(
      histogramCount(ran, 'zkmha_server_lock_hold_seconds', { group }) >= 1,
      'the lock hold is timed',
    );
    const steps = histogramLabelValues(ran, 'zkmha_server_failover_step_duration_seconds', 'step');
    assert.ok(steps.includes('promote'), `per-step durations include promote (${steps.join(', ')})`);
    await waitFor(
      async () => {
        const f = await scrape(logged(c.server('s1')!.logs(), 'metricsPort')!);
        return value(f, 'zkmha_server_alerts_open', 'GAUGE', { group, kind: 'failover' }) === 1;
      },
      { timeoutMs: 5000, what: 'the failover alert counted as open' },
    );

    // Router: the new epoch applied, runtime updates timed.
    const routerPort = logged(jsonLines(w.routerLog), 'metricsPort');
    assert.ok(routerPort !== null, 'the router logs its metrics port');
    await waitFor(
      async () =>
        value(await scrape(routerPort), 'zkmha_router_applied_epoch', 'GAUGE', { group }) === m.epoch,
      { timeoutMs: 10_000, what: `router reports epoch ${m.epoch}` },
    );
    const rf = await scrape(routerPort);
    assert.ok(histogramCount(rf, 'zkmha_router_apply_duration_seconds', { path: 'runtime' }) >= 2);
    assert.equal(value(rf, 'zkmha_router_write_routed', 'GAUGE', { group }), 1);
    assert.equal(value(rf, 'zkmha_router_zk_connected', 'GAUGE'), 1);

    // Agents: the new master knows it is master at the new epoch, and HAProxy's checks reached it.
    const port = logged(c.client(m.node)!.logs(), 'httpPort')!;
    const labels = { node: m.node, group };
    await waitFor(
      async () => {
        const f = await scrape(port);
        return (
          value(f, 'zkmha_client_master_epoch', 'GAUGE', labels) === m.epoch &&
          histogramCount(f, 'zkmha_client_endpoint_duration_seconds', {
            ...labels,
            endpoint: 'master',
            code: '200',
          }) >= 1
        );
      },
      { timeoutMs: 10_000, what: `${m.node}: master at epoch ${m.epoch}, /master answered 200` },
    );
    const cf = await scrape(port);
    assert.equal(value(cf, 'zkmha_client_is_master', 'GAUGE', labels), 1);
    assert.equal(value(cf, 'zkmha_client_read_only', 'GAUGE', labels), 0);
    const [semi] = await c.instance(m.node).query('SELECT @@rpl_semi_sync_master_enabled AS on_');
    assert.equal(
      value(cf, 'zkmha_client_semi_sync_master_enabled', 'GAUGE', labels),
      Number(semi?.on_),
      'semi-sync as mysqld reports it',
    );
    assert.ok(histogramCount(cf, 'zkmha_client_check_duration_seconds', { ...labels, result: 'ok' }) > 0);
    const replica = c.nodes.find((n) => n !== old && n !== m.node)!;
    const rport = logged(c.client(replica)!.logs(), 'httpPort')!;
    await waitFor(
      async () => {
        const f = await scrape(rport);
        const lag = value(f, 'zkmha_client_replication_lag_seconds', 'GAUGE', { node: replica, group });
        return (
          Number.isFinite(lag) &&
          value(f, 'zkmha_client_replication_io_running', 'GAUGE', { node: replica, group }) === 1
        );
      },
      { timeoutMs: 10_000, what: `${replica} replicates from the new master with a known lag` },
    );
  });
});

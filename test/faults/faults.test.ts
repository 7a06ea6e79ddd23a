import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEnsemble, type ZkCluster } from '../../devenv/zookeeper';
import { waitFor } from '../../devenv/wait';
import type { CheckerReport } from './checker';
import { Rng, fuzzSeed } from '../unit/fuzz';
import { printResult, startFaultWorld, writeResults, type FaultWorld, type ScenarioResult } from './world';

/**
 * The fault suite (issue 11): real processes, real silent partitions (nft DROP by cgroup and
 * port), hangs (SIGSTOP/SIGCONT), ZooKeeper member and quorum loss, with the continuous checker
 * (test/faults/checker.ts) running through each. `npm run test:faults`; one line of figures per
 * scenario, all of them in .bench/faults.json. Heavy: run it under `flock /work/heavy.lock`.
 */
const results: ScenarioResult[] = [];
after(() => writeResults(results));

function explain(report: CheckerReport): string {
  const kinds = new Map<string, number>();
  for (const v of report.violations) kinds.set(v.kind, (kinds.get(v.kind) ?? 0) + 1);
  return (
    [...kinds].map(([k, n]) => `${n} ${k}`).join(', ') +
    ' — ' +
    report.violations
      .slice(0, 6)
      .map((v) => `${v.kind}: ${v.detail}`)
      .join('; ')
  );
}

async function scenario(
  name: string,
  opts: Parameters<typeof startFaultWorld>[0],
  body: (f: FaultWorld) => Promise<Record<string, number | string> | void>,
  expect: (r: ScenarioResult, report: CheckerReport) => void,
): Promise<void> {
  const f = await startFaultWorld(opts);
  try {
    const extra = (await body(f)) ?? {};
    const { result, report } = await f.finish(name, extra);
    printResult(result);
    results.push(result);
    assert.equal(result.violations, 0, `${name}: ${explain(report)}`);
    assert.equal(result.lost, 0, `${name}: ${explain(report)}`);
    expect(result, report);
  } catch (err) {
    process.stderr.write(
      `fault ${name} failed; logs in ${f.w.c.dir} (ZKMHA_KEEP_TMP=1 keeps them); steps: ${f.notes.slice(-5).join(' | ')}\n`,
    );
    throw err;
  } finally {
    await f.close();
  }
}

describe('fault suite', { concurrency: 1 }, () => {
  it('5 hung master: SIGSTOP past detection, then SIGCONT — replaced, resumed read-only, never routed', async () => {
    await scenario(
      'hung-master',
      {},
      async (f) => {
        const { c } = f.w;
        const old = (await c.master()).node;
        const t0 = performance.now();
        await c.instance(old).pause();
        const m = await c.waitForNewMaster({ notNode: old, timeoutMs: 20_000 });
        const firstNew = await waitFor(() => f.writer.firstAckAfter(t0, old), {
          timeoutMs: 20_000,
          what: 'a write on the new master',
        });
        await c.instance(old).resume();
        // The resumed old master is fenced (read-only) by its own agent.
        await waitFor(() => f.checker.samples.at(-1)?.readOnly.get(old) === 'ro', {
          timeoutMs: 15_000,
          what: `resumed ${old} read-only`,
        });
        return { replacedMs: Math.round(firstNew.hr - t0), newMaster: m.node };
      },
      (r) => assert.ok(r.failovers >= 1, 'no failover'),
    );
  });

  it('2 master partitioned from everything, healed after the failover — fenced, never routed', async () => {
    await scenario(
      'master-isolated',
      {},
      async (f) => {
        const { c } = f.w;
        const old = (await c.master()).node;
        const port = c.instance(old).port;
        const t0 = performance.now();
        const cut = await f.net.isolate(f.hostOf(old), [port], ['observer']);
        await c.waitForNewMaster({ notNode: old, timeoutMs: 20_000 });
        const firstNew = await waitFor(() => f.writer.firstAckAfter(t0, old), {
          timeoutMs: 20_000,
          what: 'a write on the new master',
        });
        // Its own agent, alone with it, fences it (failsafe: no ZooKeeper, no writes).
        await waitFor(() => f.checker.samples.at(-1)?.readOnly.get(old) === 'ro', {
          timeoutMs: 15_000,
          what: `isolated ${old} read-only`,
        });
        const fencedMs = Math.round(performance.now() - t0);
        await cut.heal();
        return { replacedMs: Math.round(firstNew.hr - t0), fencedMs };
      },
      (r) => assert.ok(r.failovers >= 1, 'no failover'),
    );
  });

  it('1 master cut from ZooKeeper and the workers, still reaching its replicas — never two masters acknowledging', async () => {
    await scenario(
      'master-cut-from-zk-and-workers',
      {},
      async (f) => {
        const { c } = f.w;
        const old = (await c.master()).node;
        // Hole 3: applications connected straight to the nodes (not through HAProxy). The old
        // master acknowledges under its agent's failsafe until that agent fences it; the
        // candidate must not take a write before that.
        const direct = await Promise.all(
          c.nodes.map((n) => c.startWriter({ via: n, intervalMs: 5, retryMs: n === old ? 2 : 10 })),
        );
        const t0 = performance.now();
        const a = await f.net.cut(f.hostOf(old), f.zkPorts());
        const b = await Promise.all(f.workers.map((wk) => f.net.cut(wk, [c.instance(old).port])));
        await c.waitForNewMaster({ notNode: old, timeoutMs: 20_000 });
        const firstNew = await waitFor(() => f.writer.firstAckAfter(t0, old), {
          timeoutMs: 20_000,
          what: 'a write on the new master',
        });
        await waitFor(() => f.checker.samples.at(-1)?.readOnly.get(old) === 'ro', {
          timeoutMs: 15_000,
          what: `cut-off ${old} read-only`,
        });
        await Promise.all(direct.map((w) => w.stop()));
        await a.heal();
        for (const x of b) await x.heal();
        const lastOld = Math.max(
          ...direct.flatMap((w) => w.acks.filter((k) => k.node === old).map((k) => k.hr)),
        );
        const firstOther = Math.min(
          ...direct.flatMap((w) => w.acks.filter((k) => k.node !== old && k.hr >= t0).map((k) => k.hr)),
        );
        return {
          replacedMs: Math.round(firstNew.hr - t0),
          lastOldAckMs: Math.round(lastOld - t0),
          firstNewDirectAckMs: Math.round(firstOther - t0),
        };
      },
      (r) => {
        assert.ok(r.failovers >= 1, 'no failover');
        const { lastOldAckMs, firstNewDirectAckMs } = r.extra as Record<string, number>;
        assert.ok(Number.isFinite(firstNewDirectAckMs), 'no direct write on the new master');
        assert.ok(
          lastOldAckMs! < firstNewDirectAckMs!,
          `the old master acknowledged at +${lastOldAckMs} ms, after the new one at +${firstNewDirectAckMs} ms`,
        );
        assert.equal(r.twoWritableMs, 0);
      },
    );
  });

  it('9 slow network: 10 % loss, then 150 ms delay each way, between workers and master, master agent and ZooKeeper — no failover', async () => {
    await scenario(
      'slow-network',
      {},
      async (f) => {
        const { c } = f.w;
        const old = await c.master();
        const port = c.instance(old.node).port;
        const hold = async (ms: number) => {
          const t0 = performance.now();
          await waitFor(() => performance.now() - t0 > ms, { timeoutMs: ms + 4000, intervalMs: 100 });
        };
        const loss = [
          ...(await Promise.all(f.workers.map((wk) => f.net.loss(wk, [port], 10)))),
          await f.net.loss(f.hostOf(old.node), f.zkPorts(), 10),
        ];
        f.log('10 % loss');
        await hold(8000);
        for (const x of loss) await x.heal();
        assert.equal((await c.master()).epoch, old.epoch, 'a failover under mere packet loss');
        // Delay (a proxy: no tc netem here). Its redirect resets the connections open before, so
        // the master's agent reconnects to ZooKeeper through it within its session, as after a blip.
        const delay = [
          ...(await Promise.all(f.workers.map((wk) => f.net.delay(wk, [port], 150)))),
          await f.net.delay(f.hostOf(old.node), f.zkPorts(), 150),
        ];
        f.log('150 ms delay');
        await hold(8000);
        for (const x of delay) await x.heal();
        assert.equal((await c.master()).epoch, old.epoch, 'a failover under mere delay');
        // The delay was real: the agent's ZooKeeper session went through its proxy.
        assert.ok(delay.at(-1)!.connections() >= 1, 'no connection of the master agent was delayed');
        return { delayedConnections: delay.reduce((n, d) => n + d.connections(), 0) };
      },
      (r) => assert.equal(r.failovers, 0),
    );
  });

  it('8 flapping master: killed and restarted three times — at most one failover, then anti-flap', async () => {
    await scenario(
      'flapping-master',
      {},
      async (f) => {
        const { c } = f.w;
        const first = (await c.master()).node;
        let restarts = 0;
        for (let i = 0; i < 3; i++) {
          const m = (await c.master()).node;
          await c.instance(m).kill();
          const t = performance.now();
          // Down for about the detection time, then back (read-only, as a restarted mysqld should).
          await waitFor(() => performance.now() - t > 1500, { timeoutMs: 5000, intervalMs: 50 });
          await c.instance(m).start({ readOnly: true });
          restarts++;
          await f.writer.waitForAcks(20, 30_000).catch(() => undefined);
        }
        // The anti-flap may leave the group waiting for a person: acknowledge, as an operator would.
        const alerts = await c.zkClient.children(c.paths.dir('watch_down')).catch(() => [] as string[]);
        const master = await c.master();
        return { restarts, firstMaster: first, lastMaster: master.node, alerts: alerts.length };
      },
      (r) => assert.ok(r.failovers <= 1, `${r.failovers} failovers while flapping (anti-flap allows one)`),
    );
  });

  it('6 hung candidate: SIGSTOP the chosen candidate during the failover — excluded, another one is promoted', async () => {
    await scenario(
      'hung-candidate',
      {},
      async (f) => {
        const { c } = f.w;
        // A pause before the drain step, so the chosen candidate can be hung before it drains.
        await f.restartWorkers({ MHA_FAULT_PAUSE_BEFORE_STEP: 'drain:1000' });
        const old = (await c.master()).node;
        const t0 = performance.now();
        await c.instance(old).kill();
        const task = await f.waitForTask((t) => t.candidate !== null);
        const hung = task.candidate ?? '';
        await c.instance(hung).pause();
        f.log(`hung candidate ${hung}`);
        try {
          // Bounded: the hung candidate's deadline (~2 s), the choice's wait for it (replicaWaitMs,
          // 2 s), the injected pauses (2 × 1 s) and the promotion — well under 15 s.
          const m = await c.waitForNewMaster({ notNode: old, timeoutMs: 15_000 });
          assert.notEqual(m.node, hung, 'the hung candidate was promoted');
          const firstNew = await waitFor(() => f.writer.firstAckAfter(t0, old), {
            timeoutMs: 15_000,
            what: 'a write on the new master',
          });
          assert.equal(firstNew.node, m.node, 'the first write after the kill went to the new master');
          // The failover says why it gave the first candidate up.
          const ev = (await c.history()).filter((e) => e.kind === 'failover').at(-1);
          const exclusions = (ev?.detail.exclusions ?? []) as Array<{ node: string; reason: string }>;
          assert.deepEqual(
            exclusions.map((e) => [e.node, e.reason]),
            [[hung, 'timed-out']],
            'the history names the hung candidate, timed out',
          );
          // Still hung: never made writable.
          assert.notEqual(f.checker.samples.at(-1)?.readOnly.get(hung), 'rw');
          return { replacedMs: Math.round(firstNew.hr - t0), hung, newMaster: m.node };
        } finally {
          await c.instance(hung).resume();
          await c.instance(old).start({ readOnly: true });
        }
      },
      (r) => {
        assert.equal(r.failovers, 1);
        assert.ok(Number(r.extra.replacedMs) < 15_000, `writes back after ${r.extra.replacedMs} ms`);
      },
    );
  });

  it('7 a worker partitioned mid-failover — its lock dies with its session, the other worker finishes', async () => {
    await scenario(
      'worker-cut-mid-failover',
      {},
      async (f) => {
        const { c } = f.w;
        // A pause before promoting, so the worker is cut while it holds the lock mid-failover.
        await f.restartWorkers({ MHA_FAULT_PAUSE_BEFORE_STEP: 'promote:3000' });
        const old = (await c.master()).node;
        const t0 = performance.now();
        await c.instance(old).kill();
        const task = await f.waitForTask((t) => t.step === 'promote' || t.candidate !== null);
        const cutWorker = `worker-${task.worker}`;
        const mysqlPorts = c.nodes.map((n) => c.instance(n).port);
        const cut = await f.net.cut(cutWorker, [...f.zkPorts(), ...mysqlPorts]);
        const m = await c.waitForNewMaster({ notNode: old, timeoutMs: 30_000 });
        const firstNew = await waitFor(() => f.writer.firstAckAfter(t0, old), {
          timeoutMs: 30_000,
          what: 'a write on the new master',
        });
        await cut.heal();
        await c.instance(old).start({ readOnly: true });
        return {
          replacedMs: Math.round(firstNew.hr - t0),
          cutWorker: task.worker,
          step: task.step,
          newMaster: m.node,
        };
      },
      (r) => assert.ok(r.failovers >= 1),
    );
  });

  describe('with a 3-member ZooKeeper ensemble', () => {
    let zk: ZkCluster | null = null;
    after(async () => {
      await zk?.close();
    });

    it('3 one ZooKeeper member lost — nothing happens', async () => {
      zk = await startEnsemble(3);
      const ensemble = zk;
      await scenario(
        'zk-member-lost',
        { zk: ensemble },
        async (f) => {
          const epoch = (await f.w.c.master()).epoch;
          const leader = await ensemble.leader();
          await leader.kill();
          await f.writer.waitForAcks(200, 20_000);
          await leader.start();
          await ensemble.ready(20_000);
          await f.writer.waitForAcks(50, 20_000);
          assert.equal((await f.w.c.master()).epoch, epoch, 'a failover happened');
          return {};
        },
        (r) => assert.equal(r.failovers, 0),
      );
    });

    it('4 ZooKeeper quorum lost longer than the session timeout — no promotion, writes go on, reconciled', async () => {
      if (zk === null) zk = await startEnsemble(3);
      const ensemble = zk;
      await scenario(
        'zk-quorum-lost',
        { zk: ensemble },
        async (f) => {
          const before = await f.w.c.master();
          const lost = ensemble.members.slice(0, 2);
          for (const m of lost) await m.kill();
          const t0 = performance.now();
          // Past the 2 s session timeout: every session expires once the quorum is back.
          await f.writer.waitForAcks(100, 20_000);
          await waitFor(() => performance.now() - t0 > 5000, { timeoutMs: 10_000, intervalMs: 100 });
          const acksDuring = f.writer.acks.filter((a) => a.hr > t0).length;
          for (const m of lost) await m.start();
          await ensemble.ready(30_000);
          await f.w.c.assertInvariants({ master: before.node, timeoutMs: 30_000 });
          assert.equal((await f.w.c.master()).epoch, before.epoch, 'a promotion happened');
          return { acksDuringOutage: acksDuring };
        },
        (r) => assert.equal(r.failovers, 0),
      );
    });
  });
});

/**
 * 10: a randomised soak for FAULT_SOAK_S seconds (default 60 here; 300 s in CI, 30 min by hand):
 * faults drawn from a seeded generator (FUZZ_SEED replays) — short master hangs below detection,
 * packet loss, hung workers and router, and while a replica can still take over, a hung, isolated
 * or killed master — each healed, then the group must converge before the next. The checker runs
 * throughout. There is no automatic rejoin yet (settings.autoRejoin is not implemented), so a
 * replaced master stays out and the failover faults stop once no replica is left.
 */
describe('fault soak', () => {
  it('10 randomised faults for FAULT_SOAK_S seconds — no violation, no lost row', async () => {
    const soakS = Number(process.env.FAULT_SOAK_S ?? 60);
    const rng = new Rng(fuzzSeed());
    await scenario(
      'soak',
      // No anti-flap block: the soak fails over as often as its faults ask (scenario 8 covers it).
      { settings: { recoveryBlockSeconds: 0 } },
      async (f) => {
        const { c } = f.w;
        const deadline = performance.now() + soakS * 1000;
        const counts = new Map<string, number>();
        const out = new Set<string>();
        while (performance.now() < deadline) {
          const m = (await c.master()).node;
          const replicasLeft = c.nodes.filter((n) => n !== m && !out.has(n)).length;
          const kinds = ['short-hang', 'loss', 'hung-worker', 'hung-router'];
          if (replicasLeft >= 1) kinds.push('hung-master', 'isolated-master', 'killed-master');
          const kind = rng.pick(kinds);
          f.log(`soak: ${kind} (master ${m})`);
          counts.set(kind, (counts.get(kind) ?? 0) + 1);
          const port = c.instance(m).port;
          // The fault lasts this long on purpose: there is no condition to await.
          const hold = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
          switch (kind) {
            case 'short-hang':
              await c.instance(m).pause();
              await hold(300);
              await c.instance(m).resume();
              break;
            case 'loss': {
              const l = await Promise.all(f.workers.map((wk) => f.net.loss(wk, [port], 10)));
              await hold(3000);
              for (const x of l) await x.heal();
              break;
            }
            case 'hung-worker':
            case 'hung-router': {
              // Every process of the host: the router host is the router and its HAProxy.
              const pids = f.net.pids(kind === 'hung-router' ? 'router' : rng.pick(f.workers));
              for (const pid of pids) process.kill(pid, 'SIGSTOP');
              await hold(3000);
              for (const pid of pids) process.kill(pid, 'SIGCONT');
              break;
            }
            case 'hung-master':
              await c.instance(m).pause();
              await c.waitForNewMaster({ notNode: m, timeoutMs: 20_000 });
              await c.instance(m).resume();
              out.add(m);
              break;
            case 'isolated-master': {
              const iso = await f.net.isolate(f.hostOf(m), [port], ['observer']);
              await c.waitForNewMaster({ notNode: m, timeoutMs: 20_000 });
              await iso.heal();
              out.add(m);
              break;
            }
            default:
              await c.instance(m).kill();
              await c.waitForNewMaster({ notNode: m, timeoutMs: 20_000 });
              await c.instance(m).start({ readOnly: true });
              out.add(m);
          }
          await c.assertInvariants({ timeoutMs: 30_000 });
          await f.writer.waitForAcks(20, 30_000);
        }
        return { seconds: soakS, faults: [...counts].map(([k, n]) => `${k}:${n}`).join(',') };
      },
      () => undefined,
    );
  });
});

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  alertSchema,
  decodeRecord,
  encodeRecord,
  metaHostSchema,
  metaRouterSchema,
  whiteSchema,
  type AlertRecord,
  type MetaHost,
} from '../../core/records';
import type { StatusReport } from '../../core/status';
import { antiFlapBlock } from '../../server/detect';
import { withCluster, type Cluster } from '../../devenv/cluster';
import { replicationOf, runMha } from '../../devenv/cli';
import { startE2E } from '../../devenv/e2e';
import { waitFor } from '../../devenv/wait';
import { startZooKeeper, type ZkCluster } from '../../devenv/zookeeper';

/**
 * Issue 11, holes 4, 5 and 7, against real ZooKeeper, MariaDB, heartbeat clients, server workers
 * (and for the route, a router with its HAProxy): what the workers now repair by themselves.
 */
const alertOf = async (c: Cluster, kind: string): Promise<AlertRecord | null> => {
  const p = c.paths.watchDown(c.group, kind);
  const nd = await c.zkClient.getOrNull(p);
  return nd === null ? null : decodeRecord(alertSchema, nd.data, p);
};
const hostOf = async (c: Cluster, node: string): Promise<MetaHost> => {
  const p = c.paths.metaHost(node);
  return decodeRecord(metaHostSchema, (await c.zkClient.get(p)).data, p);
};
const mha = (c: Cluster, ...args: string[]) => runMha([...args, '--config', c.writeConfig('cli', 'cli')]);

describe('issue 11: the workers repair what a failover or a person left behind', () => {
  let zk: ZkCluster;
  before(async () => {
    zk = await startZooKeeper();
  });
  after(async () => {
    await zk?.close();
  });

  it('hole 4: a replica down during the failover is re-pointed to the new master when it returns; alert raised, then cleared', () =>
    withCluster({ zk, semiSync: true }, async (c) => {
      const [old, , late] = c.nodes as [string, string, string];
      await c.startClients();
      await c.startServer('s1');
      await c.startServer('s2');
      const w = await c.startWriter();
      await w.waitForAcks(10);

      // The replica is down when the master dies: the failover cannot re-point it.
      await c.instance(late).kill();
      await waitFor(async () => (await c.zkClient.exists(c.paths.online(late))) === null, {
        timeoutMs: 10_000,
        what: `online/${late} gone`,
      });
      await c.instance(old).kill();
      const m = await c.waitForNewMaster({ notNode: old });
      assert.notEqual(m.node, late);
      const raised = await waitFor(() => alertOf(c, 'repoint-failed'), {
        timeoutMs: 10_000,
        what: 'repoint-failed alert',
      });
      assert.equal(raised.detail.master, m.node);
      assert.deepEqual(Object.keys(raised.detail.nodes as object), [late]);
      await w.waitForAcks(10);

      // It comes back still configured for the dead master: the workers re-point it.
      await c.instance(late).start({ readOnly: true });
      await waitFor(
        async () => {
          const r = await replicationOf(c.instance(late));
          return r?.master === m.node && r.running;
        },
        { timeoutMs: 20_000, what: `${late} replicating from ${m.node}` },
      );
      await waitFor(async () => (await alertOf(c, 'repoint-failed')) === null, {
        timeoutMs: 10_000,
        what: 'repoint-failed alert cleared',
      });
      await w.waitForAcks(10);
      await w.stop();
      await c.db.waitReplicated({ master: c.instance(m.node), replicas: [c.instance(late)] });
      const onLate = await c.rowIds(late);
      assert.ok(
        w.acks.every((a) => onLate.has(a.id)),
        'every acknowledged row, written before and after the failover, reached the returned replica',
      );
      await c.assertInvariants({ master: m.node, writer: w });
    }));

  it('hole 4: a replica hung (SIGSTOP) during the failover follows the new master once it resumes', () =>
    withCluster({ zk, semiSync: true }, async (c) => {
      const [old, , hung] = c.nodes as [string, string, string];
      await c.startClients();
      await c.startServer('s1');
      await c.startServer('s2');
      const w = await c.startWriter();
      await w.waitForAcks(10);

      await c.instance(hung).pause();
      await c.instance(old).kill();
      const m = await c.waitForNewMaster({ notNode: old, timeoutMs: 30_000 });
      assert.notEqual(m.node, hung);
      const raised = await waitFor(() => alertOf(c, 'repoint-failed'), {
        timeoutMs: 10_000,
        what: 'repoint-failed alert',
      });
      assert.deepEqual(Object.keys(raised.detail.nodes as object), [hung]);
      await w.waitForAcks(10);

      await c.instance(hung).resume();
      await waitFor(
        async () => {
          const r = await replicationOf(c.instance(hung));
          return r?.master === m.node && r.running;
        },
        { timeoutMs: 20_000, what: `${hung} replicating from ${m.node}` },
      );
      await waitFor(async () => (await alertOf(c, 'repoint-failed')) === null, {
        timeoutMs: 10_000,
        what: 'repoint-failed alert cleared',
      });
      await w.stop();
      await c.assertInvariants({ master: m.node, writer: w });
    }));

  it('hole 7: an invalid master/ after a failover is restored from history and route at a new epoch; anti-flap still holds', () =>
    withCluster({ zk, semiSync: true }, async (c) => {
      const [old] = c.nodes as [string];
      await c.startClients();
      await c.startServer('s1');
      const w = await c.startWriter();
      await w.waitForAcks(10);
      await c.instance(old).kill();
      const failedOver = await c.waitForNewMaster({ notNode: old });
      await w.waitForAcks(10);
      assert.ok(antiFlapBlock(await c.view(), Date.now()) !== null, 'blocked after the failover');

      await c.zkClient.set(c.paths.master(c.group), Buffer.from('{"v":1,"node":"nobody","epoch":-1}'), -1);
      const m = await waitFor(
        async () => {
          const x = await c.master().catch(() => null);
          return x !== null && x.epoch > failedOver.epoch ? x : null;
        },
        { timeoutMs: 10_000, intervalMs: 10, what: 'master/ restored' },
      );
      assert.deepEqual([m.node, m.epoch, m.reason], [failedOver.node, failedOver.epoch + 1, 'failover']);
      const r = await c.route();
      assert.deepEqual([r.epoch, r.write], [m.epoch, m.node]);
      const ack = await waitFor(() => alertOf(c, 'record-repaired'), {
        timeoutMs: 5000,
        what: 'record-repaired',
      });
      assert.match(String(ack.detail.found), /master\/g1 is invalid/);
      // The repair is no way around anti-flap: the failover's marker moved to the new epoch.
      assert.equal(antiFlapBlock(await c.view(), Date.now())?.epoch, m.epoch);
      await w.waitForAcks(10);
      await w.stop();
      await c.assertInvariants({ master: m.node, writer: w });
    }));

  it('hole 5: a node that failed over banAfterFailovers times is never promoted again until mha unban', () =>
    withCluster(
      {
        zk,
        semiSync: true,
        settings: { banAfterFailovers: 1, recoveryBlockSeconds: 0 },
        hosts: [{ priority: 1 }, { priority: 1 }, { priority: 2 }],
      },
      async (c) => {
        const [flappy, first, second] = c.nodes as [string, string, string];
        await c.startClients();
        await c.startServer('s1');
        await c.startServer('s2');

        await c.instance(flappy).kill();
        await c.waitForNewMaster({ node: first });
        const ban = await waitFor(async () => (await hostOf(c, flappy)).banned ?? null, {
          timeoutMs: 10_000,
          what: `meta_host/${flappy} banned`,
        });
        assert.deepEqual(ban.epochs, [2]);
        const alert = await waitFor(() => alertOf(c, 'node-banned'), {
          timeoutMs: 10_000,
          what: 'node-banned alert',
        });
        assert.ok(flappy in (alert.detail.nodes as object));

        // Visible in mha status, text and JSON.
        const text = await mha(c, 'status', c.group, '--no-mysql');
        assert.equal(text.code, 0, text.stderr);
        assert.match(
          text.stdout,
          new RegExp(`${flappy.replace(/\./g, '\\.')} is banned from candidacy .*mha unban`),
        );
        const json = await mha(c, 'status', c.group, '--no-mysql', '--json');
        const report = JSON.parse(json.stdout) as StatusReport;
        const st = report.groups[0]!.nodes.find((n) => n.node === flappy)!;
        assert.deepEqual([st.banned?.epochs, st.state.includes('banned')], [[2], true]);

        // It returns as a replica (preferred by priority over the third node) …
        await c.instance(flappy).start({ readOnly: true });
        const setha = await mha(c, 'setha', flappy);
        assert.equal(setha.code, 0, setha.stderr);
        // … and when the master dies again, the banned node is passed over.
        await c.instance(first).kill();
        const m = await c.waitForNewMaster({ notNode: first });
        assert.equal(m.node, second, 'the banned node is not promoted although its priority is better');
        const ev = (await c.history()).filter((h) => h.kind === 'failover').at(-1)!;
        assert.equal(ev.to, second);

        const lifted = await mha(c, 'unban', flappy);
        assert.equal(lifted.code, 0, lifted.stderr);
        assert.match(lifted.stdout, /unbanned: it may be promoted again/);
        assert.equal((await hostOf(c, flappy)).banned, undefined);
        const after = await alertOf(c, 'node-banned');
        assert.ok(after === null || !(flappy in (after.detail.nodes as object)), 'no longer listed');
        const again = await mha(c, 'unban', flappy);
        assert.match(again.stdout, /was not banned/);
      },
    ));

  it("hole 7: the issue's corrupt haproxy/ record is rewritten from master/ at a new epoch; writes through the write port work again", async () => {
    const w = await startE2E({ zk });
    const { c } = w;
    try {
      const writer = w.writer();
      await writer.waitForAcks(20);
      const master = await c.master();
      const routeP = c.paths.haproxy(c.group);
      const other = c.nodes.find((n) => n !== master.node)!;
      const corrupt = Buffer.from(
        JSON.stringify({ v: 1, epoch: 99, write: `${other}\n    server evil 10.6.6.6:3306`, read: [] }),
      );

      // Under maintenance nothing is rewritten; mha status says what is wrong and what fixes it.
      const whiteP = c.paths.white(c.group);
      await c.zkClient.create(
        whiteP,
        encodeRecord(whiteSchema, { v: 1, reason: 'test', by: 'test', at: Date.now() }, whiteP),
      );
      await c.zkClient.set(routeP, corrupt, -1);
      const held = await waitFor(() => alertOf(c, 'record-invalid'), {
        timeoutMs: 10_000,
        what: 'record-invalid alert under maintenance',
      });
      assert.match(String(held.detail.found), /haproxy\/g1 is invalid/);
      assert.match(String(held.detail.fix), /mha setmaster g1 .* --reroute/);
      const st = await runMha(['status', c.group, '--no-mysql', '--config', w.cliConfig]);
      assert.match(st.stdout, /route: {2}INVALID \(/);
      assert.match(st.stdout, /haproxy\/g1 is invalid .* not repaired automatically: maintenance is on/);
      assert.equal((await c.zkClient.get(routeP)).data?.toString(), corrupt.toString(), 'left alone');

      // Out of maintenance: the worker rewrites it at once.
      const t0 = performance.now();
      await c.zkClient.delete(whiteP);
      const repaired = await waitFor(
        async () => {
          const m = await c.master();
          const r = await c.route().catch(() => null);
          return m.epoch > master.epoch && r !== null && r.epoch === m.epoch && r.write === master.node
            ? m
            : null;
        },
        { timeoutMs: 10_000, intervalMs: 10, what: 'route rewritten at a new epoch' },
      );
      const repairMs = performance.now() - t0;
      assert.equal(repaired.node, master.node, 'the master stays');
      assert.ok(repaired.epoch > 1);
      const ack = await waitFor(() => alertOf(c, 'record-repaired'), {
        timeoutMs: 5000,
        what: 'record-repaired alert',
      });
      assert.match(String(ack.detail.found), /haproxy\/g1 is invalid \(write: must be host:port\)/);
      assert.equal(ack.detail.epoch, repaired.epoch);
      assert.equal(
        await alertOf(c, 'record-invalid'),
        null,
        'the held-back alert is resolved with the repair',
      );
      const ev = (await c.history()).at(-1)!;
      assert.deepEqual([ev.kind, ev.to, ev.epoch], ['record-repaired', master.node, repaired.epoch]);

      // The router applies it and writes through the write port go on, on the same master.
      await waitFor(
        async () => {
          const nd = await c.zkClient.getOrNull(c.paths.metaRouter('r1'));
          return (
            nd !== null && decodeRecord(metaRouterSchema, nd.data, 'r1').applied[c.group] === repaired.epoch
          );
        },
        { timeoutMs: 10_000, what: `router applied epoch ${repaired.epoch}` },
      );
      const n = writer.acks.length;
      await writer.waitForAcks(20);
      assert.ok(writer.acks.slice(n).every((a) => a.node === master.node));
      process.stdout.write(`# corrupt route repaired ${Math.round(repairMs)} ms after maintenance ended\n`);
      await writer.stop();
      await c.assertInvariants({ master: master.node, writer });
    } finally {
      await w.close();
    }
  });
});

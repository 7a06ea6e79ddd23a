import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Secret } from '../../core/config';
import { mariadb } from '../../core/mysql/mariadb';
import { encodeRecord, taskSchema } from '../../core/records';
import { alertOf } from '../../core/view';
import type { MysqlConnection } from '../../core/mysql/connection';
import { startCluster, type Cluster } from '../../devenv/cluster';
import { replicationOf, runMha, spawnMha, zkSnapshot } from '../../devenv/cli';
import { TEST_CREDENTIALS } from '../../devenv/mariadb';
import { waitFor } from '../../devenv/wait';

/**
 * Planned master changes on a real group (ZooKeeper + 3 MariaDB with semi-sync), with a writer
 * that follows haproxy/<group>.write as a router would: `mha switchover` loses no acknowledged
 * write and leaves the old master replicating from the new one; a forced catch-up timeout rolls
 * back; `mha setmaster` adopts a master promoted by hand.
 */
describe('mha switchover and setmaster', () => {
  let c: Cluster;
  let config: string;
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  before(async () => {
    c = await startCluster({ nodes: 3, semiSync: true, logLevel: 'warn' });
    config = c.writeConfig('cli', 'cli');
  });
  after(async () => {
    await c?.close();
  });

  const mha = (...args: string[]) => runMha([...args, '--config', config]);
  type HistoryJson = Array<{
    ok: boolean;
    event: {
      kind: string;
      from: string;
      to: string;
      epoch: number;
      steps: Array<{ name: string; ms: number; ok: boolean }>;
      detail: Record<string, unknown>;
    };
  }>;
  const lastEvent = async () => {
    const h = await mha('history', c.group, '--json');
    assert.equal(h.code, 0, h.stderr);
    const entries = JSON.parse(h.stdout) as HistoryJson;
    return entries[entries.length - 1]!.event;
  };

  it('switches over under a steady write load without losing an acknowledged write', async () => {
    const oldMaster = (await c.master()).node;
    const writer = await c.startWriter();
    try {
      await writer.waitForAcks(50);
      const r = await mha('switchover', c.group);
      assert.equal(r.code, 0, `stdout ${r.stdout} stderr ${r.stderr}`);
      const m = new RegExp(
        `switched over ${esc(oldMaster)} -> (\\S+) \\(epoch 2\\); write pause ([\\d.]+) ms`,
      ).exec(r.stdout);
      assert.ok(m, r.stdout);
      const newMaster = m[1]!;
      assert.notEqual(newMaster, oldMaster);
      // Writes go on, on the new master.
      await writer.waitForAcks(50);
      assert.ok(writer.acks.some((a) => a.node === newMaster));
      await c.assertInvariants({ master: newMaster, writer, noLostRows: true });
      // The old master replicates from the new one and is back in the read pool.
      assert.deepEqual(await replicationOf(c.instance(oldMaster)), { master: newMaster, running: true });
      const route = await c.route();
      assert.deepEqual([route.epoch, route.write], [2, newMaster]);
      assert.ok(route.read.includes(oldMaster), `read pool ${route.read.join(',')}`);
      const ev = await lastEvent();
      assert.deepEqual([ev.kind, ev.from, ev.to, ev.epoch], ['switchover', oldMaster, newMaster, 2]);
      // The two fences run at once; then catch up and promote.
      assert.deepEqual(ev.steps.map((s) => s.name).sort(), [
        'catch up',
        'fence master',
        'fence route',
        'promote',
      ]);
      assert.ok(ev.steps.every((s) => s.ok));
    } finally {
      await writer.stop();
    }
  });

  it('rolls back cleanly when the candidate cannot catch up within --max-pause-ms', async () => {
    const master = (await c.master()).node;
    const epoch = (await c.master()).epoch + 1;
    const candidate = c.nodes.find((n) => n !== master)!;
    // Bad usage first: nothing is touched.
    const before = await zkSnapshot(c.zkClient, c.root);
    const bad = await mha('switchover', c.group, '--max-pause-ms', 'soon');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--max-pause-ms must be an integer/);
    assert.deepEqual(await zkSnapshot(c.zkClient, c.root), before);

    // The candidate's SQL thread is stuck behind a global read lock: it receives but cannot apply.
    const lockConn: MysqlConnection = await c.instance(candidate).connect('admin');
    const writer = await c.startWriter();
    try {
      await lockConn.exec('FLUSH TABLES WITH READ LOCK');
      await writer.waitForAcks(20);
      const r = await mha(
        'switchover',
        c.group,
        '--to',
        candidate,
        '--max-pause-ms',
        '300',
        '--catch-up-timeout-ms',
        '0',
      );
      assert.equal(r.code, 1, `stdout ${r.stdout} stderr ${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(
          `catch up: ${esc(candidate)} did not execute .* within \\d+ ms .*rolled back: ${esc(master)} is writable again and routed \\(epoch ${epoch}\\)`,
        ),
      );
      await lockConn.exec('UNLOCK TABLES');
      // Writes resume on the same master; nothing acknowledged is lost; the candidate catches up.
      await writer.waitForAcks(20);
      await c.assertInvariants({ master, writer, noLostRows: true });
      assert.ok(writer.acks.every((a) => a.node === master));
      const route = await c.route();
      assert.deepEqual([route.epoch, route.write], [epoch, master]);
      const ev = await lastEvent();
      assert.deepEqual([ev.kind, ev.from, ev.to, ev.detail.rolledBack], ['switchover', master, master, true]);
      assert.ok(ev.steps.some((s) => s.name === 'catch up' && !s.ok));
      // Writes were cut, so the failure is an alert for humans: where, why, and what it went back to.
      const alert = alertOf(await c.view(), 'switchover-failed');
      assert.ok(alert, 'watch_down/<group>__switchover-failed');
      const d = alert.record.detail;
      assert.deepEqual(
        [d.step, d.outcome, d.rolledBackTo, d.oldMaster, d.candidate, d.epoch],
        ['catchup', 'rolled-back', master, master, candidate, epoch],
      );
      assert.match(String(d.reason), /catch up: .* did not execute/);
    } finally {
      await lockConn.exec('UNLOCK TABLES').catch(() => undefined);
      await lockConn.close();
      await writer.stop();
    }
  });

  it('a hang-up (SIGHUP, the terminal dropped) in the middle does not stop it: it finishes', async () => {
    const master = (await c.master()).node;
    const epoch = (await c.master()).epoch + 1;
    const log = path.join(c.dir, 'switchover-sighup.log');
    const child = spawnMha(['switchover', c.group, '--config', config], log, {
      MHA_FAULT_SWITCHOVER_PAUSE_BEFORE_STEP: 'catchup:1000',
    });
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('exit', (code, signal) => resolve([code, signal])),
    );
    // Writes are cut (task/ at catchup, paused there): hang up.
    await waitFor(async () => (await c.view()).task?.record.step === 'catchup', {
      timeoutMs: 10000,
      what: 'task/ at step catchup',
    });
    child.kill('SIGHUP');
    const [code, signal] = await exited;
    assert.deepEqual([code, signal], [0, null], fs.readFileSync(log, 'utf8'));
    const m = await c.master();
    assert.notEqual(m.node, master);
    assert.deepEqual([m.epoch, m.reason], [epoch, 'switchover']);
    await c.assertInvariants({ master: m.node });
  });

  it('setmaster adopts a master promoted by hand, and --reroute moves the route', async () => {
    const old = (await c.master()).node;
    const target = c.nodes.find((n) => n !== old)!;
    const third = c.nodes.find((n) => n !== old && n !== target)!;

    // Refused while the topology says otherwise; nothing changes.
    const before = await zkSnapshot(c.zkClient, c.root);
    const refused = await mha('setmaster', c.group, target);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      new RegExp(
        `check topology: ${esc(target)} is read-only; ${esc(target)} still replicates from ${esc(old)}`,
      ),
    );
    assert.deepEqual(await zkSnapshot(c.zkClient, c.root), before);

    // An operator moves the master by hand.
    await c.instance(old).query('SET GLOBAL read_only = ON');
    await c.db.waitReplicated({ master: c.instance(old), replicas: [c.instance(target)] });
    const conn = (n: string) => c.instance(n).connect('admin');
    const creds = {
      user: TEST_CREDENTIALS.repl.user,
      password: new Secret(TEST_CREDENTIALS.repl.password),
      semiSync: true,
    };
    const [host, port] = [target.split(':')[0]!, Number(target.split(':')[1])];
    for (const [n, fn] of [
      [target, (x: MysqlConnection) => mariadb.promote(x, { semiSync: true })],
      [
        old,
        (x: MysqlConnection) => mariadb.replicateFrom(x, { host, port, ...creds, gtidMode: 'current_pos' }),
      ],
      [
        third,
        (x: MysqlConnection) => mariadb.replicateFrom(x, { host, port, ...creds, gtidMode: 'slave_pos' }),
      ],
    ] as const) {
      const x = await conn(n);
      try {
        await fn(x);
      } finally {
        await x.close();
      }
    }
    await waitFor(
      async () =>
        (await replicationOf(c.instance(old)))?.running === true &&
        (await replicationOf(c.instance(third)))?.running === true,
      { timeoutMs: 10000, what: 'replicas of the hand-made master' },
    );

    const epoch = (await c.master()).epoch;
    const routeBefore = await c.route();
    const r1 = await mha('setmaster', c.group, target);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stdout, new RegExp(`master is ${esc(target)} at epoch ${epoch + 1}; route NOT updated`));
    assert.deepEqual([(await c.master()).node, (await c.master()).epoch], [target, epoch + 1]);
    assert.deepEqual(await c.route(), routeBefore, 'route untouched without --reroute');

    // A switchover whose CLI died left its task (writes cut, lock released): --reroute settles it.
    const taskPath = c.paths.task(c.group);
    await c.zkClient.create(
      taskPath,
      encodeRecord(
        taskSchema,
        {
          v: 1,
          id: 'switchover-1',
          kind: 'switchover',
          step: 'fence',
          oldMaster: old,
          candidate: third,
          startedAt: Date.now(),
          worker: 'cli:gone:1',
          detail: {},
        },
        taskPath,
      ),
    );
    const r2 = await mha('setmaster', c.group, target, '--reroute');
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /cleared the unfinished switchover task/);
    assert.equal(await c.zkClient.exists(taskPath), null);
    const route = await c.route();
    assert.deepEqual(
      [route.epoch, route.write, [...route.read].sort()],
      [epoch + 2, target, [old, third].sort()],
    );
    await c.assertInvariants({ master: target });
    const ev = await lastEvent();
    assert.deepEqual([ev.kind, ev.from, ev.to, ev.epoch], ['setmaster', target, target, epoch + 2]);
  });
});

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  alertSchema,
  decodeRecord,
  encodeRecord,
  haproxySchema,
  metaGroupSchema,
  metaHostSchema,
  rejoinSchema,
  slaveDownSchema,
  whiteSchema,
} from '../../core/records';
import { startCluster, type Cluster } from '../../devenv/cluster';
import { MHA_BIN, mysqlSnapshot, replicationOf, runMha, zkSnapshot } from '../../devenv/cli';
import { waitFor } from '../../devenv/wait';

/**
 * The maintenance and read commands on a running group (ZooKeeper + 3 MariaDB + heartbeat
 * clients, no server worker so nothing else moves the records): each command's effect on
 * ZooKeeper and MySQL, and refusals that change nothing.
 */
describe('mha maintenance and read commands', () => {
  let c: Cluster;
  let config: string;
  let M: string;
  let A: string;
  let B: string;
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  before(async () => {
    c = await startCluster({ nodes: 3, logLevel: 'warn' });
    config = c.writeConfig('cli', 'cli');
    [M, A, B] = c.nodes as [string, string, string];
    await c.startClients();
  });
  after(async () => {
    await c?.close();
  });

  const mha = (...args: string[]) => runMha([...args, '--config', config]);
  const ok = async (...args: string[]) => {
    const r = await mha(...args);
    assert.equal(r.code, 0, `mha ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const record = async <T>(p: string, schema: Parameters<typeof decodeRecord>[0]): Promise<T | null> => {
    const nd = await c.zkClient.getOrNull(p);
    return nd === null ? null : (decodeRecord(schema, nd.data, p) as T);
  };
  /** A refused command: exit code and message, ZooKeeper and MySQL unchanged. */
  const refused = async (args: string[], code: number, message: RegExp) => {
    const zkBefore = await zkSnapshotStable();
    const dbBefore = await Promise.all(c.db.instances.map(mysqlSnapshot));
    const r = await mha(...args);
    assert.equal(r.code, code, `mha ${args.join(' ')}: ${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.deepEqual(await zkSnapshotStable(), zkBefore);
    assert.deepEqual(await Promise.all(c.db.instances.map(mysqlSnapshot)), dbBefore);
  };
  /** The persistent part of the tree (online/ and agent/ records carry timestamps the clients refresh). */
  const zkSnapshotStable = async () => {
    const s = await zkSnapshot(c.zkClient, c.root);
    for (const k of [...s.keys()])
      if (k.startsWith(`${c.root}/online/`) || k.startsWith(`${c.root}/agent/`)) s.delete(k);
    return s;
  };
  type StatusJson = {
    groups: Array<{
      group: string;
      master: { node: string; epoch: number };
      white: { reason: string } | null;
      nodes: Array<{ node: string; role: string; state: string[]; inReadPool: boolean; readOnly: boolean }>;
      candidate: { node: string | null; reason: string };
      alerts: Array<{ kind: string }>;
    }>;
    servers: unknown[];
    routers: unknown[];
  };
  const status = async (): Promise<StatusJson['groups'][number]> =>
    (JSON.parse(await ok('status', c.group, '--json')) as StatusJson).groups[0]!;

  it('status shows roles, states, the master record and the next candidate', async () => {
    const s = await status();
    assert.deepEqual([s.group, s.master.node, s.master.epoch], [c.group, M, 1]);
    assert.deepEqual(
      s.nodes.map((n) => [n.node, n.role, n.state.join(','), n.readOnly, n.inReadPool]),
      [
        [M, 'master', 'online', false, false],
        [A, 'replica', 'online', true, true],
        [B, 'replica', 'online', true, true],
      ],
    );
    assert.ok([A, B].includes(s.candidate.node!), JSON.stringify(s.candidate));
    assert.match(s.candidate.reason, /received the most/);
    const text = await ok('status');
    assert.match(text, new RegExp(`master: ${esc(M)} {2}epoch 1`));
    assert.match(text, /would promote: /);
    assert.match(text, /servers: NONE/);
    await refused(['status', 'nosuch'], 1, /group 'nosuch' does not exist/);
    await refused(['status', 'Bad!'], 2, /invalid group name/);
  });

  it('setwhite / unwhite turn maintenance on and off', async () => {
    assert.match(await ok('setwhite', c.group, '--reason', 'disk swap'), /maintenance on \(disk swap\)/);
    const w = await record<{ reason: string; by: string }>(c.paths.white(c.group), whiteSchema);
    assert.equal(w?.reason, 'disk swap');
    assert.match(w?.by ?? '', /.+@.+/);
    assert.equal((await status()).white?.reason, 'disk swap');
    assert.match(await ok('unwhite', c.group), /maintenance off/);
    assert.equal(await c.zkClient.exists(c.paths.white(c.group)), null);
    assert.match(await ok('unwhite', c.group), /was not on/);
    await refused(['setwhite', 'nosuch'], 1, /group 'nosuch' does not exist/);
    await refused(['setwhite', c.group, '--reason', 'x\ny'], 2, /--reason must be printable/);
  });

  it('drain / undrain move a replica out of and back into the read pool, replication untouched', async () => {
    const epoch = (await c.route()).epoch;
    assert.match(await ok('drain', A), /drained from the read pool/);
    const route = await c.route();
    assert.deepEqual([route.epoch, route.read.includes(A)], [epoch, false]);
    const sd = await record<{ drained?: boolean }>(c.paths.slaveDown(c.group, A), slaveDownSchema);
    assert.equal(sd?.drained, true);
    assert.deepEqual(await replicationOf(c.instance(A)), { master: M, running: true });
    assert.deepEqual((await status()).nodes.find((n) => n.node === A)?.state, ['online', 'drained']);
    assert.match(await ok('drain', A), /already drained/);
    await refused(['drain', M], 1, /only replicas can be drained/);
    await refused(['drain', '127.0.0.1:1'], 1, /not registered/);
    await refused(['drain', 'nonode'], 2, /invalid node 'nonode'/);

    assert.match(await ok('undrain', A), /in the read pool/);
    assert.equal(await c.zkClient.exists(c.paths.slaveDown(c.group, A)), null);
    assert.ok((await c.route()).read.includes(A));
    assert.deepEqual(await replicationOf(c.instance(A)), { master: M, running: true });
  });

  it('removehost / addhost unregister and register a replica', async () => {
    await refused(['removehost', c.group, M], 1, /is the master/);
    await ok('removehost', c.group, B);
    const meta = await record<{ members: string[] }>(c.paths.metaGroup(c.group), metaGroupSchema);
    assert.deepEqual(meta?.members, [M, A]);
    assert.equal(await c.zkClient.exists(c.paths.metaHost(B)), null);
    assert.ok(!(await c.route()).read.includes(B));
    await refused(['addhost', c.group, B, '--priority', '7'], 2, /--priority must be 0, 1 or 2/);

    assert.match(await ok('addhost', c.group, B, '--priority', '2', '--dc', 'dc2'), /added to/);
    const h = await record<{ priority: number; dc?: string; group: string }>(
      c.paths.metaHost(B),
      metaHostSchema,
    );
    assert.deepEqual([h?.group, h?.priority, h?.dc], [c.group, 2, 'dc2']);
    assert.deepEqual(
      (await record<{ members: string[] }>(c.paths.metaGroup(c.group), metaGroupSchema))?.members,
      [M, A, B],
    );
    assert.ok((await c.route()).read.includes(B));
    assert.deepEqual(await replicationOf(c.instance(B)), { master: M, running: true });
    await refused(['addhost', c.group, B], 1, /already a member/);
  });

  it('setha re-points a recovered node, clears rejoin/ and slave_down/, returns it to the read pool', async () => {
    // B as an old master would be: replication gone, writable, out of the pool, rejoin pending.
    await c.instance(B).query('STOP SLAVE');
    await c.instance(B).query('RESET SLAVE ALL');
    await c.instance(B).query('SET GLOBAL read_only = OFF');
    const [pos] = await c.instance(M).query('SELECT @@gtid_binlog_pos AS p');
    const route = await c.zkClient.get(c.paths.haproxy(c.group));
    const r = decodeRecord(haproxySchema, route.data, c.paths.haproxy(c.group));
    const rejoinPath = c.paths.rejoin(B);
    const sdPath = c.paths.slaveDown(c.group, B);
    await c.zkClient.multi([
      {
        op: 'create',
        path: rejoinPath,
        data: encodeRecord(
          rejoinSchema,
          {
            v: 1,
            group: c.group,
            newMaster: M,
            epoch: 1,
            promotedAt: Date.now(),
            gtidAtPromotion: String(pos?.p),
          },
          rejoinPath,
        ),
      },
      {
        op: 'create',
        path: sdPath,
        data: encodeRecord(slaveDownSchema, { v: 1, since: Date.now(), reason: 'old master' }, sdPath),
      },
      {
        op: 'set',
        path: c.paths.haproxy(c.group),
        data: encodeRecord(
          haproxySchema,
          { ...r, read: r.read.filter((n) => n !== B) },
          c.paths.haproxy(c.group),
        ),
        version: route.stat.version,
      },
    ]);
    assert.deepEqual((await status()).nodes.find((n) => n.node === B)?.state.slice(1), [
      'out of read pool',
      'rejoin pending',
    ]);

    assert.match(await ok('setha', B), new RegExp(`replicates from ${esc(M)} and is back in the read pool`));
    assert.equal(await c.zkClient.exists(rejoinPath), null);
    assert.equal(await c.zkClient.exists(sdPath), null);
    assert.ok((await c.route()).read.includes(B));
    assert.deepEqual(await replicationOf(c.instance(B)), { master: M, running: true });
    assert.equal((await mysqlSnapshot(c.instance(B))).readOnly, '1');
    // Its heartbeat comes back once rejoin/ is gone.
    await waitFor(() => c.zkClient.exists(c.paths.online(B)), { timeoutMs: 10000, what: `online/${B}` });

    // A node holding a transaction the master lacks is refused, and nothing changes.
    await c.instance(B).query('STOP SLAVE');
    await c.instance(B).query('CREATE TABLE app.errant (id INT PRIMARY KEY)');
    const [bpos] = await c.instance(B).query('SELECT @@gtid_binlog_pos AS p');
    await refused(
      ['setha', B],
      1,
      new RegExp(
        `check transactions: ${esc(B)} holds transactions the master ${esc(M)} lacks: .*${esc(String(bpos?.p))}`,
      ),
    );
  });

  it('alerts: list, follow (JSON lines and --exec, no shell), clear', async () => {
    const put = (kind: string | undefined, detail: Record<string, unknown>) => {
      const p = c.paths.watchDown(c.group, kind);
      return c.zkClient.create(
        p,
        encodeRecord(
          alertSchema,
          { v: 1, kind: kind ?? 'heartbeat-lost-mysql-alive', at: Date.now(), detail },
          p,
        ),
        'persistent',
      );
    };
    assert.match(await ok('alerts'), /no alerts/);
    await put(undefined, { node: M }); // present before the followers start: not reported by them

    const out = path.join(c.dir, 'hook.out');
    const hook = path.join(c.dir, 'hook.js');
    fs.writeFileSync(
      hook,
      "require('fs').appendFileSync(process.argv[2], JSON.stringify([process.env.MHA_ALERT_GROUP, process.env.MHA_ALERT_KIND, process.env.MHA_ALERT_JSON]) + '\\n');\n",
    );
    const follow = (
      args: string[],
    ): {
      child: ChildProcess;
      stdout: () => string;
      stderr: () => string;
      exited: Promise<number | null>;
    } => {
      const child = spawn(process.execPath, [MHA_BIN, 'alerts', '--follow', ...args, '--config', config], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return { child, stdout: () => stdout, stderr: () => stderr, exited };
    };
    const lines = follow([]);
    const exec = follow(['--exec', `${process.execPath} ${hook} ${out}`]);
    try {
      for (const f of [lines, exec]) {
        await waitFor(() => f.stderr().includes('following alerts'), {
          timeoutMs: 10000,
          what: 'follower ready',
        });
      }
      await put('router', { why: 'reload failed' });
      const line = await waitFor(
        () =>
          lines
            .stdout()
            .split('\n')
            .find((l) => l.startsWith('{')) ?? null,
        { timeoutMs: 10000, what: 'a JSON line' },
      );
      const a = JSON.parse(line) as { group: string; kind: string; detail: { why: string } };
      assert.deepEqual([a.group, a.kind, a.detail.why], [c.group, 'router', 'reload failed']);
      const hookLine = await waitFor(
        () => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8').trim() : null),
        { timeoutMs: 10000, what: 'the --exec hook ran' },
      );
      const [g, k, json] = JSON.parse(hookLine) as [string, string, string];
      assert.deepEqual(
        [g, k, (JSON.parse(json) as { detail: { why: string } }).detail.why],
        [c.group, 'router', 'reload failed'],
      );
      assert.equal(hookLine.split('\n').length, 1, 'only the new alert');
      assert.equal(lines.stdout().trim().split('\n').length, 1, 'only the new alert');
    } finally {
      lines.child.kill('SIGTERM');
      exec.child.kill('SIGTERM');
    }
    assert.equal(await lines.exited, 0);
    assert.equal(await exec.exited, 0);

    const listed = JSON.parse(await ok('alerts', '--json')) as Array<{ group: string; kind: string }>;
    assert.deepEqual(listed.map((x) => x.kind).sort(), ['heartbeat-lost-mysql-alive', 'router']);
    assert.deepEqual((await status()).alerts.map((x) => x.kind).sort(), [
      'heartbeat-lost-mysql-alive',
      'router',
    ]);
    assert.match(await ok('alerts', '--clear', c.group), /cleared g1, g1__router/);
    assert.deepEqual(await c.zkClient.children(c.paths.dir('watch_down')), []);
    await refused(['alerts', '--exec', '/bin/true'], 2, /--exec needs --follow/);
  });

  it('history lists events in order and reports an invalid one without failing', async () => {
    assert.match(await ok('history', c.group), /no history for group 'g1'/);
    const prefix = c.paths.historyPrefix(c.group);
    await c.zkClient.create(prefix, Buffer.from('{"v":1,"kind":"failover"}'), 'persistent_sequential');
    const text = await ok('history', c.group);
    assert.match(text, /INVALID/);
    await refused(['history', 'nosuch'], 1, /group 'nosuch' does not exist/);
  });

  it('--json: every state-changing command prints its documented shape; a failure is JSON too', async () => {
    const json = async (...args: string[]): Promise<Record<string, unknown>> =>
      JSON.parse(await ok(...args, '--json')) as Record<string, unknown>;
    const w = await json('setwhite', c.group, '--reason', 'json');
    assert.deepEqual(
      [w.group, w.maintenance, w.reason, typeof w.by, typeof w.at],
      [c.group, true, 'json', 'string', 'number'],
    );
    assert.deepEqual(await json('unwhite', c.group), { group: c.group, maintenance: false, changed: true });
    assert.deepEqual(await json('unwhite', c.group), { group: c.group, maintenance: false, changed: false });
    assert.deepEqual(await json('drain', A), { group: c.group, node: A, changed: true });
    assert.deepEqual(await json('drain', A), { group: c.group, node: A, changed: false });
    assert.deepEqual(await json('undrain', A), { group: c.group, node: A, changed: true, inReadPool: true });
    // B holds an errant transaction and no replication since the setha test: out it goes.
    assert.deepEqual(await json('removehost', c.group, B), { group: c.group, node: B, removed: true });
    assert.deepEqual(await json('removehost', c.group, A), { group: c.group, node: A, removed: true });
    assert.deepEqual(await json('addhost', c.group, A), {
      group: c.group,
      node: A,
      master: M,
      inReadPool: true,
    });
    assert.deepEqual(await json('setha', A), {
      group: c.group,
      node: A,
      master: M,
      clearedRejoin: false,
      clearedSlaveDown: false,
    });
    const epoch = (await c.route()).epoch;
    assert.deepEqual(await json('setmaster', c.group, M, '--reroute'), {
      group: c.group,
      node: M,
      epoch: epoch + 1,
      rerouted: true,
      previous: M,
      clearedTask: null,
    });
    assert.equal((await c.route()).epoch, epoch + 1);

    // Failures: exit code as without --json, the same line on stderr, and one JSON object on stdout.
    const failed = async (args: string[], exitCode: number, code: string, message: RegExp) => {
      const r = await mha(...args, '--json');
      assert.equal(r.code, exitCode, `mha ${args.join(' ')}: ${r.stdout} ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      const e = (JSON.parse(r.stdout) as { error: { code: string; message: string; exitCode: number } })
        .error;
      assert.deepEqual([e.code, e.exitCode], [code, exitCode]);
      assert.match(e.message, message);
      assert.match(r.stderr, message);
    };
    await failed(['drain', M], 1, 'CONFLICT', /only replicas can be drained/);
    await failed(['drain', 'nonode'], 2, 'BAD_NAME', /invalid node 'nonode'/);
    await failed(['setwhite', c.group, '--bogus'], 2, 'BAD_USAGE', /unknown option '--bogus'/);
  });
});

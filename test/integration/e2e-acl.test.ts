import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { aclFor, PERM } from '../../core/zk/acl';
import { isZkmhaError } from '../../core/errors';
import { Zk } from '../../core/zk/client';
import { runMha, zkSnapshot } from '../../devenv/cli';
import { startE2E, type E2EWorld } from '../../devenv/e2e';
import { TEST_CREDENTIALS } from '../../devenv/mariadb';
import { lostAcks, writeOutage } from '../../devenv/traffic';
import { waitFor } from '../../devenv/wait';
import { ZK_TEST_CREDENTIALS } from '../../devenv/zk-acl';
import { startZooKeeper, testLogger, type ZkCluster } from '../../devenv/zookeeper';

/**
 * Issue 14, security, end to end: the e2e world (ZooKeeper; three MariaDB with semi-sync; three
 * `mha client`, two `mha server`, one `mha router` with its HAProxy, all real processes) with
 * per-role ZooKeeper ACLs — each process holds only its role's credential. When the master's
 * mysqld is killed, writes through HAProxy resume on the new master with no acknowledged row
 * lost; afterwards every znode (whoever created it during the run) carries the ACL its path
 * should have; and no password of the world appears in any daemon log, file the world wrote,
 * znode value, `mha status` output or running process's argv.
 */
const PASSWORDS = [
  ...Object.values(TEST_CREDENTIALS).map((c) => c.password),
  ...Object.values(ZK_TEST_CREDENTIALS).map((c) => c.password),
];

/** Files under `dir` (recursively), password files excepted: they are where secrets belong. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile() && !e.name.endsWith('.pass')) out.push(p);
  }
  return out;
}

/** The argv of every process descended from this one or naming one of `dirs` (its world). */
function worldProcesses(dirs: readonly string[]): Array<{ pid: number; argv: string }> {
  const procs: Array<{ pid: number; ppid: number; argv: string }> = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const argv = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
      procs.push({ pid: Number(name), ppid, argv });
    } catch {
      // gone meanwhile
    }
  }
  const mine = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs)
      if (!mine.has(p.pid) && mine.has(p.ppid)) {
        mine.add(p.pid);
        grew = true;
      }
  }
  return procs.filter(
    (p) => p.pid !== process.pid && (mine.has(p.pid) || dirs.some((d) => p.argv.includes(d))),
  );
}

describe('end to end with per-role ZooKeeper ACLs', () => {
  let zk: ZkCluster;
  let w: E2EWorld;
  before(async () => {
    zk = await startZooKeeper();
    w = await startE2E({ zk, acl: true, sessionTimeoutMs: 2000, logLevel: 'debug' });
  });
  after(async () => {
    await w?.close();
    await zk?.close();
  });

  it('1. the master mysqld is killed: the group fails over through HAProxy, each process on its own credential', async () => {
    const { c } = w;
    const writer = w.writer();
    await writer.waitForAcks(50);
    const old = (await c.master()).node;
    await c.instance(old).kill();
    const m = await c.waitForNewMaster({ notNode: old, timeoutMs: 20_000 });
    await waitFor(() => writer.acks.find((a) => a.node === m.node), {
      timeoutMs: 15_000,
      what: `a write acknowledged by ${m.node} through the write port`,
    });
    await writer.waitForAcks(50);
    await writer.stop();
    const outage = writeOutage(writer.acks, writer.errors, old, m.node);
    assert.ok(typeof outage !== 'string', `writes resume on the new master only: ${String(outage)}`);
    await c.assertInvariants({ master: m.node, noLostRows: false });
    assert.deepEqual(
      lostAcks(writer.acks, await c.rowIds(m.node)),
      [],
      'every acknowledged row is on the new master',
    );
    const failover = (await c.history()).find((h) => h.kind === 'failover');
    assert.equal(failover?.to, m.node);
    process.stderr.write(
      `e2e with ACLs: ${old} -> ${m.node}, write outage ${outage.ms.toFixed(0)} ms (${outage.errors} failed writes)\n`,
    );
  });

  it('2. every znode, whoever created it during the run, carries the ACL of its path; nothing is open', async () => {
    const { c } = w;
    const roles = await c.zkClient.aclRoles();
    assert.ok(roles !== null && roles.router.length === 1 && roles.client.length === 1, 'roles recorded');
    const snapshot = await zkSnapshot(c.zkClient, c.root);
    let owned = 0;
    for (const p of snapshot.keys()) {
      const { acl, stat } = await c.zkClient.getAcl(p);
      assert.ok(
        acl.every((e) => e.scheme === 'digest'),
        `${p}: no open entry`,
      );
      const want = aclFor(c.paths, p, roles, null);
      const extra = acl.filter((e) => !want.some((x) => x.id === e.id));
      // The nodes a client or router publishes for itself also grant its own process.
      if (extra.length > 0) {
        assert.ok(stat.ephemeralOwner !== '0', `${p}: an extra identity only on an ephemeral node`);
        assert.deepEqual(
          extra.map((e) => [e.id.startsWith('own-'), e.perms]),
          [[true, PERM.ALL]],
          `${p}: the owner's identity`,
        );
        owned++;
      }
      assert.deepEqual(
        acl.filter((e) => want.some((x) => x.id === e.id)).sort((a, b) => a.id.localeCompare(b.id)),
        [...want].sort((a, b) => a.id.localeCompare(b.id)),
        `${p}: the ACL of its path`,
      );
    }
    // online/ and agent/ of the live clients, and the router's meta_router/.
    assert.ok(owned >= 5, `${owned} nodes owned by their process`);
    const anon = await Zk.connect({
      hosts: zk.connectString,
      sessionTimeoutMs: 4000,
      logger: testLogger('anon'),
    });
    try {
      await assert.rejects(anon.get(c.paths.master(c.group)), (e) => isZkmhaError(e, 'ZK_NO_AUTH'));
      await assert.rejects(anon.children(c.paths.dir('online')), (e) => isZkmhaError(e, 'ZK_NO_AUTH'));
    } finally {
      await anon.close();
    }
  });

  it('3. no password in any log, file the world wrote, znode value, status output or argv', async () => {
    const { c } = w;
    const status = await runMha(['status', '--json', '--config', w.cliConfig]);
    assert.equal(status.code, 0, status.stderr);
    const corpus: Array<[string, string]> = [['mha status --json', status.stdout + status.stderr]];
    const files = [...filesUnder(c.dir), ...filesUnder(w.hp.dir)];
    for (const f of files) corpus.push([f, fs.readFileSync(f, 'utf8')]);
    const logs = files.filter((f) => f.endsWith('.log'));
    const snapshot = await zkSnapshot(c.zkClient, c.root);
    for (const [p, data] of snapshot) corpus.push([`znode ${p}`, data]);
    const procs = worldProcesses([c.dir, w.hp.dir]);
    for (const p of procs) corpus.push([`argv of pid ${p.pid}`, p.argv]);

    const found = corpus.flatMap(([where, text]) =>
      PASSWORDS.filter((pw) => text.includes(pw)).map((pw) => `${where} contains ${pw.slice(0, 3)}…`),
    );
    assert.deepEqual(found, []);
    // And no process was refused by an ACL on its way (a role that lacks a right it needs).
    const refusals = logs.flatMap((f) =>
      fs
        .readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l.includes('NO_AUTH') || l.includes("not allowed by the node's ACL"))
        .map((l) => `${path.basename(f)}: ${l.slice(0, 300)}`),
    );
    assert.deepEqual(refusals, []);
    // The scan saw the whole world: every daemon's log, with content, and every process.
    const logBytes = logs.reduce((n, f) => n + fs.statSync(f).size, 0);
    assert.ok(logs.length >= 6, `daemon logs scanned: ${logs.join(', ')}`);
    assert.ok(snapshot.size >= 20, `${snapshot.size} znodes scanned`);
    const roles = ['client', 'server', 'router'].map(
      (r) => procs.filter((p) => p.argv.includes(` ${r} --config`)).length,
    );
    assert.deepEqual(
      roles,
      [3, 2, 1],
      'the argv of every client (its mysqld killed or not), server and router',
    );
    assert.ok(
      procs.some((p) => /\bhaproxy\b/.test(p.argv) && !p.argv.includes('mha.js')),
      'and of HAProxy',
    );
    process.stderr.write(
      `secret scan: ${logs.length} logs (${logBytes} bytes), ${files.length} files, ${snapshot.size} znodes, ${procs.length} processes: 0 passwords\n`,
    );
  });
});

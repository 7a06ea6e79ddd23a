import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readPasswordFile } from '../../core/config';
import { isZkmhaError } from '../../core/errors';
import { digestId, PERM } from '../../core/zk/acl';
import { Zk } from '../../core/zk/client';
import { ZkPaths } from '../../core/zk/paths';
import { runMha } from '../../devenv/cli';
import { zkAuthLines, zkPasswordFile, ZK_TEST_CREDENTIALS, type ZkRole } from '../../devenv/zk-acl';
import { startZooKeeper, testLogger, type ZkCluster } from '../../devenv/zookeeper';

/**
 * Per-role ZooKeeper ACLs against a real ZooKeeper: after `mha init --acl`, each role's
 * credential can do its own job and nothing more, whoever creates a node later (the ACL follows
 * the path), and a session without credentials reads nothing.
 */
const ROOT = '/acl-test';
const paths = new ZkPaths(ROOT);
const NODE_A = '127.0.0.1:3301';
const NODE_B = '127.0.0.1:3302';

const refused = (e: unknown): boolean => isZkmhaError(e, 'ZK_NO_AUTH');

describe('per-role ZooKeeper ACLs (mha init --acl)', () => {
  let zks: ZkCluster;
  let dir: string;
  let adminConfig: string;
  const sessions: Zk[] = [];

  const connect = async (role: ZkRole | null): Promise<Zk> => {
    const zk = await Zk.connect({
      hosts: zks.connectString,
      sessionTimeoutMs: 4000,
      logger: testLogger(role ?? 'anonymous'),
      ...(role !== null
        ? {
            auth: {
              user: ZK_TEST_CREDENTIALS[role].user,
              password: readPasswordFile(zkPasswordFile(dir, role), role),
            },
            aclRoot: ROOT,
          }
        : {}),
    });
    sessions.push(zk);
    return zk;
  };

  let anon: Zk;
  let admin: Zk;
  let server: Zk;
  let router: Zk;
  let clientA: Zk;
  let clientB: Zk;

  before(async () => {
    zks = await startZooKeeper();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-acl-'));
    adminConfig = path.join(dir, 'admin.yaml');
    fs.writeFileSync(
      adminConfig,
      [
        'zookeeper:',
        `  hosts: ${JSON.stringify(zks.connectString)}`,
        `  root: ${ROOT}`,
        ...zkAuthLines(dir, 'admin'),
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    // A layout made before ACLs were turned on: open nodes that init --acl must close.
    anon = await connect(null);
    await anon.mkdirp(paths.dir('meta_group'));
    await anon.create(paths.metaGroup('before'), Buffer.from('{"made":"before --acl"}'));

    const init = await runMha(['init', '--acl', '--config', adminConfig]);
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /ACLs set on \d+ nodes/);

    admin = await connect('admin');
    server = await connect('server');
    router = await connect('router');
    clientA = await connect('client');
    clientB = await connect('client');
    // What the admin CLI and a server write once ACLs are on.
    await admin.create(paths.master('g1'), Buffer.from('{"node":"a"}'));
    await server.create(paths.haproxy('g1'), Buffer.from('{"write":"a"}'));
  });

  after(async () => {
    await Promise.all(sessions.map((s) => s.close()));
    await zks?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('records every role on the root and no open entry; running it again changes nothing', async () => {
    const expected = (role: ZkRole): string =>
      digestId(ZK_TEST_CREDENTIALS[role].user, readPasswordFile(zkPasswordFile(dir, role), role));
    const acl = (await admin.getAcl(ROOT)).acl;
    const perms = new Map(acl.map((e) => [`${e.scheme}:${e.id}`, e.perms]));
    assert.deepEqual(
      perms,
      new Map([
        [`digest:${expected('admin')}`, PERM.ALL],
        [`digest:${expected('server')}`, PERM.ALL],
        [`digest:${expected('router')}`, PERM.READ],
        [`digest:${expected('client')}`, PERM.READ],
      ]),
    );
    const again = await runMha(['init', '--acl', '--config', adminConfig]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /layout already present/);
    assert.deepEqual((await admin.getAcl(ROOT)).acl, acl);
    // No secret in ZooKeeper: a password appears in no ACL and not in the roles' record.
    const all = JSON.stringify(acl) + String((await router.get(ROOT)).data);
    for (const c of Object.values(ZK_TEST_CREDENTIALS)) assert.ok(!all.includes(c.password));
  });

  it('an unauthenticated session reads nothing (data or children) and writes nothing', async () => {
    for (const p of [ROOT, paths.master('g1'), paths.haproxy('g1'), paths.metaGroup('before')])
      await assert.rejects(anon.get(p), refused, `get ${p}`);
    for (const p of [ROOT, paths.dir('online'), paths.dir('master')])
      await assert.rejects(anon.children(p), refused, `children ${p}`);
    await assert.rejects(anon.create(paths.white('g1'), Buffer.from('{}')), refused);
    await assert.rejects(anon.set(paths.metaGroup('before'), Buffer.from('{}')), refused);
  });

  it('a router reads everything but cannot write master/ or haproxy/', async () => {
    assert.equal((await router.get(paths.master('g1'))).data?.toString(), '{"node":"a"}');
    assert.equal((await router.get(paths.haproxy('g1'))).data?.toString(), '{"write":"a"}');
    assert.equal((await router.get(paths.metaGroup('before'))).data?.toString(), '{"made":"before --acl"}');
    await assert.rejects(router.set(paths.master('g1'), Buffer.from('{"node":"b"}')), refused);
    await assert.rejects(router.set(paths.haproxy('g1'), Buffer.from('{"write":"b"}')), refused);
    await assert.rejects(router.create(paths.haproxy('g2'), Buffer.from('{}')), refused);
    await assert.rejects(router.delete(paths.haproxy('g1')), refused);
    await assert.rejects(router.create(paths.task('g1'), Buffer.from('{}')), refused);
    await assert.rejects(
      router.multi([{ op: 'set', path: paths.haproxy('g1'), data: Buffer.from('{}'), version: -1 }]),
      refused,
    );
    // Its own job: its status node and its alert.
    await router.putEphemeral(paths.metaRouter('r1'), Buffer.from('{"applied":{}}'));
    await router.create(paths.watchDown('g1', 'router'), Buffer.from('{"kind":"router"}'));
    await router.set(paths.watchDown('g1', 'router'), Buffer.from('{"kind":"router","again":1}'));
    assert.equal((await server.get(paths.metaRouter('r1'))).data?.toString(), '{"applied":{}}');
  });

  it("a client publishes its own online/ and agent/ but cannot write another node's", async () => {
    await clientA.putEphemeral(paths.online(NODE_A), Buffer.from('{"n":"A"}'));
    await clientA.putEphemeral(paths.agent(NODE_A), Buffer.from('{"n":"A"}'));
    await clientB.putEphemeral(paths.online(NODE_B), Buffer.from('{"n":"B"}'));
    // Same role credential, another process: A's nodes are A's.
    await assert.rejects(clientB.set(paths.online(NODE_A), Buffer.from('{"n":"forged"}')), refused);
    await assert.rejects(clientB.set(paths.agent(NODE_A), Buffer.from('{"n":"forged"}')), refused);
    await clientA.set(paths.online(NODE_A), Buffer.from('{"n":"A2"}'));
    assert.equal((await server.get(paths.online(NODE_A))).data?.toString(), '{"n":"A2"}');
    assert.equal((await router.get(paths.agent(NODE_A))).data?.toString(), '{"n":"A"}');
    // Nothing of the rest of the layout.
    await assert.rejects(clientA.set(paths.master('g1'), Buffer.from('{}')), refused);
    await assert.rejects(clientA.set(paths.haproxy('g1'), Buffer.from('{}')), refused);
    await assert.rejects(clientA.create(paths.rejoin(NODE_B), Buffer.from('{}')), refused);
    await assert.rejects(clientA.create(paths.metaHost(NODE_A), Buffer.from('{}')), refused);
    await assert.rejects(clientA.create(paths.watchDown('g1', 'failover'), Buffer.from('{}')), refused);
    // Servers and the admin hold every right, on nodes whoever created them.
    await server.set(paths.online(NODE_B), Buffer.from('{"n":"B by server"}'));
    await admin.set(paths.haproxy('g1'), Buffer.from('{"write":"b"}'));
    await server.set(paths.master('g1'), Buffer.from('{"node":"b"}'));
    await server.delete(paths.watchDown('g1', 'router'));
  });

  it('a client that lost its session republishes over its old node (a restart), with ACLs on', async () => {
    await clientA.putEphemeral(paths.online(NODE_A), Buffer.from('{"n":"A"}'));
    const restarted = await connect('client');
    await restarted.putEphemeral(paths.online(NODE_A), Buffer.from('{"n":"A restarted"}'), {
      replaceAnySession: true,
    });
    await restarted.set(paths.online(NODE_A), Buffer.from('{"n":"A restarted 2"}'));
    await assert.rejects(clientA.set(paths.online(NODE_A), Buffer.from('{"n":"old"}')), refused);
  });
});

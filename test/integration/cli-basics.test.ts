import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Zk } from '../../core/zk/client';
import { TOP_LEVEL } from '../../core/zk/paths';
import { runMha, zkSnapshot } from '../../devenv/cli';
import { startZooKeeper, testLogger, type ZkCluster } from '../../devenv/zookeeper';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../../package.json') as { version: string };

/** The executable's surface: help, version, exit codes of design §7, and `mha init`. */
describe('mha: help, version, exit codes, init', () => {
  let zkc: ZkCluster;
  let zk: Zk;
  let dir: string;
  let config: string;

  before(async () => {
    zkc = await startZooKeeper();
    zk = await Zk.connect({ hosts: zkc.connectString, sessionTimeoutMs: 4000, logger: testLogger() });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-cli-basics-'));
    config = path.join(dir, 'mha.yaml');
    fs.writeFileSync(config, `zookeeper:\n  hosts: ${zkc.connectString}\n  root: /basics\n`);
  });

  after(async () => {
    await zk?.close();
    await zkc?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('prints its version and a help that lists every role and admin command', async () => {
    const v = await runMha(['--version']);
    assert.equal(v.code, 0);
    assert.equal(v.stdout.trim(), version);
    const h = await runMha(['--help']);
    assert.equal(h.code, 0);
    for (const cmd of [
      'server',
      'client',
      'router',
      'init',
      'add',
      'switchover',
      'status',
      'alerts',
      'history',
    ]) {
      assert.match(h.stdout, new RegExp(`^\\s+${cmd}\\b`, 'm'), `help lists '${cmd}'`);
    }
  });

  const usage: Array<[string, string[], RegExp]> = [
    ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['an unknown option', ['init', '--colour'], /unknown option '--colour'/],
    [
      'a config file that does not exist',
      ['init', '--config', '/nonexistent/mha.yaml'],
      /cannot read '\/nonexistent\/mha\.yaml'/,
    ],
  ];
  for (const [name, args, message] of usage) {
    it(`exits 2 with one line on ${name}`, async () => {
      const r = await runMha(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.equal(r.stdout, '');
    });
  }

  it('creates the root layout, and a second run changes nothing', async () => {
    const first = await runMha(['init', '--config', config]);
    assert.equal(first.code, 0, first.stderr);
    for (const top of TOP_LEVEL) assert.notEqual(await zk.exists(`/basics/${top}`), null, `/basics/${top}`);
    const before = await zkSnapshot(zk, '/basics');
    const second = await runMha(['init', '--config', config]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /already present/);
    assert.deepEqual(await zkSnapshot(zk, '/basics'), before);
  });

  it('init --json says what it created and which ACLs it set', async () => {
    const r = await runMha(['init', '--json', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { created: [], aclNodes: null, roles: null });
    const bad = await runMha(['init', '--json', '--config', '/nonexistent/mha.yaml']);
    assert.equal(bad.code, 2);
    const e = (JSON.parse(bad.stdout) as { error: { code: string; exitCode: number } }).error;
    assert.deepEqual([e.code, e.exitCode], ['BAD_CONFIG', 2]);
  });

  it('reads $MHA_CONFIG when no --config is given', async () => {
    const r = await runMha(['init'], { env: { MHA_CONFIG: config } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /already present/);
  });
});

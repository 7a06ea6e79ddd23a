import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfig } from '../../core/config';
import { ZkmhaError } from '../../core/errors';
import { clientOptionFile, configText, mhaWrapperText } from '../../sandbox/config';
import {
  allPorts,
  choosePortPlan,
  DEFAULT_PORT_BASE,
  findNode,
  nodesFor,
  portPlan,
  readState,
  sandboxLayout,
  writeState,
  type SandboxState,
} from '../../sandbox/layout';

/** The sandbox's pure parts: ports, the state file that says what it started, its config files. */
describe('sandbox ports', () => {
  it('the default plan: write 23306, read 23307, mariadbd 23311-23313, agents 23321-23323, ZooKeeper 23381', () => {
    const p = portPlan(DEFAULT_PORT_BASE);
    assert.equal(p.write, 23306);
    assert.equal(p.read, 23307);
    assert.deepEqual(p.mysql, [23311, 23312, 23313]);
    assert.deepEqual(p.agentHttp, [23321, 23322, 23323]);
    assert.equal(p.zookeeper, 23381);
    assert.equal(new Set(allPorts(p)).size, allPorts(p).length, 'no port used twice');
  });

  it('a bad base is a usage error', () => {
    for (const b of [80, 65500, 23300.5])
      assert.throws(
        () => portPlan(b),
        (e: unknown) => e instanceof ZkmhaError && e.code === 'BAD_USAGE',
      );
  });

  it('moves 100 up when a default port is taken, and names what was busy when nothing fits', async () => {
    const busy = new Set([23306, 23412]);
    const r = await choosePortPlan(async (p) => !busy.has(p));
    assert.equal(r.kind, 'ok');
    assert.equal(r.kind === 'ok' && r.plan.base, 23500);
    const none = await choosePortPlan(async () => false, undefined, 2);
    assert.equal(none.kind, 'busy');
    assert.deepEqual(none.kind === 'busy' && none.tried.map((t) => t.base), [23300, 23400]);
  });

  it('an explicit base is used as given or refused, never moved', async () => {
    const r = await choosePortPlan(async (p) => p !== 30006, 30000);
    assert.deepEqual(r.kind === 'busy' && r.tried, [{ base: 30000, busy: [30006] }]);
    const ok = await choosePortPlan(async () => true, 30000);
    assert.equal(ok.kind === 'ok' && ok.plan.write, 30006);
  });
});

describe('sandbox state file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-sbx-unit-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const plan = portPlan(DEFAULT_PORT_BASE);
  const state: SandboxState = {
    v: 1,
    createdAt: 1,
    dir,
    ports: { ...plan, mysql: [...plan.mysql], agentHttp: [...plan.agentHttp] },
    nodes: nodesFor(plan),
    procs: { zookeeper: { pid: 123, startTime: 456 } },
    ready: true,
  };

  it('round-trips, written 0600', () => {
    const f = path.join(dir, 'state.json');
    writeState(f, state);
    assert.deepEqual(readState(f), state);
    assert.equal(fs.statSync(f).mode & 0o777, 0o600);
  });

  it('absent is null; damaged is a clear error (so down never guesses pids)', () => {
    assert.equal(readState(path.join(dir, 'none.json')), null);
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '{"v":1,"procs":{"x":{"pid":-1}}}');
    assert.throws(() => readState(bad), /damaged/);
    fs.writeFileSync(bad, 'not json');
    assert.throws(() => readState(bad), /not valid JSON/);
  });

  it('finds a node by short name, node name or port', () => {
    for (const a of ['n2', '127.0.0.1:23312', '23312']) assert.equal(findNode(state, a)?.name, 'n2');
    assert.equal(findNode(state, 'n4'), undefined);
  });
});

describe('sandbox configuration files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-sbx-conf-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const L = sandboxLayout(dir);
  fs.mkdirSync(L.secretsDir, { recursive: true });
  for (const f of ['mysql.pass', 'repl.pass'])
    fs.writeFileSync(path.join(L.secretsDir, f), 'abc123', { mode: 0o600 });
  const plan = portPlan(DEFAULT_PORT_BASE);
  const [n1] = nodesFor(plan);

  it('every role gets a config the real parser accepts, with its section', () => {
    const cli = parseConfig(configText(L, plan, { kind: 'cli' }), 'cli.yaml');
    assert.equal(cli.zookeeper.hosts, '127.0.0.1:23381');
    assert.equal(cli.mysql.password.reveal(), 'abc123');
    const client = parseConfig(
      configText(L, plan, { kind: 'client', node: n1!, binlogDir: '/b', dataDir: '/d' }),
      'c.yaml',
    );
    assert.equal(client.client?.node, '127.0.0.1:23311');
    assert.equal(client.client?.httpPort, 23321);
    assert.equal(parseConfig(configText(L, plan, { kind: 'server', id: 's1' }), 's.yaml').server?.id, 's1');
    const router = parseConfig(
      configText(L, plan, { kind: 'router', id: 'r1', template: '/t.hbs' }),
      'r.yaml',
    ).router;
    assert.equal(router?.bindAddress, '127.0.0.1');
    assert.equal(router?.masterSocket, L.haproxy.masterSocket);
  });

  it('no password in any config file, only references to the 0600 files', () => {
    const text = configText(L, plan, { kind: 'server', id: 's1' });
    assert.doesNotMatch(text, /abc123/);
    assert.match(text, /passwordFile: ".*mysql\.pass"/);
  });

  it('the mariadb option file keeps the password out of argv; non-alphanumeric passwords are refused', () => {
    assert.equal(
      clientOptionFile('app', 'x1', 'app'),
      '[client]\nprotocol=tcp\nhost=127.0.0.1\nuser=app\npassword=x1\ndatabase=app\n',
    );
    assert.throws(() => clientOptionFile('app', 'a b'), /alphanumeric/);
  });

  it('the mha wrapper quotes paths for the shell', () => {
    assert.equal(
      mhaWrapperText('/n', "/a'b/mha.js", '/c.yaml').split('\n')[2],
      `MHA_CONFIG='/c.yaml' exec '/n' '/a'\\''b/mha.js' "$@"`,
    );
  });
});

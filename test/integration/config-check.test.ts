import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runMha } from '../../devenv/cli';

/**
 * `mha config check` as an operator runs it: the built executable, a config file per role and the
 * files it names in a temp dir. Nothing here connects anywhere, so no ZooKeeper is started.
 */
describe('mha config check', () => {
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-config-check-'));
    fs.writeFileSync(path.join(dir, 'zk.pass'), 'zk-secret\n', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'mysql.pass'), 'mysql-secret\n', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'repl.pass'), 'repl-secret\n', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'open.pass'), 'open-secret\n');
    fs.chmodSync(path.join(dir, 'open.pass'), 0o644);
    fs.mkdirSync(path.join(dir, 'binlogs'));
    fs.mkdirSync(path.join(dir, 'run'));
    // The router looks haproxyBin up as it would spawn it; any executable file will do here.
    fs.writeFileSync(path.join(dir, 'haproxy'), '#!/bin/sh\n', { mode: 0o755 });
    // Not real certificates: the check looks at presence and modes, the loader at the PEM armour.
    const pem = (label: string) => `-----BEGIN ${label}-----\nAAAA\n-----END ${label}-----\n`;
    fs.writeFileSync(path.join(dir, 'ca.pem'), pem('CERTIFICATE'));
    fs.writeFileSync(path.join(dir, 'client.pem'), pem('CERTIFICATE'));
    fs.writeFileSync(path.join(dir, 'client.key'), pem('PRIVATE KEY'), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'open.key'), pem('PRIVATE KEY'));
    fs.chmodSync(path.join(dir, 'open.key'), 0o644);
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const common = [
    'zookeeper:',
    '  hosts: zk1.example:2181,zk2.example:2181,zk3.example:2181',
    '  root: /prod',
    '  auth: { user: mha, passwordFile: zk.pass }',
    'mysql:',
    '  passwordFile: mysql.pass',
    '  replicationPasswordFile: repl.pass',
  ];
  // haproxyBin is spawned as written (not resolved against the config file's dir), so absolute here.
  const sections = (): Record<string, string[]> => ({
    admin: [],
    server: ['server: { id: server-1 }'],
    client: [
      'client:',
      '  node: "db1.example:3306"',
      '  binlogDir: binlogs',
      '  dataDir: state/client',
      '  httpHost: 0.0.0.0',
    ],
    router: [
      'router:',
      '  id: router-1',
      '  haproxyConfig: run/haproxy.cfg',
      '  masterSocket: run/haproxy-master.sock',
      '  adminSocket: run/haproxy.sock',
      '  stateDir: state/router',
      `  haproxyBin: ${path.join(dir, 'haproxy')}`,
    ],
  });
  /** Writes a config file into the temp dir (paths in it resolve against that dir). */
  const write = (name: string, lines: string[]): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, lines.join('\n') + '\n');
    return file;
  };

  for (const role of ['admin', 'server', 'client', 'router']) {
    it(`accepts a good ${role} config: exit 0, a line per role, nothing on stderr`, async () => {
      const file = write(`${role}.yaml`, [...common, ...sections()[role]!]);
      const r = await runMha(['config', 'check', '--config', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      const out = r.stdout.split('\n');
      assert.equal(out[0], `${file}: ok`);
      for (const name of ['zookeeper', 'admin', 'server', 'client', 'router'])
        assert.ok(
          out.some((l) => new RegExp(`^  ${name}\\s+\\S`).test(l)),
          `a line for ${name}: ${r.stdout}`,
        );
      assert.match(r.stdout, /digest auth as 'mha'/);
      for (const absent of ['server', 'client', 'router'].filter((s) => s !== role))
        assert.match(r.stdout, new RegExp(`no ${absent} section: 'mha ${absent}' would refuse to start`));
      if (role !== 'admin')
        assert.doesNotMatch(r.stdout, new RegExp(`no ${role} section`), `the ${role} line says what it does`);
      if (role === 'server') assert.match(r.stdout, /worker 'server-1'/);
      if (role === 'client') assert.match(r.stdout, /heartbeat for db1\.example:3306/);
      if (role === 'router') assert.match(r.stdout, /router 'router-1': renders /);
      // No secret reaches the output.
      assert.doesNotMatch(r.stdout, /secret/);
    });
  }

  it("an admin config with zookeeper.acl: every role's credential file checked, the grants described", async () => {
    fs.writeFileSync(path.join(dir, 'zk-server.pass'), 'zk-server-secret\n', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'zk-router.pass'), 'zk-router-secret\n', { mode: 0o600 });
    const acl = [
      '  acl:',
      '    server: { user: zkmha-server, passwordFile: zk-server.pass }',
      '    router: { user: zkmha-router, passwordFile: zk-router.pass }',
      `    client: { user: zkmha-client, digest: "${'A'.repeat(27)}=" }`,
    ];
    const good = write('acl.yaml', [...common.slice(0, 4), ...acl, ...common.slice(4)]);
    const r = await runMha(['config', 'check', '--config', good]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /'mha init --acl' grants all rights to 'mha' and 'zkmha-server', read to 'zkmha-router' \(routers\) and 'zkmha-client' \(clients\)/,
    );
    assert.doesNotMatch(r.stdout, /secret/);
    const open = write('acl-open.yaml', [
      ...common.slice(0, 4),
      '  acl:',
      '    server: { user: zkmha-server, passwordFile: open.pass }',
      '    router: { user: zkmha-router, passwordFile: missing.pass }',
      '    client: { user: zkmha-client, passwordFile: zk-router.pass, digest: "x" }',
      ...common.slice(4),
    ]);
    const b = await runMha(['config', 'check', '--config', open]);
    assert.equal(b.code, 2);
    const lines = b.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 2, b.stderr);
    assert.match(lines[0]!, /zookeeper\.acl\.client\.digest must be base64\(sha1\(user:password\)\)/);
    assert.match(lines[1]!, /zookeeper\.acl\.client: give passwordFile or digest/);
    const files = write('acl-files.yaml', [
      ...common.slice(0, 4),
      '  acl:',
      '    server: { user: zkmha-server, passwordFile: open.pass }',
      '    router: { user: zkmha-router, passwordFile: missing.pass }',
      `    client: { user: zkmha-client, digest: "${'A'.repeat(27)}=" }`,
      ...common.slice(4),
    ]);
    const f = await runMha(['config', 'check', '--config', files]);
    assert.equal(f.code, 2);
    assert.match(
      f.stderr,
      /zookeeper\.acl\.server\.passwordFile: '.*open\.pass' is readable by group or others/,
    );
    assert.match(f.stderr, /zookeeper\.acl\.router\.passwordFile: '.*missing\.pass' does not exist/);
    assert.doesNotMatch(f.stderr, /secret/);
  });

  it('--json gives the check as one JSON document (ok, problems, warnings, roles)', async () => {
    const file = write('json.yaml', [...common, ...sections().server!]);
    const r = await runMha(['config', 'check', '--json', '--config', file]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(doc).sort(), ['file', 'ok', 'problems', 'roles', 'warnings']);
    assert.equal(doc.file, file);
    assert.equal(doc.ok, true);
    assert.deepEqual(doc.problems, []);
    const roles = doc.roles as Record<string, string>;
    assert.deepEqual(Object.keys(roles).sort(), ['admin', 'client', 'router', 'server', 'zookeeper']);
    assert.match(roles.server!, /worker 'server-1'/);
  });

  it('--json on a bad file: the problems in the document, still exit 2 with one line each', async () => {
    const file = write('json-bad.yaml', [...common, 'server: { id: server-1, colour: blue }']);
    const r = await runMha(['config', 'check', '--json', '--config', file]);
    assert.equal(r.code, 2);
    const doc = JSON.parse(r.stdout) as { ok: boolean; problems: string[] };
    assert.equal(doc.ok, false);
    assert.deepEqual(doc.problems, ['server: unknown key(s) colour']);
    assert.deepEqual(r.stderr.trim().split('\n'), [`mha: ${file}: server: unknown key(s) colour`]);
  });

  it('checks the files mysql.tls names and says the admin connections use TLS', async () => {
    const file = write('tls.yaml', [...common, '  tls: { ca: ca.pem, cert: client.pem, key: client.key }']);
    const r = await runMha(['config', 'check', '--config', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^ {2}admin .*; TLS with CA .*\/ca\.pem and client certificate .*\/client\.pem, replicas told the same paths \(MASTER_SSL\)$/m,
    );
  });

  const bad: Array<[string, string[], RegExp[]]> = [
    [
      'a TLS CA that does not exist and a key group/others can read',
      [...common, '  tls: { ca: nope.pem, cert: client.pem, key: open.key }'],
      [
        /mysql\.tls\.ca: '.*nope\.pem' does not exist/,
        /mysql\.tls\.key: '.*open\.key' is readable by group or others \(mode 644\); chmod 600 it/,
      ],
    ],
    [
      'a password file group/others can read',
      [...common.slice(0, 5), '  passwordFile: open.pass'],
      [/mysql\.passwordFile: '.*open\.pass' is readable by group or others \(mode 644\); chmod 600 it/],
    ],
    [
      'a password file that does not exist',
      [...common.slice(0, 6), '  replicationPasswordFile: missing.pass'],
      [/mysql\.replicationPasswordFile: '.*missing\.pass' does not exist/],
    ],
    ['an unknown key', [...common, 'router: { id: r1, colour: blue }'], [/router: unknown key\(s\) colour$/]],
    ['bad YAML', ['zookeeper: { hosts: [unclosed'], [/not valid YAML \(/]],
    [
      'two problems at once',
      [...common.slice(0, 5), '  passwordFile: open.pass', '  replicationPasswordFile: missing.pass'],
      [
        /mysql\.passwordFile: '.*open\.pass' is readable by group or others/,
        /mysql\.replicationPasswordFile: '.*missing\.pass' does not exist/,
      ],
    ],
    [
      'three schema problems at once',
      ['zookeeper: { hosts: "no port here" }', 'client: { node: db1, failAfter: 0 }'],
      [
        /zookeeper\.hosts must be host:port/,
        /client\.node must be host:port/,
        /client\.failAfter must be a positive integer/,
      ],
    ],
  ];
  for (const [name, lines, problems] of bad) {
    it(`refuses ${name}: exit 2, exactly one 'mha: ' line per problem, nothing on stdout`, async () => {
      const file = write('bad.yaml', lines);
      const r = await runMha(['config', 'check', '--config', file]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
      const errLines = r.stderr.trimEnd().split('\n');
      assert.equal(errLines.length, problems.length, r.stderr);
      for (const l of errLines) assert.ok(l.startsWith(`mha: ${file}: `), `prefixed, one line: ${l}`);
      for (const p of problems)
        assert.equal(
          errLines.filter((l) => p.test(l)).length,
          1,
          `exactly one line matches ${p}: ${r.stderr}`,
        );
      assert.doesNotMatch(r.stderr, /secret/);
    });
  }

  it('refuses a config file that does not exist, in one line', async () => {
    const r = await runMha(['config', 'check', '--config', path.join(dir, 'nope.yaml')]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^mha: .*nope\.yaml: cannot read '.*nope\.yaml'\n$/);
  });
});

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inspect } from 'node:util';
import { parseConfig, loadConfig } from '../../core/config';
import { isZkmhaError } from '../../core/errors';

const pem = (label: string, body: string): string =>
  `-----BEGIN ${label}-----\n${Buffer.from(body).toString('base64')}\n-----END ${label}-----\n`;

describe('config', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-config-'));
    fs.writeFileSync(path.join(dir, 'mysql.pass'), 'sekret\n', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'open.pass'), 'sekret\n', { mode: 0o644 });
    fs.chmodSync(path.join(dir, 'open.pass'), 0o644);
    fs.writeFileSync(path.join(dir, 'ca.pem'), pem('CERTIFICATE', 'ca'));
    fs.writeFileSync(path.join(dir, 'client.pem'), pem('CERTIFICATE', 'client'));
    fs.writeFileSync(path.join(dir, 'client.key'), pem('PRIVATE KEY', 'keybytes'), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'open.key'), pem('PRIVATE KEY', 'keybytes'), { mode: 0o644 });
    fs.chmodSync(path.join(dir, 'open.key'), 0o644);
    fs.writeFileSync(path.join(dir, 'notpem.txt'), 'hello\n');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const file = () => path.join(dir, 'mha.yaml');

  it('applies the defaults of design §8 to a minimal file', () => {
    const cfg = parseConfig('zookeeper:\n  hosts: 127.0.0.1:2181\n', file());
    assert.equal(cfg.zookeeper.root, '/mha');
    assert.equal(cfg.zookeeper.sessionTimeoutMs, 4000);
    assert.equal(cfg.mysql.user, 'mha');
    assert.equal(cfg.mysql.connectTimeoutMs, 1000);
    assert.equal(cfg.server, undefined);
  });

  it('reads sections and resolves password files relative to the config file', () => {
    const cfg = parseConfig(
      [
        'zookeeper: { hosts: "127.0.0.1:2181,127.0.0.1:2182", sessionTimeoutMs: 2000 }',
        'mysql: { passwordFile: mysql.pass, replicationPassword: r }',
        'server: { id: server-1 }',
        'client: { node: "127.0.0.1:3306", httpPort: 0, binlogDir: data }',
        'router: { id: router-1 }',
      ].join('\n'),
      file(),
    );
    assert.equal(cfg.mysql.password.reveal(), 'sekret');
    assert.equal(cfg.mysql.replicationPassword.reveal(), 'r');
    assert.equal(cfg.server?.id, 'server-1');
    assert.equal(cfg.client?.checkIntervalMs, 500);
    assert.equal(cfg.client?.failAfter, 3);
    assert.equal(cfg.client?.binlogDir, path.join(dir, 'data'));
    assert.equal(cfg.router?.masterSocket, '/run/haproxy-master.sock');
  });

  it('never shows a password when the config is logged or printed', () => {
    const cfg = parseConfig('zookeeper: { hosts: "127.0.0.1:2181" }\nmysql: { password: hunter2 }\n', file());
    assert.doesNotMatch(JSON.stringify(cfg), /hunter2/);
    assert.doesNotMatch(inspect(cfg, { depth: 10 }), /hunter2/);
    assert.equal(cfg.mysql.password.reveal(), 'hunter2');
  });

  it('reads mysql.tls files at load, paths resolved against the config file, the key kept secret', () => {
    const cfg = parseConfig(
      'zookeeper: { hosts: "h:1" }\nmysql: { tls: { ca: ca.pem, cert: client.pem, key: client.key } }\n',
      file(),
    );
    const tls = cfg.mysql.tls;
    assert.ok(tls);
    assert.equal(tls.caFile, path.join(dir, 'ca.pem'));
    assert.equal(tls.ca, pem('CERTIFICATE', 'ca'));
    assert.equal(tls.certFile, path.join(dir, 'client.pem'));
    assert.equal(tls.keyFile, path.join(dir, 'client.key'));
    assert.match(tls.key?.reveal() ?? '', /BEGIN PRIVATE KEY/);
    assert.equal(tls.verifyServerCert, true);
    const keyBody = Buffer.from('keybytes').toString('base64');
    assert.doesNotMatch(JSON.stringify(cfg), new RegExp(keyBody));
    assert.doesNotMatch(inspect(cfg, { depth: 10 }), new RegExp(keyBody));
  });

  it('leaves TLS off without mysql.tls, and takes a CA alone with verifyServerCert false', () => {
    assert.equal(parseConfig('zookeeper: { hosts: "h:1" }\n', file()).mysql.tls, undefined);
    const tls = parseConfig(
      'zookeeper: { hosts: "h:1" }\nmysql: { tls: { ca: ca.pem, verifyServerCert: false } }\n',
      file(),
    ).mysql.tls;
    assert.deepEqual(tls, {
      caFile: path.join(dir, 'ca.pem'),
      ca: pem('CERTIFICATE', 'ca'),
      verifyServerCert: false,
    });
  });

  const rejected: Array<[string, string, RegExp]> = [
    [
      'non-integer session timeout',
      'zookeeper: { hosts: "h:1", sessionTimeoutMs: 1.5 }',
      /zookeeper\.sessionTimeoutMs must be a positive integer/,
    ],
    [
      'negative session timeout',
      'zookeeper: { hosts: "h:1", sessionTimeoutMs: -4 }',
      /zookeeper\.sessionTimeoutMs must be a positive integer/,
    ],
    [
      'string session timeout',
      'zookeeper: { hosts: "h:1", sessionTimeoutMs: "4s" }',
      /zookeeper\.sessionTimeoutMs must be a positive integer/,
    ],
    ['missing zookeeper', 'mysql: { user: x }', /zookeeper is required|zookeeper/],
    ['bad hosts', 'zookeeper: { hosts: "not a host" }', /zookeeper\.hosts must be host:port/],
    [
      'relative root',
      'zookeeper: { hosts: "h:1", root: "mha" }',
      /zookeeper\.root must be an absolute znode path/,
    ],
    ['unknown key', 'zookeeper: { hosts: "h:1", colour: blue }', /unknown key\(s\) colour/],
    [
      'bad client node',
      'zookeeper: { hosts: "h:1" }\nclient: { node: "x" }',
      /client\.node must be host:port/,
    ],
    ['bad log level', 'zookeeper: { hosts: "h:1" }\nlog: { level: loud }', /log\.level/],
    ['not yaml', 'zookeeper: [', /not valid YAML/],
    ['scalar document', '42', /expected a mapping/],
    [
      'world-readable password file',
      'zookeeper: { hosts: "h:1" }\nmysql: { passwordFile: open.pass }',
      /readable by group or others/,
    ],
    [
      'missing password file',
      'zookeeper: { hosts: "h:1" }\nmysql: { passwordFile: nope.pass }',
      /mysql\.passwordFile: cannot read/,
    ],
    [
      'password and file both',
      'zookeeper: { hosts: "h:1" }\nmysql: { password: a, passwordFile: mysql.pass }',
      /not both/,
    ],
    [
      'missing TLS CA file',
      'zookeeper: { hosts: "h:1" }\nmysql: { tls: { ca: nope.pem } }',
      /^config: mysql\.tls\.ca: cannot read '.*nope\.pem' \(ENOENT\)$/,
    ],
    [
      'a TLS CA that is not PEM',
      'zookeeper: { hosts: "h:1" }\nmysql: { tls: { ca: notpem.txt } }',
      /mysql\.tls\.ca: '.*notpem\.txt' is not a PEM file/,
    ],
    [
      'TLS without a CA',
      'zookeeper: { hosts: "h:1" }\nmysql: { tls: { cert: client.pem, key: client.key } }',
      /mysql\.tls\.ca is required/,
    ],
    [
      'a TLS cert without its key',
      'zookeeper: { hosts: "h:1" }\nmysql: { tls: { ca: ca.pem, cert: client.pem } }',
      /mysql\.tls: give cert and key together/,
    ],
    [
      'a missing TLS cert file',
      'zookeeper: { hosts: "h:1" }\nmysql: { tls: { ca: ca.pem, cert: nope.pem, key: client.key } }',
      /mysql\.tls\.cert: cannot read/,
    ],
    [
      'a world-readable TLS key',
      'zookeeper: { hosts: "h:1" }\nmysql: { tls: { ca: ca.pem, cert: client.pem, key: open.key } }',
      /mysql\.tls\.key: '.*open\.key' is readable by group or others/,
    ],
    [
      'a TLS key that is not PEM',
      'zookeeper: { hosts: "h:1" }\nmysql: { tls: { ca: ca.pem, cert: client.pem, key: mysql.pass } }',
      /mysql\.tls\.key: '.*mysql\.pass' is not a PEM file/,
    ],
    [
      'a non-boolean verifyServerCert',
      'zookeeper: { hosts: "h:1" }\nmysql: { tls: { ca: ca.pem, verifyServerCert: "no" } }',
      /mysql\.tls\.verifyServerCert must be true or false/,
    ],
    [
      'an unknown TLS key',
      'zookeeper: { hosts: "h:1" }\nmysql: { tls: { ca: ca.pem, capath: /etc/ssl } }',
      /mysql\.tls: unknown key\(s\) capath/,
    ],
  ];
  for (const [name, text, message] of rejected) {
    it(`rejects ${name} with a one-line message naming the key`, () => {
      assert.throws(
        () => parseConfig(text, file()),
        (err: unknown) =>
          isZkmhaError(err, 'BAD_CONFIG') && message.test(err.message) && !err.message.includes('\n'),
      );
    });
  }

  it('names the file it cannot read', () => {
    assert.throws(() => loadConfig(path.join(dir, 'absent.yaml')), /cannot read '.*absent\.yaml'/);
  });

  it('falls back to $MHA_CONFIG when no --config is given', () => {
    fs.writeFileSync(file(), 'zookeeper: { hosts: "127.0.0.1:2999" }\n');
    const saved = process.env.MHA_CONFIG;
    process.env.MHA_CONFIG = file();
    try {
      assert.equal(loadConfig().zookeeper.hosts, '127.0.0.1:2999');
    } finally {
      if (saved === undefined) delete process.env.MHA_CONFIG;
      else process.env.MHA_CONFIG = saved;
    }
  });
});

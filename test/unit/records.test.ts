import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeRecord,
  encodeRecord,
  haproxySchema,
  masterSchema,
  metaGroupSchema,
  onlineSchema,
} from '../../core/records';
import { isZkmhaError } from '../../core/errors';
import { ZkPaths, parseWatchDownName } from '../../core/zk/paths';
import { isGroupName, isNodeName, parseNode } from '../../core/names';

const P = '/mha/haproxy/g1';

describe('records', () => {
  it('round-trips a valid route record', () => {
    const rec = { v: 1 as const, epoch: 3, write: '10.0.0.5:3306', read: ['10.0.0.6:3306'] };
    assert.deepEqual(decodeRecord(haproxySchema, encodeRecord(haproxySchema, rec, P), P), rec);
  });

  it('fills group settings defaults', () => {
    const g = decodeRecord(
      metaGroupSchema,
      Buffer.from(
        JSON.stringify({ v: 1, name: 'g1', flavor: 'mariadb', writePort: 3307, readPort: 3308, members: [] }),
      ),
      '/mha/meta_group/g1',
    );
    assert.equal(g.settings.recoveryBlockSeconds, 300);
    assert.equal(g.settings.autoRejoin, false);
  });

  const malformed: Array<[string, string | null, RegExp]> = [
    ['empty value', null, /empty value/],
    ['not JSON', '{"v":1,', /not UTF-8 JSON/],
    ['wrong version', '{"v":2,"epoch":1,"write":null,"read":[]}', /v: Invalid literal value/],
    ['node without port', '{"v":1,"epoch":1,"write":"10.0.0.5","read":[]}', /write: must be host:port/],
    ['shell in a node name', '{"v":1,"epoch":1,"write":"$(reboot):1","read":[]}', /write: must be host:port/],
    ['negative epoch', '{"v":1,"epoch":-1,"write":null,"read":[]}', /epoch/],
    ['unknown field', '{"v":1,"epoch":1,"write":null,"read":[],"x":1}', /Unrecognized key/],
    ['array instead of object', '[1,2]', /\(value\)/],
  ];
  for (const [name, text, message] of malformed) {
    it(`rejects ${name}, naming the path`, () => {
      assert.throws(
        () => decodeRecord(haproxySchema, text === null ? null : Buffer.from(text), P),
        (err: unknown) =>
          isZkmhaError(err, 'BAD_RECORD') && err.message.startsWith(P) && message.test(err.message),
      );
    });
  }

  it('rejects invalid UTF-8', () => {
    assert.throws(() => decodeRecord(masterSchema, Buffer.from([0x7b, 0xff, 0x7d]), '/m'), /not UTF-8 JSON/);
  });

  it('refuses to encode an invalid record', () => {
    assert.throws(
      () =>
        encodeRecord(
          onlineSchema,
          { v: 1, mysqldUp: true, role: 'boss', readOnly: false, gtidCurrent: '', at: 1 } as never,
          '/o',
        ),
      (err: unknown) => isZkmhaError(err, 'BAD_RECORD') && /role/.test(err.message),
    );
  });
});

describe('names and paths', () => {
  const groups: Array<[string, boolean]> = [
    ['g1', true],
    ['a', true],
    ['shop_eu-1', true],
    ['G1', false],
    ['-g', false],
    ['', false],
    ['a/b', false],
    ['a'.repeat(64), false],
    ['a'.repeat(63), true],
  ];
  for (const [name, ok] of groups)
    it(`group '${name.slice(0, 20)}' valid=${ok}`, () => assert.equal(isGroupName(name), ok));

  const nodes: Array<[string, boolean]> = [
    ['10.0.0.5:3306', true],
    ['db-1.example.com:3306', true],
    ['10.0.0.5', false],
    ['10.0.0.5:0', false],
    ['10.0.0.5:65536', false],
    ['host name:1', false],
    ['a;rm -rf:1', false],
    [':3306', false],
  ];
  for (const [name, ok] of nodes) it(`node '${name}' valid=${ok}`, () => assert.equal(isNodeName(name), ok));

  it('parses a node', () => assert.deepEqual(parseNode('db1:3306'), { host: 'db1', port: 3306 }));

  it('builds every path from validated names', () => {
    const p = new ZkPaths('/mha');
    assert.equal(p.online('10.0.0.5:3306'), '/mha/online/10.0.0.5:3306');
    assert.equal(p.lockPrefix('g1'), '/mha/lock/g1/lock-');
    assert.equal(p.watchDown('g1', 'router'), '/mha/watch_down/g1__router');
    assert.equal(p.historyPrefix('g1'), '/mha/history/g1/event-');
    assert.throws(() => p.master('../x'), /invalid group name/);
    assert.throws(() => p.online('x/y:1'), /invalid node/);
    assert.throws(() => new ZkPaths('mha'), /absolute znode path/);
    assert.equal(p.allDirs().length, 17);
  });

  it('splits watch_down names into group and kind', () => {
    assert.deepEqual(parseWatchDownName('g1'), { group: 'g1' });
    assert.deepEqual(parseWatchDownName('g1__router'), { group: 'g1', kind: 'router' });
    assert.deepEqual(parseWatchDownName('my_group__failover-failed'), {
      group: 'my_group',
      kind: 'failover-failed',
    });
    assert.equal(parseWatchDownName('../x'), null);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as nzk from 'node-zookeeper-client';
import { mapZkError } from '../../core/zk/client';

describe('ZooKeeper error mapping', () => {
  const E = (nzk as unknown as { Exception: Record<string, number> & { create(code: number): Error } })
    .Exception;

  it('maps library codes to ZkmhaError codes, naming the operation and path', () => {
    const table: [string, string][] = [
      ['NO_NODE', 'ZK_NO_NODE'],
      ['NODE_EXISTS', 'ZK_NODE_EXISTS'],
      ['BAD_VERSION', 'ZK_BAD_VERSION'],
      ['CONNECTION_LOSS', 'ZK_CONNECTION_LOSS'],
      ['SESSION_EXPIRED', 'ZK_SESSION_EXPIRED'],
      ['NOT_EMPTY', 'ZK_ERROR'],
      ['NO_AUTH', 'ZK_NO_AUTH'],
    ];
    for (const [lib, code] of table) {
      const err = mapZkError(E.create(E[lib]!), 'set', '/mha/master/g1', { opIndex: 2 });
      assert.equal(err.code, code, lib);
      assert.match(err.message, /^zookeeper set \/mha\/master\/g1: /);
      assert.deepEqual(err.details, { path: '/mha/master/g1', zkCode: lib, opIndex: 2 });
    }
  });

  it('maps anything else to ZK_ERROR with its message', () => {
    const err = mapZkError(new Error('boom'), 'get', '/x');
    assert.equal(err.code, 'ZK_ERROR');
    assert.equal(err.message, 'zookeeper get /x: boom');
  });
});

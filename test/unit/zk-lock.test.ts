import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lockPosition, lockQueue, parseLockNode } from '../../core/zk/lock';

describe('lock recipe: queue order and predecessor', () => {
  const a = 'lock-00000000000000aa-0000000010';
  const b = 'lock-ffffffffffffffff-0000000002';
  const c = 'lock-0123456789abcdef-0000000007';

  it('parses only well-formed lock node names', () => {
    const table: [string, ReturnType<typeof parseLockNode>][] = [
      [a, { name: a, guid: '00000000000000aa', seq: 10 }],
      [
        'lock-0123456789abcdef-2147483648',
        { name: 'lock-0123456789abcdef-2147483648', guid: '0123456789abcdef', seq: 2147483648 },
      ],
      ['lock-0000000003', null], // no guid
      ['lock-0123456789ABCDEF-0000000001', null], // guid must be lower-case hex
      ['other-0123456789abcdef-0000000001', null],
      ['lock-0123456789abcdef-12', null], // ZooKeeper sequences have at least 10 digits
      ['', null],
    ];
    for (const [name, want] of table) assert.deepEqual(parseLockNode(name), want, name);
  });

  it('orders by sequence, never by guid, and ignores foreign children', () => {
    assert.deepEqual(
      lockQueue([a, 'junk', b, c]).map((n) => n.name),
      [b, c, a],
    );
  });

  it('tells the holder, each waiter its own predecessor, and a vanished node', () => {
    const children = [a, b, c];
    const table: [string, ReturnType<typeof lockPosition>][] = [
      [b, { kind: 'held' }],
      [c, { kind: 'wait', predecessor: b }],
      [a, { kind: 'wait', predecessor: c }],
      ['lock-1111111111111111-0000000001', { kind: 'missing' }],
    ];
    for (const [mine, want] of table) assert.deepEqual(lockPosition(children, mine), want, mine);
  });
});

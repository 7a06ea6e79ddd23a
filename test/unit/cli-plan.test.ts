import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerState, ReplicaState } from '../../core/mysql/flavor';
import { planAdd } from '../../cli/add';
import { errantTransactions } from '../../core/ops/admin';
import { checkTopology } from '../../cli/setmaster';
import { pickSwitchoverCandidate } from '../../cli/switchover';
import { A, B, M, pos, unreachable, view } from './server-fixtures';

const N1 = '127.0.0.1:3301';
const N2 = '127.0.0.1:3302';
const N3 = '127.0.0.1:3303';

function state(
  serverId: number,
  current: string,
  over: Partial<ServerState> = {},
  replica: Partial<ReplicaState> | null = null,
): ServerState {
  return {
    serverId,
    version: '10.11',
    readOnly: false,
    gtidBinlogPos: current,
    gtidCurrentPos: current,
    gtidSlavePos: '',
    replica:
      replica === null
        ? null
        : {
            masterHost: '127.0.0.1',
            masterPort: 3301,
            ioRunning: true,
            sqlRunning: true,
            lagSeconds: 0,
            gtidIoPos: '',
            lastIoError: '',
            lastSqlError: '',
            usingGtid: 'Slave_Pos',
            ...replica,
          },
    semiSyncMasterEnabled: false,
    semiSyncMasterStatus: false,
    semiSyncMasterClients: 0,
    semiSyncSlaveEnabled: false,
    ...over,
  };
}

const states = (entries: Array<[string, ServerState]>): Map<string, ServerState> => new Map(entries);

describe('errantTransactions', () => {
  const cases: Array<[string, string, string, string | null]> = [
    ['nothing on either side', '', '', null],
    ['node behind the master', '0-1-5', '0-1-9', null],
    ['node equal', '0-1-9', '0-1-9', null],
    ['local writes on a fresh node', '0-3-2', '', '0-3-1..0-3-2'],
    ['one transaction ahead', '0-1-10', '0-1-9', '0-1-10'],
    ['same seq from another server', '0-3-9', '0-1-9', '0-3-9 (master has 0-1-9 in domain 0)'],
    ['another domain', '0-1-9,1-3-4', '0-1-9', '1-3-1..1-3-4'],
  ];
  for (const [name, node, master, expected] of cases) {
    it(name, () => assert.equal(errantTransactions(node, master), expected));
  }
});

describe('planAdd', () => {
  it('takes the first node when all are fresh', () => {
    const p = planAdd(
      { nodes: [N1, N2, N3] },
      states([
        [N1, state(1, '')],
        [N2, state(2, '')],
        [N3, state(3, '')],
      ]),
    );
    assert.deepEqual(p, {
      kind: 'ok',
      master: N1,
      replicas: [N2, N3],
      why: 'all nodes at the same GTID position: the first',
    });
  });

  it('takes the most advanced node when one holds everything the others hold', () => {
    const p = planAdd(
      { nodes: [N1, N2, N3] },
      states([
        [N1, state(1, '0-2-3', { gtidSlavePos: '0-2-3' })],
        [N2, state(2, '0-2-7')],
        [N3, state(3, '')],
      ]),
    );
    assert.equal(p.kind, 'ok');
    assert.equal(p.kind === 'ok' && p.master, N2);
  });

  it('takes --master when given and compatible', () => {
    const p = planAdd(
      { nodes: [N1, N2], master: N2 },
      states([
        [N1, state(1, '')],
        [N2, state(2, '')],
      ]),
    );
    assert.equal(p.kind === 'ok' && p.master, N2);
  });

  it('refuses errant GTIDs, naming the node and the transactions', () => {
    const p = planAdd(
      { nodes: [N1, N2, N3] },
      states([
        [N1, state(1, '0-1-5')],
        [N2, state(2, '0-1-5')],
        [N3, state(3, '0-3-2')],
      ]),
    );
    assert.equal(p.kind, 'refuse');
    assert.match(
      p.kind === 'refuse' ? p.reason : '',
      /errant GTIDs: node 127\.0\.0\.1:3303 has transactions the master 127\.0\.0\.1:3301 lacks: local writes up to 0-3-2 \(server_id 3\)/,
    );
  });

  it('refuses local writes on a fresh node even when the master is further in the same domain', () => {
    const p = planAdd(
      { nodes: [N1, N2] },
      states([
        [N1, state(1, '0-1-9')],
        [N2, state(2, '0-2-1')],
      ]),
    );
    assert.match(
      p.kind === 'refuse' ? p.reason : '',
      /node 127\.0\.0\.1:3302 has transactions the master 127\.0\.0\.1:3301 lacks: local writes up to 0-2-1/,
    );
  });

  it('accepts a node whose history the master holds (it replicated from it)', () => {
    const p = planAdd(
      { nodes: [N1, N2] },
      states([
        [N1, state(1, '0-1-9')],
        [N2, state(2, '0-1-7', { gtidSlavePos: '0-1-7' }, {})],
      ]),
    );
    assert.equal(p.kind, 'ok');
  });

  it('refuses --master when another node is ahead of it', () => {
    const p = planAdd(
      { nodes: [N1, N2], master: N1 },
      states([
        [N1, state(1, '0-1-3')],
        [N2, state(2, '0-1-4')],
      ]),
    );
    assert.match(
      p.kind === 'refuse' ? p.reason : '',
      /node 127\.0\.0\.1:3302 has transactions the master 127\.0\.0\.1:3301 lacks: 0-1-4/,
    );
  });

  it('refuses duplicate server ids and replicas of an outside master', () => {
    const dup = planAdd(
      { nodes: [N1, N2] },
      states([
        [N1, state(1, '')],
        [N2, state(1, '')],
      ]),
    );
    assert.match(dup.kind === 'refuse' ? dup.reason : '', /same server_id 1/);
    const outside = planAdd(
      { nodes: [N1, N2] },
      states([
        [N1, state(1, '')],
        [N2, state(2, '', {}, { masterPort: 9999 })],
      ]),
    );
    assert.match(
      outside.kind === 'refuse' ? outside.reason : '',
      /replicates from 127\.0\.0\.1:9999, which is not in --nodes/,
    );
  });
});

describe('checkTopology (setmaster)', () => {
  const good = (): Map<string, ServerState> =>
    states([
      [N1, state(1, '0-1-9')],
      [N2, state(2, '0-1-9', { readOnly: true }, {})],
      [N3, state(3, '0-1-9', { readOnly: true }, {})],
    ]);
  it('accepts a writable master with read-only replicas of it', () => {
    assert.deepEqual(checkTopology(N1, [N1, N2, N3], good()), []);
  });
  it('names every problem', () => {
    const s = good();
    s.set(N1, state(1, '0-1-9', { readOnly: true }));
    s.set(N2, state(2, '0-1-9', { readOnly: false }, { masterPort: 3303 }));
    s.set(N3, state(3, '0-1-9', { readOnly: true }, { sqlRunning: false, lastSqlError: 'Duplicate entry' }));
    assert.deepEqual(checkTopology(N1, [N1, N2, N3], s), [
      '127.0.0.1:3301 is read-only',
      '127.0.0.1:3302 is writable',
      '127.0.0.1:3302 replicates from 127.0.0.1:3303, not 127.0.0.1:3301',
      '127.0.0.1:3303: replication threads not running (io yes, sql no: Duplicate entry)',
    ]);
  });
  it('refuses a node that still replicates', () => {
    const s = good();
    s.set(N2, state(2, '0-1-9', {}, {}));
    assert.match(
      checkTopology(N2, [N1, N2, N3], s).join('; '),
      /127\.0\.0\.1:3302 still replicates from 127\.0\.0\.1:3301/,
    );
  });
});

describe('pickSwitchoverCandidate', () => {
  const v = view({ members: [{ node: M }, { node: A }, { node: B, priority: 0 }] });
  const positions = new Map([
    [A, pos('0-1-10', { io_running: true })],
    [B, pos('0-1-10', { io_running: true })],
  ]);
  it('chooses what a failover would choose when --to is not given', () => {
    const p = pickSwitchoverCandidate(v, positions, undefined);
    assert.equal(p.kind === 'ok' && p.node, A);
  });
  it('takes --to when eligible, refuses the master, priority 0, strangers and the unreachable', () => {
    assert.deepEqual(pickSwitchoverCandidate(v, positions, A), {
      kind: 'ok',
      node: A,
      reason: 'given with --to',
    });
    assert.match(JSON.stringify(pickSwitchoverCandidate(v, positions, M)), /already the master/);
    assert.match(JSON.stringify(pickSwitchoverCandidate(v, positions, B)), /priority 0/);
    assert.match(JSON.stringify(pickSwitchoverCandidate(v, positions, '10.9.9.9:1')), /not a member/);
    assert.match(JSON.stringify(pickSwitchoverCandidate(v, new Map([[A, unreachable()]]), A)), /unreachable/);
  });
  it('refuses a candidate whose IO thread is stopped', () => {
    const p = pickSwitchoverCandidate(v, new Map([[A, pos('0-1-10', { io_running: false })]]), A);
    assert.match(p.kind === 'refuse' ? p.reason : '', /IO thread stopped/);
  });
});

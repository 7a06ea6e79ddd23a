import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN,
  parseServersState,
  parseShowProc,
  parseShowSess,
  splitBatchAnswer,
  isCommandError,
  type ServerState,
} from '../../core/haproxy/cli';
import { emptyGroup, type GroupState, type Slot } from '../../router/model';
import { planRuntime } from '../../router/plan';

const slot = (addr: string, port = 3306): Slot => ({ node: `${addr}:${port}`, addr, port });
const group = (write: Slot | null, read: (Slot | null)[]): GroupState => ({
  ...emptyGroup('g1', 13306, 13307, 3),
  epoch: 1,
  write,
  read: [...read, null, null, null].slice(0, 3),
});

/** HAProxy's view: every slot of g1, given as [addr, port, maint]. */
function actual(
  w1: [string, number, boolean],
  reads: Array<[string, number, boolean]>,
  extra: Partial<ServerState> = {},
): ServerState[] {
  const mk = (
    backend: string,
    server: string,
    [addr, port, maint]: [string, number, boolean],
  ): ServerState => ({
    backendId: 1,
    backend,
    serverId: 1,
    server,
    addr,
    port,
    opState: 2,
    adminState: maint ? ADMIN.FMAINT : 0,
    maint,
    drain: false,
    checkAddr: '127.0.0.1',
    checkPort: 1,
    ...extra,
  });
  return [mk('g1_write', 'w1', w1), ...reads.map((r, i) => mk('g1_read', `r${i + 1}`, r))];
}
const EMPTY: [string, number, boolean] = ['127.0.0.1', 1, true];

describe('router planRuntime: runtime API commands from the read-back state', () => {
  it('nothing to do when HAProxy already runs the desired state', () => {
    const p = planRuntime(
      [group(slot('10.0.0.1'), [slot('10.0.0.2')])],
      actual(['10.0.0.1', 3306, false], [['10.0.0.2', 3306, false], EMPTY, EMPTY]),
    );
    assert.deepEqual(p, { commands: [], cuts: [], missing: [] });
  });

  it('a new write target: old server to maint, its sessions cut, then the new address made ready', () => {
    const p = planRuntime(
      [group(slot('10.0.0.2'), [])],
      actual(['10.0.0.1', 3306, false], [EMPTY, EMPTY, EMPTY]),
    );
    assert.deepEqual(p.commands, [
      'set server g1_write/w1 state maint',
      'shutdown sessions server g1_write/w1',
      'set server g1_write/w1 addr 10.0.0.2 port 3306',
      'set server g1_write/w1 state ready',
    ]);
    assert.deepEqual(p.cuts, [{ backend: 'g1_write', server: 'w1' }]);
  });

  it('write: null puts w1 in maint and cuts its sessions; already in maint → nothing', () => {
    const p = planRuntime([group(null, [])], actual(['10.0.0.1', 3306, false], [EMPTY, EMPTY, EMPTY]));
    assert.deepEqual(p.commands, [
      'set server g1_write/w1 state maint',
      'shutdown sessions server g1_write/w1',
    ]);
    const q = planRuntime([group(null, [])], actual(['10.0.0.1', 3306, true], [EMPTY, EMPTY, EMPTY]));
    assert.deepEqual(q.commands, []);
  });

  it('same write address in maint (after write: null) → ready, nothing cut', () => {
    const p = planRuntime(
      [group(slot('10.0.0.1'), [])],
      actual(['10.0.0.1', 3306, true], [EMPTY, EMPTY, EMPTY]),
    );
    assert.deepEqual(p.commands, ['set server g1_write/w1 state ready']);
    assert.deepEqual(p.cuts, []);
  });

  it('a drained server that should serve is made ready (drift)', () => {
    const st = actual(['10.0.0.1', 3306, false], [EMPTY, EMPTY, EMPTY]).map((s) =>
      s.server === 'w1' ? { ...s, drain: true, adminState: ADMIN.FDRAIN } : s,
    );
    assert.deepEqual(planRuntime([group(slot('10.0.0.1'), [])], st).commands, [
      'set server g1_write/w1 state ready',
    ]);
  });

  it('reads: slots that gain a node come before slots that lose one; readers are never cut', () => {
    const p = planRuntime(
      [group(null, [null, slot('10.0.0.3')])],
      actual(EMPTY, [['10.0.0.2', 3306, false], EMPTY, EMPTY]),
    );
    assert.deepEqual(p.commands, [
      'set server g1_read/r2 addr 10.0.0.3 port 3306',
      'set server g1_read/r2 state ready',
      'set server g1_read/r1 state maint',
    ]);
    assert.deepEqual(p.cuts, []);
  });

  it('a reader slot moving to another node goes through maint (fresh health) without cutting sessions', () => {
    const p = planRuntime(
      [group(null, [slot('10.0.0.3')])],
      actual(EMPTY, [['10.0.0.2', 3306, false], EMPTY, EMPTY]),
    );
    assert.deepEqual(p.commands, [
      'set server g1_read/r1 state maint',
      'set server g1_read/r1 addr 10.0.0.3 port 3306',
      'set server g1_read/r1 state ready',
    ]);
  });

  describe('with agent checks: the check follows the node and the write check asks for the epoch', () => {
    const agent = (addr: string, checkPort = 8008): Slot => ({
      ...slot(addr),
      check: { addr, port: checkPort },
    });
    const vars = (epoch: number, node: string) =>
      new Map([
        ['proc.zkmha_epoch_g1', String(epoch)],
        ['proc.zkmha_write_g1', node],
      ]);
    const opts = (epoch: number, node: string) => ({ agentChecks: true, vars: vars(epoch, node) });

    it('a failover: old w1 out first, then the new epoch and node, then the check moved, then ready', () => {
      const p = planRuntime(
        [{ ...group(agent('10.0.0.2'), []), epoch: 2 }],
        actual(['10.0.0.1', 3306, false], [EMPTY, EMPTY, EMPTY], {
          checkAddr: '10.0.0.1',
          checkPort: 8008,
        }).map((s) => (s.server === 'w1' ? s : { ...s, checkAddr: '127.0.0.1', checkPort: 1 })),
        opts(1, '10.0.0.1:3306'),
      );
      assert.deepEqual(p.commands, [
        'experimental-mode on',
        'set server g1_write/w1 state maint',
        'shutdown sessions server g1_write/w1',
        'set var proc.zkmha_epoch_g1 int(2)',
        'set var proc.zkmha_write_g1 str(10.0.0.2:3306)',
        'set server g1_write/w1 addr 10.0.0.2 port 3306',
        'set server g1_write/w1 check-addr 10.0.0.2 port 8008',
        'set server g1_write/w1 state ready',
      ]);
    });

    it('a fencing route (write: null, epoch+1): w1 out and the check variables say so', () => {
      const w = actual(['10.0.0.1', 3306, false], [EMPTY, EMPTY, EMPTY], {
        checkAddr: '10.0.0.1',
        checkPort: 8008,
      });
      const p = planRuntime([{ ...group(null, []), epoch: 2 }], w, opts(1, '10.0.0.1:3306'));
      assert.deepEqual(p.commands, [
        'experimental-mode on',
        'set server g1_write/w1 state maint',
        'shutdown sessions server g1_write/w1',
        'set var proc.zkmha_epoch_g1 int(2)',
        'set var proc.zkmha_write_g1 str()',
      ]);
    });

    it("an agent that moved to another port: only the check's target changes, in service", () => {
      const w = actual(['10.0.0.1', 3306, false], [EMPTY, EMPTY, EMPTY], {
        checkAddr: '10.0.0.1',
        checkPort: 8008,
      });
      const p = planRuntime([group(agent('10.0.0.1', 9009), [])], w, opts(1, '10.0.0.1:3306'));
      assert.deepEqual(p.commands, ['set server g1_write/w1 check-addr 10.0.0.1 port 9009']);
    });

    it('variables lost (an HAProxy started from an older file) are set again; nothing else', () => {
      const w = actual(['10.0.0.1', 3306, false], [EMPTY, EMPTY, EMPTY], {
        checkAddr: '10.0.0.1',
        checkPort: 8008,
      });
      const p = planRuntime([group(agent('10.0.0.1'), [])], w, { agentChecks: true, vars: new Map() });
      assert.deepEqual(p.commands, [
        'experimental-mode on',
        'set var proc.zkmha_epoch_g1 int(1)',
        'set var proc.zkmha_write_g1 str(10.0.0.1:3306)',
      ]);
    });

    it('a node without agent is checked against nothing (it cannot pass); without agent checks, check targets are ignored', () => {
      const w = actual(['10.0.0.1', 3306, false], [EMPTY, EMPTY, EMPTY], {
        checkAddr: '10.0.0.1',
        checkPort: 8008,
      });
      const noAgent = planRuntime([group(slot('10.0.0.1'), [])], w, opts(1, '10.0.0.1:3306'));
      assert.deepEqual(noAgent.commands, ['set server g1_write/w1 check-addr 127.0.0.1 port 1']);
      const tcp = planRuntime([group(agent('10.0.0.1', 9009), [])], w);
      assert.deepEqual(tcp.commands, []);
    });
  });

  it('a group whose backends HAProxy lacks is reported missing (reload), with no commands', () => {
    const g2 = { ...group(slot('10.0.0.1'), []), name: 'g2' };
    const p = planRuntime([g2], actual(EMPTY, [EMPTY, EMPTY, EMPTY]));
    assert.deepEqual(p.commands, []);
    assert.deepEqual(p.missing, ['g2_write', 'g2_read']);
  });

  it('a missing slot (more read slots than HAProxy runs) is reported missing', () => {
    const p = planRuntime([group(null, [])], actual(EMPTY, [EMPTY, EMPTY]));
    assert.deepEqual(p.missing, ['g1_read/r3']);
  });
});

describe('HAProxy CLI parsing', () => {
  it('show servers state: columns by name, effective maintenance from the runtime flags only', () => {
    const text = [
      '1',
      '# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port',
      '2 g_write 1 w1 127.0.0.1 2 4 1 1 0 6 3 3 6 0 0 0 - 25102 - 0 0 - - 0',
      '2 g_write 2 w2 127.0.0.1 0 5 1 1 2 6 3 0 14 0 0 0 - 9 - 0 0 - - 0',
      '3 g_read 1 r1 10.0.0.2 2 8 1 1 2 6 3 0 14 0 0 0 - 3306 - 0 0 - - 0',
      '',
    ].join('\n');
    const s = parseServersState(text);
    assert.deepEqual(
      s.map((x) => [x.backend, x.server, x.addr, x.port, x.maint, x.drain]),
      [
        ['g_write', 'w1', '127.0.0.1', 25102, false, false], // CMAINT alone: configured disabled, set ready since
        ['g_write', 'w2', '127.0.0.1', 9, true, false],
        ['g_read', 'r1', '10.0.0.2', 3306, false, true],
      ],
    );
  });

  it('show proc: master counters, current worker first, then old workers', () => {
    const text = [
      '#<PID>          <type>          <reloads>       <uptime>        <version>',
      '4887            master          2 [failed: 1]   0d00h00m26s     2.6.12-1+deb12u4',
      '# workers',
      '7001            worker          0               0d00h00m00s     2.6.12-1+deb12u4',
      '# old workers',
      '6459            worker          1               0d00h00m01s     2.6.12-1+deb12u4',
      '# programs',
      '',
    ].join('\n');
    assert.deepEqual(parseShowProc(text), {
      master: { pid: 4887, reloads: 2, failed: 1 },
      workers: [
        { pid: 7001, reloads: 0 },
        { pid: 6459, reloads: 1 },
      ],
    });
  });

  it('a batched answer is split per command; only unexpected output is an error', () => {
    const cmds = [
      'set server a/w9 state maint',
      'set server a/w1 state maint',
      'set server a/w1 addr 1.2.3.4 port 5',
      'shutdown sessions server a/w1',
    ];
    const r = splitBatchAnswer(
      cmds,
      "No such server.\n\n\nno need to change the addr, port changed from '1' to '5' by 'stats socket command'\n\n\n",
    );
    assert.deepEqual(
      r.map((x) => [x.output === '' ? '' : x.output.slice(0, 8), isCommandError(x)]),
      [
        ['No such ', true],
        ['', false],
        ['no need ', false],
        ['', false],
      ],
    );
  });

  it('show sess: session ids with their backend and server (to cut them one by one in an old worker)', () => {
    const text = [
      '0x56014d2f6320: proto=tcpv4 src=127.0.0.1:47736 fe=a be=g1_write srv=w1 ts=00 epoch=0 age=1s calls=3 rate=0',
      '0x7f39f0039fe0: proto=sockpair src=unix:2 fe=GLOBAL be=<NONE> srv=<none> ts=00 epoch=0 age=0s calls=2',
      '',
    ].join('\n');
    assert.deepEqual(parseShowSess(text), [
      { id: '0x56014d2f6320', backend: 'g1_write', server: 'w1' },
      { id: '0x7f39f0039fe0', backend: '<NONE>', server: '<none>' },
    ]);
  });
});

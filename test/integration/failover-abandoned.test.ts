import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeRecord,
  taskSchema,
  type HistoryRecord,
  type MasterRecord,
  type TaskRecord,
} from '../../core/records';
import { alertOf } from '../../core/view';
import { startCluster, type Cluster } from '../../devenv/cluster';
import { MHA_BIN, runMha } from '../../devenv/cli';
import { track } from '../../devenv/reaper';
import { waitFor } from '../../devenv/wait';

/**
 * No group stays unwritable because an operation's process died: `mha switchover` runs as a child
 * process, pauses at a step (MHA_FAULT_SWITCHOVER_PAUSE_BEFORE_STEP) and is SIGKILLed there, with
 * two server workers, three heartbeat clients and a writer that follows haproxy/<group>.write.
 * Once its lock is gone (session timeout) and the grace period has passed, exactly one worker
 * resolves the switchover — rolled back before the promotion, finished after it, handed to a
 * failover when the old master died with it — and the design §9 invariants hold with no
 * acknowledged write lost. A dead `mha add` is only reported.
 */
/** Waits until master/<group> reaches `epoch` (the resolution of the abandoned operation). */
function masterAt(c: Cluster, epoch: number, timeoutMs: number, what: string): Promise<MasterRecord> {
  return waitFor(
    async () => {
      const m = await c.master();
      return m.epoch === epoch ? m : null;
    },
    { timeoutMs, what },
  );
}

describe('a switchover or add whose process died', () => {
  let c: Cluster;
  let config: string;

  before(async () => {
    c = await startCluster({ nodes: 3, semiSync: true, logLevel: 'info' });
    config = c.writeConfig('cli', 'cli');
    await c.startClients();
    await c.startServer('s1');
    await c.startServer('s2');
  });
  after(async () => {
    await c?.close();
  });

  /** `mha switchover` paused before `step`; resolves with the task once it is paused there. */
  async function pausedSwitchover(step: string): Promise<{ task: TaskRecord; kill: () => Promise<number> }> {
    const child = spawn(process.execPath, [MHA_BIN, 'switchover', c.group, '--config', config], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, MHA_FAULT_SWITCHOVER_PAUSE_BEFORE_STEP: `${step}:60000` },
    });
    track(child);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await waitFor(
      () => stderr.includes(`pausing 60000 ms before step '${step}'`) || child.exitCode !== null,
      {
        timeoutMs: 20000,
        what: `mha switchover paused before '${step}'`,
      },
    );
    assert.equal(child.exitCode, null, `mha switchover ended early: ${stderr}`);
    const task = (await c.view()).task?.record;
    assert.ok(task !== undefined, 'task/<group> written');
    assert.equal(task.kind, 'switchover');
    return {
      task,
      kill: async () => {
        child.kill('SIGKILL');
        await exited;
        return Date.now();
      },
    };
  }

  const abandonedEvents = async (): Promise<HistoryRecord[]> =>
    (await c.history()).filter((h) => h.kind === 'switchover-abandoned');

  it('killed before the promotion: a worker rolls it back — the old master writable and routed again', async () => {
    const before = await c.master();
    const old = before.node;
    const w = await c.startWriter();
    try {
      await w.waitForAcks(20);
      const sw = await pausedSwitchover('catchup');
      assert.equal(sw.task.step, 'catchup');
      assert.match(String(sw.task.detail.target), /^\d+-\d+-\d+/, 'the fenced position is recorded');
      // Writes are cut everywhere while it is paused.
      const cut = await c.route();
      assert.deepEqual([cut.epoch, cut.write], [before.epoch + 1, null]);
      const [ro] = await c.instance(old).query('SELECT @@read_only AS ro');
      assert.equal(Number(ro?.ro), 1, 'old master fenced');

      const killedAt = await sw.kill();
      const after = await masterAt(c, before.epoch + 1, 20000, 'the abandoned switchover resolved');
      assert.equal(after.node, old, 'rolled back to the old master');
      assert.match(after.reason, /rolled back/);
      await w.waitForAcks(20);
      await c.assertInvariants({ master: old, writer: w, noLostRows: true });
      assert.ok(
        w.acks.every((a) => a.node === old),
        'every write went to the old master',
      );

      const ev = await abandonedEvents();
      assert.equal(ev.length, 1, 'resolved once (two workers)');
      assert.deepEqual([ev[0]!.from, ev[0]!.to, ev[0]!.epoch], [old, old, before.epoch + 1]);
      assert.equal(ev[0]!.detail.resolution, 'rolled-back');
      assert.match(String(ev[0]!.detail.why), /before the promotion/);
      assert.deepEqual((ev[0]!.detail.task as { id: string; step: string }).step, 'catchup');
      assert.ok(ev[0]!.endedAt >= killedAt, 'nothing was resolved while the CLI lived');
      const alert = alertOf(await c.view(), 'operation-abandoned');
      assert.ok(alert, 'watch_down/<group>__operation-abandoned');
      assert.equal(alert.record.detail.taskId, sw.task.id);
      assert.equal(alert.record.detail.resolution, 'rolled-back');
    } finally {
      await w.stop();
    }
  });

  it('killed after the promotion: a worker finishes it — the candidate is the master, the old master its replica', async () => {
    const before = await c.master();
    const old = before.node;
    const w = await c.startWriter();
    try {
      await w.waitForAcks(20);
      const sw = await pausedSwitchover('commit');
      const cand = sw.task.candidate!;
      assert.equal(sw.task.step, 'promote');
      const [st] = await c.instance(cand).query('SELECT @@read_only AS ro');
      assert.equal(Number(st?.ro), 0, 'the candidate is promoted (writable, not routed)');
      assert.equal((await c.route()).write, null);

      const killedAt = await sw.kill();
      const after = await masterAt(c, before.epoch + 1, 20000, 'the abandoned switchover resolved');
      assert.equal(after.node, cand, 'finished: the candidate is the master');
      assert.equal(after.reason, 'switchover');
      await w.waitForAcks(20);
      assert.ok(
        w.acks.some((a) => a.node === cand),
        'writes go to the new master',
      );
      // One writable master, everyone (the old master included) replicating from it, nothing lost.
      await c.assertInvariants({ master: cand, writer: w, noLostRows: true });

      const ev = (await abandonedEvents()).filter((e) => e.epoch === before.epoch + 1);
      assert.equal(ev.length, 1, 'resolved once (two workers)');
      assert.deepEqual([ev[0]!.from, ev[0]!.to], [old, cand]);
      assert.equal(ev[0]!.detail.resolution, 'rolled-forward');
      assert.equal(ev[0]!.detail.oldMasterRepointed, true);
      assert.ok(ev[0]!.endedAt >= killedAt);
      assert.ok(
        ev[0]!.steps.some((s) => s.name === 'promote' && s.ok),
        'the promotion is made sure of again',
      );
      const alert = alertOf(await c.view(), 'operation-abandoned');
      assert.equal(alert?.record.detail.taskId, sw.task.id);
      assert.equal(alert?.record.detail.resolution, 'rolled-forward');
    } finally {
      await w.stop();
    }
  });

  it('an add whose process died is reported, not guessed: an alert, and mha status shows it', async () => {
    const group = 'g9';
    const p = c.paths.task(group);
    const task: TaskRecord = {
      v: 1,
      id: 'add-1',
      kind: 'add',
      step: 'start replication',
      oldMaster: null,
      candidate: c.nodes[0]!,
      startedAt: Date.now(),
      worker: 'cli:gone:1',
      epoch: 1,
      detail: {},
    };
    await c.zkClient.create(p, encodeRecord(taskSchema, task, p));
    try {
      const alert = await waitFor(
        async () => {
          const nd = await c.zkClient.getOrNull(c.paths.watchDown(group, 'operation-abandoned'));
          return nd === null
            ? null
            : (JSON.parse(nd.data!.toString('utf8')) as { detail: Record<string, unknown> });
        },
        { timeoutMs: 15000, what: 'watch_down/g9__operation-abandoned' },
      );
      assert.equal(alert.detail.taskId, 'add-1');
      assert.equal(alert.detail.resolution, 'none');
      assert.match(String(alert.detail.why), /mha add died at step 'start replication'/);
      // Nothing was guessed: the task is still there, no group was registered.
      assert.notEqual(await c.zkClient.exists(p), null);
      assert.equal(await c.zkClient.exists(c.paths.metaGroup(group)), null);

      const text = await runMha(['status', '--no-mysql', '--config', config]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(
        text.stdout,
        /group g9 \(not registered\): task add at step 'start replication' by cli:gone:1, .*NO LOCK HOLDER/,
      );
      assert.match(text.stdout, /ALERT operation-abandoned/);
      const json = await runMha(['status', group, '--no-mysql', '--json', '--config', config]);
      assert.equal(json.code, 0, json.stderr);
      const r = JSON.parse(json.stdout) as {
        groups: unknown[];
        openTasks: Array<{ group: string; lock: unknown }>;
      };
      assert.deepEqual(r.groups, []);
      assert.deepEqual(
        r.openTasks.map((t) => [t.group, t.lock]),
        [[group, null]],
      );
    } finally {
      await c.zkClient.deleteIfExists(p);
      await c.zkClient.deleteIfExists(c.paths.watchDown(group, 'operation-abandoned'));
    }
  });
  it('killed before the promotion together with the old master (its host crashed): handed over to a failover', async () => {
    const before = await c.master();
    const old = before.node;
    const w = await c.startWriter();
    try {
      await w.waitForAcks(20);
      const sw = await pausedSwitchover('catchup');
      // The CLI, the old master's mysqld and its heartbeat client all die at once.
      const killedAt = await sw.kill();
      await c.client(old)!.kill('SIGKILL');
      await c.instance(old).kill();
      const after = await masterAt(
        c,
        before.epoch + 1,
        30000,
        'the abandoned switchover resolved by a failover',
      );
      assert.notEqual(after.node, old);
      assert.equal(after.reason, 'failover');
      await w.waitForAcks(20);
      await c.assertInvariants({ master: after.node, writer: w, noLostRows: true });

      const events = (await c.history()).filter((e) => e.epoch === before.epoch + 1);
      assert.deepEqual(
        events.map((e) => [e.kind, e.detail.resolution ?? null]),
        [
          ['switchover-abandoned', 'handed-to-failover'],
          ['failover', null],
        ],
      );
      assert.match(String(events[0]!.detail.why), /unreachable.*failing over/);
      assert.ok(events[0]!.endedAt >= killedAt);
      const view = await c.view();
      assert.equal(view.members.find((m) => m.node === old)?.rejoin?.record.newMaster, after.node);
    } finally {
      await w.stop();
    }
  });
});

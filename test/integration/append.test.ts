import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseGtidPos } from '../../core/gtid';
import { withCluster } from '../../devenv/cluster';
import { waitFor } from '../../devenv/wait';
import { startZooKeeper, type ZkCluster } from '../../devenv/zookeeper';

/**
 * Append from the dead master (issue 10 §3): an async group whose replicas stopped receiving while
 * the application went on writing; the master's mysqld dies with its host and agent alive. Every
 * acknowledged row must be on the new master, carrying the old master's own GTIDs, and the agent
 * keeps a 0600 copy of what it handed over.
 */
describe('append from the dead master', () => {
  let zk: ZkCluster;
  before(async () => {
    zk = await startZooKeeper();
  });
  after(async () => {
    await zk?.close();
  });

  it('applies what only the dead master had to the candidate, with the original GTIDs', () =>
    withCluster({ zk, semiSync: false }, async (c) => {
      const [old, ...replicas] = c.nodes as [string, string, string];
      await c.startClients();
      await c.startServer('s1');
      for (const r of replicas) await c.instance(r).query('STOP SLAVE IO_THREAD');
      const acked: number[] = [];
      for (let id = 2_000_000; id < 2_000_040; id++) {
        await c
          .instance(old)
          .query('INSERT INTO app.t (id, node, at) VALUES (?, ?, ?)', [id, old, Date.now()]);
        acked.push(id);
      }
      const [{ pos, sid }] = (await c
        .instance(old)
        .query('SELECT @@gtid_binlog_pos AS pos, @@server_id AS sid')) as [{ pos: string; sid: number }];
      const oldTip = parseGtidPos(pos).find((g) => g.server === Number(sid))!;
      assert.ok(oldTip !== undefined, `the old master's own GTID in ${pos}`);

      await c.instance(old).kill();
      const m = (await c.waitForNewMaster({ notNode: old, timeoutMs: 20000 })).node;

      const rows = await c.rowIds(m);
      assert.deepEqual(
        acked.filter((id) => !rows.has(id)),
        [],
        'every acknowledged row is on the new master',
      );
      const [{ npos }] = (await c.instance(m).query('SELECT @@gtid_binlog_pos AS npos')) as [
        { npos: string },
      ];
      const same = parseGtidPos(npos).find((g) => g.domain === oldTip.domain)!;
      assert.ok(
        same.server === oldTip.server ? same.seq >= oldTip.seq : same.seq > oldTip.seq,
        `the new master's binlog ${npos} holds ${pos}`,
      );

      const ev = (await c.history()).filter((h) => h.kind === 'failover').at(-1)!;
      const appended = ev.detail.appended as {
        kind: string;
        state: string;
        count: number;
        last: string;
        savedTo: string;
      };
      assert.equal(appended.kind, 'answered');
      assert.equal(appended.state, 'done');
      assert.ok(appended.count >= acked.length, `appended ${appended.count} transactions`);
      assert.equal(appended.last, `${oldTip.domain}-${oldTip.server}-${oldTip.seq}`);
      assert.equal(
        path.dirname(appended.savedTo),
        path.join(c.dir, `agent-${old.replace(/[^A-Za-z0-9.-]/g, '_')}`, 'append'),
      );
      assert.equal(fs.statSync(appended.savedTo).mode & 0o777, 0o600);
      assert.match(fs.readFileSync(appended.savedTo, 'utf8'), /gtid_seq_no/);

      // The other replica follows the new master and gets the appended rows too.
      const other = replicas.find((r) => r !== m)!;
      await waitFor(
        async () => {
          const have = await c.rowIds(other);
          return acked.every((id) => have.has(id));
        },
        { timeoutMs: 15000, what: `${other} receives the appended rows from the new master` },
      );
    }));
});

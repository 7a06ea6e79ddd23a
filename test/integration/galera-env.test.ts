import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { startGalera } from '../../devenv/galera';
import { waitFor } from '../../devenv/wait';

/** The Galera test helper itself: what the Galera flavor and routing tests build on. */
describe('test env: startGalera', () => {
  it('forms one Primary Component of size 3, every node Synced, writes replicated everywhere', async (t) => {
    const cluster = await startGalera({ count: 3 });
    try {
      t.diagnostic(`3 Galera nodes Synced in ${cluster.startupMs} ms`);
      assert.equal(new Set(cluster.nodes.map((n) => n.port)).size, 3);
      const states = await Promise.all(cluster.nodes.map((n) => n.wsrepStatus()));
      for (const s of states) {
        assert.equal(s.wsrep_cluster_status, 'Primary');
        assert.equal(s.wsrep_cluster_size, '3');
        assert.equal(s.wsrep_local_state, '4');
        assert.equal(s.wsrep_local_state_comment, 'Synced');
        assert.equal(s.wsrep_ready, 'ON');
      }
      assert.equal(new Set(states.map((s) => s.wsrep_cluster_state_uuid)).size, 1, 'one cluster state');

      const [n0, n1, n2] = cluster.nodes as [
        (typeof cluster.nodes)[number],
        (typeof cluster.nodes)[number],
        (typeof cluster.nodes)[number],
      ];
      await n1.query('CREATE TABLE app.g (id INT PRIMARY KEY, v VARCHAR(20))');
      await n1.query(`INSERT INTO app.g VALUES (1, 'synced')`);
      for (const n of [n0, n2]) {
        await waitFor(async () => (await n.query('SELECT v FROM app.g WHERE id = 1'))[0]?.v === 'synced', {
          timeoutMs: 5000,
          what: `row on ${n.node}`,
        });
      }

      // One node killed: the other two stay a Primary Component and drop it (evs.suspect_timeout).
      await n2.kill();
      await waitFor(async () => (await n0.wsrepStatus()).wsrep_cluster_size === '2', {
        timeoutMs: 20000,
        what: 'the survivors to drop the killed node',
      });
      assert.equal((await n0.wsrepStatus()).wsrep_cluster_status, 'Primary');
      // It rejoins (IST or SST) and is Synced again.
      await n2.start();
      assert.equal((await n2.wsrepStatus()).wsrep_cluster_size, '3');
      assert.equal((await n2.query('SELECT v FROM app.g WHERE id = 1'))[0]?.v, 'synced');
    } finally {
      await cluster.close();
    }
    assert.equal(fs.existsSync(cluster.dir), false, 'close() removes the temp dir');
    assert.ok(cluster.nodes.every((n) => !n.running));
  });
});

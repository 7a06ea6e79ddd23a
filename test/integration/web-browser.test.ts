import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PACKAGE_ROOT } from '../../core/config';
import { startE2E, type E2EWorld } from '../../devenv/e2e';
import { startWeb, type WebProc } from '../../devenv/web';

/**
 * The status page in headless Chromium (Debian's package, driven by playwright-core) on the
 * sandbox's topology — three MariaDB with semi-sync, heartbeat clients, two server workers, a
 * router agent with its HAProxy: the page draws the master, the replicas, the write and read
 * routes and the router's applied epoch; when the master's mysqld is killed, the same page (no
 * reload) shows the new master and the failover's timeline within 2 s of the failover's commit.
 * Screenshots go to .bench/ for a person to look at.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.join(PACKAGE_ROOT, '.bench');

describe('mha web: the page in a browser', () => {
  let w: E2EWorld;
  let web: WebProc;
  let browser: Browser;
  let page: Page;
  let loads = 0;

  before(async () => {
    w = await startE2E({ logLevel: 'warn' });
    web = await startWeb(w.cliConfig, w.c.dir);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('load', () => loads++);
    fs.mkdirSync(SHOTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await web?.close();
    await w?.close();
  });

  it('lists the group on the overview, and filters it out when only unhealthy groups are shown', async () => {
    await page.goto(web.url);
    const row = page.locator(`tr[data-group="${w.c.group}"]`);
    await row.waitFor({ timeout: 5000 });
    assert.equal(await row.getAttribute('data-health'), 'ok');
    await page.locator('#unhealthy').check();
    assert.equal(await row.isHidden(), true);
    await page.locator('#unhealthy').uncheck();
    await page.locator('#search').fill('no-such-group');
    assert.equal(await row.isHidden(), true);
    await page.locator('#search').fill(w.c.group);
    assert.equal(await row.isVisible(), true);
  });

  it('draws the master, the replicas, the routes and the router; after a master kill, the new master and its timeline within 2 s', async () => {
    const m = await w.c.master();
    const replicas = w.c.nodes.filter((n) => n !== m.node);
    await page.goto(new URL(`/group/${w.c.group}`, web.url).href);
    await page.locator(`[data-node="${m.node}"][data-role="master"]`).waitFor({ timeout: 5000 });
    for (const r of replicas) {
      assert.equal(await page.locator(`[data-node="${r}"][data-role="replica"]`).count(), 1, r);
      assert.equal(
        await page.locator(`[data-edge="repl"][data-from="${m.node}"][data-to="${r}"]`).count(),
        1,
      );
      assert.equal(await page.locator(`[data-edge="read"][data-to="${r}"]`).count(), 1, `read route to ${r}`);
    }
    assert.equal(await page.locator(`[data-edge="write"][data-to="${m.node}"]`).count(), 1);
    assert.equal(await page.locator('[data-router="r1"]').getAttribute('data-epoch'), String(m.epoch));
    assert.equal(
      await page.locator('[data-candidate="yes"]').count(),
      1,
      'a would-promote candidate is marked',
    );
    await page.screenshot({ path: path.join(SHOTS, 'web-group-before.png'), fullPage: true });

    const loadsBefore = loads;
    await w.c.instance(m.node).kill();
    const next = await w.c.waitForNewMaster({ notNode: m.node, timeoutMs: 20_000 });
    const committedAt = Date.now();
    await page
      .locator(`[data-node="${next.node}"][data-role="master"]`)
      .waitFor({ timeout: Math.max(1, committedAt + 2000 - Date.now()) });
    await page
      .locator(`#timeline [data-kind="failover"][data-to="${next.node}"]`)
      .waitFor({ timeout: Math.max(1, committedAt + 2000 - Date.now()) });
    const shownMs = Date.now() - committedAt;
    assert.ok(shownMs <= 2000, `shown ${shownMs} ms after the commit`);
    assert.equal(loads, loadsBefore, 'the page was not reloaded');
    const failover = page.locator(`#timeline [data-kind="failover"][data-to="${next.node}"]`);
    assert.ok((await failover.locator('[data-step]').count()) >= 3, 'the failover shows its steps');
    const outage = Number(await failover.locator('[data-outage-ms]').getAttribute('data-outage-ms'));
    assert.ok(outage > 0, 'the measured outage is shown');
    assert.equal(
      await page
        .locator(`[data-node="${m.node}"]`)
        .getAttribute('data-state')
        .then((s) => s?.startsWith('down')),
      true,
    );
    await page.locator(`[data-edge="write"][data-to="${next.node}"]`).waitFor({ timeout: 2000 });
    process.stdout.write(
      `# web: new master shown ${shownMs} ms after the failover's commit; outage ${outage} ms\n`,
    );
    await page.screenshot({ path: path.join(SHOTS, 'web-group-failover.png'), fullPage: true });
  });
});

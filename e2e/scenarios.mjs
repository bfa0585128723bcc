// The scenarios of the end-to-end suite, run by dashboard.test.mjs (one server) and
// cluster.test.mjs (two instances sharing Postgres and Redis; tab A on one, tab B on
// the other). Each test signs in users of its own and works on a layout of its own.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, openTab, openLink, placesOf, sideBySide, publishDemo, waitUntil, sleep } from './harness.mjs';
import { defineSharingScenarios } from './sharing.mjs';

/**
 * How long a drop in one tab may take to show in the other: a deadline for a condition,
 * generous on purpose (a loaded machine must not fail it), not a latency target. The
 * latency itself (pointerup in one page → new place in the other, both on this machine's
 * clock) is logged after the suite, not asserted.
 */
const PROPAGATION_WAIT_MS = 10000;

/**
 * How far ahead two tabs are given the instant at which both press a key (keyAt): both
 * page.evaluate calls must reach their pages before it, for the two edits to be made on
 * the same version. A stated, generous bound on a round trip to a local page.
 */
const SAME_MOMENT_LEAD_MS = 2000;

/**
 * defineScenarios registers the suite. env() answers {a, b}: the server of tab A and
 * the server of tab B (the same one in the single-server variant).
 * opts: {skip, setup: async () => env, teardown: async () => void}.
 */
export function defineScenarios(variant, { skip, setup, teardown }) {
  describe(`e2e (${variant})`, { skip }, () => {
    let env;
    let browser;
    const tabs = [];
    const timings = [];

    const open = async (server, user, opts) => {
      const t = await openTab(browser, server.url, user, opts);
      tabs.push(t);
      return t;
    };

    before(async () => {
      env = await setup();
      browser = await launchBrowser();
    }, { timeout: 180000 });

    afterEach(async () => {
      // Every test closes its tabs, pass or fail; page errors fail the test that made them.
      const errors = tabs.flatMap((t) => t.page.errors.map((e) => `${t.user}: ${e}`));
      await Promise.all(tabs.splice(0).map((t) => t.close()));
      assert.deepEqual(errors.filter((e) => !/WebSocket connection to .* failed|net::ERR_CONNECTION_(REFUSED|RESET)/.test(e)), [], 'page errors');
    }, { timeout: 30000 });

    after(async () => {
      await Promise.all(tabs.splice(0).map((t) => t.close()));
      await browser?.close().catch(() => {});
      await teardown();
      if (timings.length) process.stderr.write(`e2e (${variant}) drag propagation, pointerup → other tab: ${timings.join(' ms, ')} ms\n`);
    }, { timeout: 60000 });

    /** converge waits until every tab shows the server's layout, nothing pending. */
    async function converge(user, layoutId, list, what = 'the tabs to show the server layout') {
      let server;
      await waitUntil(
        async () => {
          server = await env.a.layout(user, layoutId);
          const want = placesOf(server);
          for (const t of list) {
            if (!(await t.settled())) return false;
            if ((await t.version()) !== server.version) return false;
            assert.deepEqual(await t.places(), want);
          }
          // Both instances answer the same (the cluster variant).
          if (env.b !== env.a) assert.deepEqual(placesOf(await env.b.layout(user, layoutId)), want);
          return true;
        },
        { timeout: 10000, what },
      );
      return server;
    }

    /**
     * assertSameBase checks the premise of the same-moment tests: both keyAt results (ra,
     * rb) were made on version `base`. `late` (ms after the agreed instant the call reached
     * the page; negative: early) says why, when they were not.
     */
    function assertSameBase(base, ra, rb) {
      for (const [tab, r] of [['A', ra], ['B', rb]]) {
        assert.equal(r.base, base, `tab ${tab}'s key press was made on version ${r.base}, want ${base}: it reached the page ${r.late} ms after the agreed instant (lead ${SAME_MOMENT_LEAD_MS} ms)`);
      }
    }

    // ---------------------------------------------------------------------------

    it('a drag in tab A shows in tab B (latency logged), and both tabs end equal to GET /layouts/:id', { timeout: 60000 }, async () => {
      const user = 'alice';
      const l = await env.a.createLayout(user);
      const A = await open(env.a, user, { layout: l.id });
      const B = await open(env.b, user, { layout: l.id });
      for (const t of [A, B]) {
        await t.page.waitForFunction(() => document.querySelector('#presence')?.dataset.presenceClients === '2', null, { timeout: 10000 });
        assert.equal(await t.page.getAttribute('#presence', 'data-presence-users'), '1');
      }
      const counter = await A.widgetIdByTitle('Requests served');
      const clock = await A.widgetIdByTitle('Server time');
      const start = await A.places();
      assert.deepEqual(start[counter], { x: 0, y: 0, w: 3, h: 2 });
      assert.deepEqual(start[clock], { x: 3, y: 0, w: 3, h: 2 });

      // Swap the counter and the clock in three drags, each seen by the other tab:
      // A: counter below the grid; B: clock to the top left; A: counter to the clock's old place.
      const moves = [
        { from: A, to: B, id: counter, dx: 0, dy: 7, want: { x: 0, y: 7 } },
        { from: B, to: A, id: clock, dx: -3, dy: 0, want: { x: 0, y: 0 } },
        { from: A, to: B, id: counter, dx: 3, dy: -7, want: { x: 3, y: 0 } },
      ];
      for (const m of moves) {
        await m.to.watchPlace(m.id, m.want);
        const upAt = await m.from.drag(m.id, m.dx, m.dy);
        // The dragging tab shows the drop at once (its pending edit).
        const mine = (await m.from.places())[m.id];
        assert.deepEqual({ x: mine.x, y: mine.y }, m.want, 'the dragging tab shows the drop');
        // Waits (up to PROPAGATION_WAIT_MS) for the other tab to show the drop; how long
        // it took is recorded and logged, not asserted.
        const seenAt = await m.to.placeSeenAt(PROPAGATION_WAIT_MS);
        timings.push(seenAt - upAt);
      }
      const server = await converge(user, l.id, [A, B]);
      assert.deepEqual(placesOf(server)[counter], { x: 3, y: 0, w: 3, h: 2 });
      assert.deepEqual(placesOf(server)[clock], { x: 0, y: 0, w: 3, h: 2 });
      assert.equal(server.version, l.version + 3, 'one version per drag');
      for (const t of [A, B]) assert.equal(await t.conflictShown(), false);

      const where = (s) => (env.a === env.b ? '' : ` on ${s.name} (${new URL(s.url).host})`);
      const path = await sideBySide(
        browser,
        `${variant}-drag`,
        { tab: A, caption: `Tab A: ${user}${where(env.a)}, after dragging “Requests served”` },
        { tab: B, caption: `Tab B: ${user}${where(env.b)}, the same layout, live` },
      );
      const published = variant === 'single' ? publishDemo(path) : null;
      process.stderr.write(`e2e: screenshot ${path}${published ? ` (copied to ${published.dest}, ${published.bytes} bytes)` : ''}\n`);
    });

    it('two tabs move different widgets at the same moment: both moves survive', { timeout: 60000 }, async () => {
      const user = 'carol';
      const l = await env.a.createLayout(user);
      const A = await open(env.a, user, { layout: l.id });
      const B = await open(env.b, user, { layout: l.id });
      const notes = await A.widgetIdByTitle('Notes');
      const clock = await A.widgetIdByTitle('Server time');
      const start = await A.places();

      // Both key presses are made at one instant, each on the version both tabs have.
      const at = Date.now() + SAME_MOMENT_LEAD_MS;
      const [ra, rb] = await Promise.all([A.keyAt(notes, 'ArrowDown', at), B.keyAt(clock, 'ArrowRight', at)]);
      assertSameBase(l.version, ra, rb);

      const server = await converge(user, l.id, [A, B]);
      const want = { ...start, [notes]: { ...start[notes], y: 3 }, [clock]: { ...start[clock], x: 4 } };
      assert.deepEqual(placesOf(server), want, 'both moves are in the server layout');
      assert.equal(server.version, l.version + 2);
      // Made on one base, the second to arrive was rebased on the first by the server.
      const acks = (await Promise.all([A, B].map((t) => t.page.evaluate(() => window.__e2e.messages.filter((m) => m.type === 'ack'))))).flat();
      assert.equal(acks.length, 2, `two acks: ${JSON.stringify(acks)}`);
      assert.equal(acks.filter((a) => a.rebased).length, 1, `one of the two edits was rebased: ${JSON.stringify(acks)}`);
      for (const t of [A, B]) assert.equal(await t.conflictShown(), false, 'no conflict notice');
      await sideBySide(browser, `${variant}-concurrent-moves`, { tab: A, caption: `Tab A: ${user} moved “Notes” down` }, { tab: B, caption: `Tab B: ${user} moved “Server time” right, at the same moment` });
    });

    it('two tabs move the same widget at the same moment: one wins, the other shows the notice, both end consistent', { timeout: 60000 }, async () => {
      const user = 'dave';
      const l = await env.a.createLayout(user);
      const A = await open(env.a, user, { layout: l.id });
      const B = await open(env.b, user, { layout: l.id });
      const clock = await A.widgetIdByTitle('Server time');
      assert.deepEqual((await A.places())[clock], { x: 3, y: 0, w: 3, h: 2 });

      const at = Date.now() + SAME_MOMENT_LEAD_MS;
      const [ra, rb] = await Promise.all([A.keyAt(clock, 'ArrowRight', at), B.keyAt(clock, 'ArrowLeft', at)]);
      assertSameBase(l.version, ra, rb);

      const server = await converge(user, l.id, [A, B]);
      assert.equal(server.version, l.version + 1, 'exactly one of the two edits committed');
      const x = server.items[clock].x;
      assert.ok(x === 4 || x === 2, `the clock is where one tab put it (x=${x})`);
      const [winner, loser] = x === 4 ? [A, B] : [B, A];
      await loser.page.locator('#conflict-notice[role="alert"]').waitFor({ state: 'visible', timeout: 10000 });
      const text = await loser.page.locator('#conflict-text').textContent();
      assert.match(text, /Server time/, 'the notice names the widget');
      assert.equal(await winner.conflictShown(), false, 'the winning tab shows no notice');
      const dropped = await loser.page.evaluate(() => window.__e2e.conflicts.filter((c) => c.action === 'dropped').length);
      assert.equal(dropped, 1);
      for (const t of [A, B]) assert.deepEqual((await t.places())[clock], { x, y: 0, w: 3, h: 2 });
      await sideBySide(
        browser,
        `${variant}-conflict`,
        { tab: winner, caption: `${winner === A ? 'Tab A' : 'Tab B'}: ${user}'s move won` },
        { tab: loser, caption: `${loser === A ? 'Tab A' : 'Tab B'}: the same widget moved at the same moment lost, with a notice` },
      );
    });

    it('widget data updates live, without a page reload', { timeout: 60000 }, async () => {
      const user = 'frank';
      const l = await env.a.createLayout(user);
      const A = await open(env.a, user, { layout: l.id });
      const B = await open(env.b, user, { layout: l.id });
      const counter = await A.widgetIdByTitle('Requests served');
      const series = await A.widgetIdByTitle('Latency p99 (ms)');
      for (const t of [A, B]) await t.page.evaluate(() => (window.__e2e.marker = 'no reload'));
      // A fetched widget's data arrives, then changes twice (the demo sources refresh
      // every 2 s), in both tabs: watched at once.
      const watch = (t, id) => {
        const seen = [];
        return waitUntil(
          async () => {
            // What a person sees: the counter's number, the series' line.
            const v = await t.page.evaluate((id) => {
              const tile = document.querySelector(`#grid [data-widget-id="${id}"]`);
              return tile.querySelector('.stat-value')?.textContent ?? tile.querySelector('svg.series polyline')?.getAttribute('points') ?? null;
            }, id);
            if (v && seen.at(-1) !== v) seen.push(v);
            return seen.length >= 3;
          },
          // Two refreshes take about 4 s; the deadline is generous for a loaded machine.
          { timeout: 30000, interval: 100, what: `widget ${id} in ${t === A ? 'tab A' : 'tab B'} to show three different values` },
        );
      };
      await Promise.all([A, B].flatMap((t) => [watch(t, counter), watch(t, series)]));
      for (const t of [A, B]) {
        assert.equal(await t.page.evaluate(() => window.__e2e.marker), 'no reload', 'the page was not reloaded');
        const navs = await t.page.evaluate(() => performance.getEntriesByType('navigation').map((n) => n.type));
        assert.deepEqual(navs, ['navigate']);
      }
      const counterNow = Number((await A.tile(counter).locator('.stat-value').textContent()).replace(/,/g, ''));
      assert.ok(Number.isFinite(counterNow) && counterNow > 0, `the counter shows a number (${counterNow})`);
      await sideBySide(browser, `${variant}-live-data`, { tab: A, caption: `Tab A: ${user}, widgets refreshing live` }, { tab: B, caption: `Tab B: ${user}` });
    });

    it("another user's tab never sees this user's layout", { timeout: 60000 }, async () => {
      const alice = 'alice';
      const mine = await env.a.createLayout(alice);
      const A = await open(env.a, alice, { layout: mine.id });
      // Bob asks for alice's layout by its id in the address.
      const B = await open(env.b, 'bob', { wait: false, layout: mine.id });
      await B.waitLive(null);
      const bobLayout = await B.layoutId();
      assert.notEqual(bobLayout, mine.id, "bob's page shows a layout of his own");
      const options = await B.page.$$eval('#layout-select option', (os) => os.map((o) => o.value));
      assert.ok(!options.includes(mine.id), "alice's layout is not in bob's list");
      const alicesWidgets = Object.keys(await A.places());
      const bobsWidgets = Object.keys(await B.places());
      assert.equal(bobsWidgets.filter((w) => alicesWidgets.includes(w)).length, 0, "none of alice's widgets is on bob's page");
      const bobStart = await B.places();

      // Alice edits while bob watches his page.
      const counter = await A.widgetIdByTitle('Requests served');
      await A.drag(counter, 0, 7);
      await converge(alice, mine.id, [A]);

      // The server refuses bob her layout, over the socket and over REST.
      const sub = await B.page.evaluate(async (id) => {
        try {
          await window.dashsync.subscribeLayout(id, {});
          return { ok: true };
        } catch (err) {
          return { ok: false, code: err.code };
        }
      }, mine.id);
      assert.equal(sub.ok, false, 'bob cannot subscribe to alice\'s layout');
      assert.ok(['not_found', 'forbidden'].includes(sub.code), `refused with ${sub.code}`);
      const rest = await env.b.api('bob', 'GET', `/dashboard/layouts/${mine.id}`);
      assert.ok(rest.status === 404 || rest.status === 403, `GET as bob: ${rest.status}`);

      const leaked = await B.page.evaluate(
        ({ layout, widgets }) =>
          window.__e2e.messages.filter((m) => m.channel === `layout:${layout}` || widgets.some((w) => m.channel === `widget:${w}`)),
        { layout: mine.id, widgets: alicesWidgets },
      );
      assert.deepEqual(leaked.filter((m) => m.type !== 'error'), [], "no message of alice's layout or widgets reached bob's page");
      assert.deepEqual(await B.places(), bobStart, "bob's page is unchanged");
      assert.equal(await B.layoutId(), bobLayout);
      assert.equal(await A.page.getAttribute('#presence', 'data-presence-users'), '1', 'bob is not on alice\'s layout');
      assert.equal(await B.page.getAttribute('#presence', 'data-presence-users'), '1');
      assert.ok(!(await B.page.locator('#whoami').textContent()).includes('alice'));
      await sideBySide(browser, `${variant}-other-user`, { tab: A, caption: 'Tab A: alice' }, { tab: B, caption: 'Tab B: bob (never sees alice’s layout)' });
    });

    // Sharing (SPEC §10): alice's tabs on A's server, the others' on B's.
    defineSharingScenarios({
      variant,
      env: () => env,
      browser: () => browser,
      open,
      openLink: async (url, opts) => {
        const t = await openLink(browser, url, opts);
        tabs.push(t);
        return t;
      },
      converge,
      waitMs: PROPAGATION_WAIT_MS,
    });

    // Last: it restarts tab A's server.
    it('a tab that lost its connection (server restart) reconnects, resumes, shows the other tab\'s edits; its offline edits are sent once', { timeout: 90000 }, async () => {
      const user = 'erin';
      const l = await env.a.createLayout(user);
      const A = await open(env.a, user, { layout: l.id });
      const B = await open(env.b, user, { layout: l.id });
      const notes = await A.widgetIdByTitle('Notes');
      const clock = await A.widgetIdByTitle('Server time');
      const start = await A.places();
      await A.page.evaluate(() => (window.__e2e.marker = 'no reload'));

      await env.a.stop();
      await A.waitState(['closed', 'connecting'], 10000);
      if (env.b === env.a) await B.waitState(['closed', 'connecting'], 10000);

      // Tab A, disconnected, moves the notes down: shown at once, kept pending.
      await A.press(notes, 'ArrowDown');
      assert.deepEqual((await A.places())[notes], { ...start[notes], y: start[notes].y + 1 });
      const offline = await A.page.evaluate((id) => window.dashsync.layoutDoc(id).pending.map((e) => ({ editId: e.editId, state: e.state })), l.id);
      assert.equal(offline.length, 1, 'the move waits in tab A');
      const socketsBefore = A.page.sockets.length;
      assert.equal(A.editsSent().filter((m) => m.editId === offline[0].editId).length, 0, 'not sent while offline');
      // Meanwhile tab B moves the clock (on the other instance it commits at once).
      await B.press(clock, 'ArrowRight');
      if (env.b !== env.a) {
        await waitUntil(async () => (await env.b.layout(user, l.id)).version === l.version + 1, { timeout: 10000, what: "tab B's edit to commit" });
        // Tab A, still offline, does not have it.
        assert.deepEqual((await A.places())[clock], start[clock]);
      }

      await env.a.start();
      await A.waitState('open', 20000);
      await B.waitState('open', 20000);
      const server = await converge(user, l.id, [A, B], 'both tabs to show both edits after the reconnect');
      const want = { ...start, [notes]: { ...start[notes], y: start[notes].y + 1 }, [clock]: { ...start[clock], x: start[clock].x + 1 } };
      assert.deepEqual(placesOf(server), want, 'both edits are in the server layout');
      assert.equal(server.version, l.version + 2, 'each edit committed once');

      // Not doubled: the history holds one version per edit, each with its one op.
      const history = await env.a.history(user, l.id);
      const newer = history.filter((c) => c.version > l.version).sort((a, b) => a.version - b.version);
      assert.equal(newer.length, 2, `two versions after the start: ${JSON.stringify(newer)}`);
      const paths = newer.flatMap((c) => c.ops.map((o) => o.path)).sort();
      assert.deepEqual(paths, [`/items/${clock}/x`, `/items/${notes}/y`].sort());
      const byA = newer.find((c) => c.ops.some((o) => o.path === `/items/${notes}/y`));
      assert.equal(byA.editId, offline[0].editId, "tab A's version carries its offline edit's id");
      // Tab A sent its offline edit once, on the socket opened after the restart.
      const sends = A.editsSent().filter((m) => m.editId === offline[0].editId);
      assert.equal(sends.length, 1, `tab A sent its offline edit once: ${JSON.stringify(sends)}`);
      assert.ok(sends[0].socket >= socketsBefore, 'it was sent after the reconnect');
      // Tab A resumed from its version (no reload, no fresh snapshot needed).
      assert.equal(await A.page.evaluate(() => window.__e2e.marker), 'no reload');
      const causes = await A.page.evaluate(() => window.__e2e.causes.map((c) => c.cause));
      assert.ok(causes.includes('resume'), `tab A resumed (causes: ${causes.join(',')})`);
      // A moment later nothing more has been committed or sent. A negative check needs a
      // wait: half a second, in which tab A (settled, nothing pending, no timer for the
      // edit) has no reason to send anything; a late duplicate within it fails the test.
      await sleep(500);
      assert.equal((await env.a.layout(user, l.id)).version, l.version + 2);
      assert.equal(A.editsSent().filter((m) => m.editId === offline[0].editId).length, 1, 'still sent once');
      for (const t of [A, B]) assert.equal(await t.conflictShown(), false);
      await sideBySide(browser, `${variant}-reconnect`, { tab: A, caption: `Tab A: ${user}, back after the server restarted` }, { tab: B, caption: `Tab B: ${user}` });
    });
  });
}

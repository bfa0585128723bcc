// The sharing scenarios of the end-to-end suite (SPEC §10), registered by
// defineScenarios (scenarios.mjs) inside its suite, so they run on one server and on
// the cluster (alice's tab on instance A, the others' on instance B): sharing in the
// Share dialog, co-editing across users, a viewer who cannot move anything, the link
// page, and access that is removed while the layout is open.

import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import { placesOf, sideBySide, pageShot, publishDoc, waitUntil, sleep } from './harness.mjs';

/**
 * defineSharingScenarios registers the tests. ctx: {variant, env() → {a, b}, browser(),
 * open(server, user, opts) → Tab, openLink(url) → Tab, converge(user, layoutId, tabs),
 * waitMs} (waitMs: the generous deadline for a change to show in another tab).
 */
export function defineSharingScenarios(ctx) {
  const { variant, open, openLink, converge, waitMs } = ctx;
  const timings = [];

  after(() => {
    if (timings.length) process.stderr.write(`e2e (${variant}) sharing, pointerup → other user's tab: ${timings.map((t) => `${t.what} ${t.ms} ms`).join(', ')}\n`);
  });

  /** dragSeen drags tile id in `from` and waits (up to waitMs) until `to` shows it at want; the latency is logged, not asserted. */
  async function dragSeen(what, from, to, id, dx, dy, want) {
    await to.watchPlace(id, want);
    const upAt = await from.drag(id, dx, dy);
    const seenAt = await to.placeSeenAt(waitMs);
    timings.push({ what, ms: seenAt - upAt });
  }

  /** share sets access as alice over REST (the dialog itself is tested below). */
  async function share(layoutId, users) {
    const r = await ctx.env().a.api('alice', 'PUT', `/dashboard/layouts/${layoutId}/access`, { users });
    assert.equal(r.status, 200, `PUT access: ${r.status} ${r.text}`);
    return r.body;
  }

  const visible = (tab, sel) => tab.page.locator(sel).isVisible();

  it('alice shares a layout with bob in the Share dialog: it shows in his selector marked with her name, and drags show both ways', { timeout: 90000 }, async () => {
    const { a, b } = ctx.env();
    const l = await a.createLayout('alice');
    const A = await open(a, 'alice', { layout: l.id });
    const B = await open(b, 'bob');
    assert.notEqual(await B.layoutId(), l.id);
    assert.equal(await B.page.locator(`#layout-select option[value="${l.id}"]`).count(), 0, 'not shared yet');

    await A.page.click('#share-btn');
    await A.page.locator('#share-dialog[open]').waitFor();
    await A.page.fill('#share-user', 'bob');
    await A.page.selectOption('#share-role', 'editor');
    await A.page.click('#share-add');
    await A.page.locator('#share-members li[data-user="bob"][data-role="editor"]').waitFor();
    await A.page.click('#share-close');
    const access = await a.api('alice', 'GET', `/dashboard/layouts/${l.id}/access`);
    assert.deepEqual(access.body.users, { bob: 'editor' }, 'the dialog changed the access list');

    // layout.shared on bob's user channel: the layout joins his selector, with its owner.
    const opt = B.page.locator(`#layout-select option[value="${l.id}"]`);
    await opt.waitFor({ state: 'attached', timeout: waitMs });
    assert.equal(await opt.getAttribute('data-owner'), 'alice');
    assert.equal(await opt.getAttribute('data-role'), 'editor');
    assert.match(await opt.textContent(), /alice/, 'the option names the owner');
    assert.equal(await B.page.locator(`#layout-select optgroup[label="Shared with you"] option[value="${l.id}"]`).count(), 1);

    await B.page.selectOption('#layout-select', l.id);
    await B.waitLive(l.id);
    assert.equal(await B.page.getAttribute('#grid', 'data-role'), 'editor');
    assert.equal((await B.page.locator('#role-badge').textContent()).trim(), 'Editor');
    for (const sel of ['#share-btn', '#delete-btn', '#default-btn']) assert.equal(await visible(B, sel), false, `${sel} is the owner's`);
    assert.equal(await visible(B, '#rename-btn'), true, 'an editor may rename (an edit, SPEC §10)');
    assert.deepEqual(await B.places(), placesOf(l), "bob's tab shows alice's layout");
    await B.page.waitForFunction(() => document.querySelector('#presence')?.dataset.presenceUsers === '2', null, { timeout: waitMs });

    const counter = await A.widgetIdByTitle('Requests served');
    const clock = await A.widgetIdByTitle('Server time');
    // Bob's tab shows her widgets' titles and data (read one by one: they are hers).
    assert.equal(await B.widgetIdByTitle('Requests served'), counter);
    await B.page.waitForFunction((id) => document.querySelector(`#grid [data-widget-id="${id}"] .stat-value`), counter, { timeout: 15000 });

    await dragSeen('alice → bob', A, B, counter, 0, 7, { x: 0, y: 7 });
    await dragSeen('bob → alice', B, A, clock, -3, 0, { x: 0, y: 0 });
    const server = await converge('alice', l.id, [A, B]);
    assert.deepEqual(placesOf(server)[counter], { x: 0, y: 7, w: 3, h: 2 });
    assert.deepEqual(placesOf(server)[clock], { x: 0, y: 0, w: 3, h: 2 });
    const history = await a.history('alice', l.id);
    assert.equal(history.find((c) => c.version === server.version).author, 'bob', "bob's edit is authored by bob");
    for (const t of [A, B]) assert.equal(await t.conflictShown(), false);
    await sideBySide(ctx.browser(), `${variant}-shared-coedit`, { tab: A, caption: 'alice, owner: bob’s drag of “Server time” arrived' }, { tab: B, caption: 'bob, editor of alice’s layout' });
  });

  it('carol, a viewer, watches live but cannot move a tile: the tile stays and no edit is sent; made an editor, she can', { timeout: 90000 }, async () => {
    const { a, b } = ctx.env();
    const l = await a.createLayout('alice');
    await share(l.id, { carol: 'viewer' });
    const A = await open(a, 'alice', { layout: l.id });
    const C = await open(b, 'carol', { layout: l.id });
    assert.equal(await C.page.getAttribute('#grid', 'data-role'), 'viewer');
    assert.equal(await visible(C, '#role-badge'), true, 'the view-only badge shows');
    assert.equal((await C.page.locator('#role-badge').textContent()).trim(), 'View only');
    for (const sel of ['#share-btn', '#delete-btn', '#default-btn', '#rename-btn']) assert.equal(await visible(C, sel), false, `${sel} is hidden for a viewer`);
    assert.equal(await C.page.locator('#grid .resize-handle:visible').count(), 0, 'no resize handle');

    const counter = await C.widgetIdByTitle('Requests served');
    const start = await C.places();
    // A drag with the mouse, a resize from the corner, arrow keys: nothing moves.
    await C.drag(counter, 2, 3);
    const box = await C.tile(counter).boundingBox();
    await C.page.mouse.move(box.x + box.width - 4, box.y + box.height - 4);
    await C.page.mouse.down();
    await C.page.mouse.move(box.x + box.width + 200, box.y + box.height + 150, { steps: 5 });
    await C.page.mouse.up();
    await C.press(counter, 'ArrowRight');
    await C.press(counter, 'Shift+ArrowDown');
    assert.deepEqual(await C.places(), start, 'the tile did not move in her tab');
    // Alice's drag shows in carol's tab. It is also the barrier of the negative check:
    // carol's page sends an edit in the same task as the input, so any it had made would
    // have reached the socket long before alice's change came back through the server.
    await dragSeen('alice → carol (viewer)', A, C, counter, 0, 7, { x: 0, y: 7 });
    const sent = C.page.sockets.flatMap((s) => s.sent);
    assert.deepEqual(sent.filter((m) => m.type === 'edit'), [], `no edit frame left carol's page: ${JSON.stringify(sent.map((m) => m.type))}`);
    assert.deepEqual(sent.filter((m) => m.type === 'refresh'), [], 'no refresh either (a viewer may not force one)');
    assert.equal((await a.layout('alice', l.id)).version, l.version + 1, "only alice's drag committed");
    assert.deepEqual(await C.page.evaluate(() => window.__e2e.messages.filter((m) => m.type === 'error')), [], 'no refusal needed: nothing was sent');

    // Alice makes her an editor: the `access` message lifts view-only mode at once.
    await share(l.id, { carol: 'editor' });
    await C.page.waitForFunction(() => document.querySelector('#grid').dataset.role === 'editor', null, { timeout: waitMs });
    assert.equal((await C.page.locator('#role-badge').textContent()).trim(), 'Editor');
    assert.ok((await C.page.evaluate(() => window.__e2e.events)).some((e) => e.type === 'access' && e.role === 'editor' && e.previous === 'viewer'));
    await dragSeen('carol (now editor) → alice', C, A, counter, 3, 0, { x: 3, y: 7 });
    await converge('alice', l.id, [A, C]);
    await sideBySide(ctx.browser(), `${variant}-viewer`, { tab: A, caption: 'alice, owner' }, { tab: C, caption: 'carol, made an editor after watching as a viewer' });
  });

  it('a link page shows the layout live, read only, with no toolbar; revoking the link ends it, with no reconnect', { timeout: 120000 }, async () => {
    const { a, b } = ctx.env();
    const l = await a.createLayout('alice');
    const A = await open(a, 'alice', { layout: l.id });

    // The Share dialog: two people and a link.
    await A.page.click('#share-btn');
    await A.page.locator('#share-dialog[open]').waitFor();
    for (const [user, role] of [['bob', 'editor'], ['carol', 'viewer']]) {
      await A.page.fill('#share-user', user);
      await A.page.selectOption('#share-role', role);
      await A.page.click('#share-add');
      await A.page.locator(`#share-members li[data-user="${user}"][data-role="${role}"]`).waitFor();
    }
    await A.page.selectOption('#share-link-ttl', '604800');
    await A.page.click('#share-link-create');
    await A.page.locator('#share-links li[data-link-id]').waitFor();
    const url = await A.page.inputValue('#share-link-url');
    const linkId = await A.page.getAttribute('#share-links li[data-link-id]', 'data-link-id');
    assert.match(url, new RegExp(`^${a.url}/\\?link=dsl_[^&]+$`), `the link page address: ${url}`);
    const access = (await a.api('alice', 'GET', `/dashboard/layouts/${l.id}/access`)).body;
    assert.deepEqual(access.users, { bob: 'editor', carol: 'viewer' });
    assert.deepEqual(access.links.map((x) => x.id), [linkId]);
    const sharePng = await pageShot(A, `${variant}-share-dialog`);
    const sharePub = variant === 'single' ? publishDoc(sharePng, 'share.png') : null;
    process.stderr.write(`e2e: screenshot ${sharePng}${sharePub ? ` (copied to ${sharePub.dest}, ${sharePub.bytes} bytes)` : ''}\n`);
    await A.page.click('#share-close');

    // The link page, on the other instance in the cluster variant.
    const linkURL = url.replace(a.url, b.url);
    const K = await openLink(linkURL, { layout: l.id });
    assert.equal(await K.page.evaluate(() => document.body.classList.contains('kiosk')), true);
    for (const sel of ['.topbar', '#toolbar', '#share-btn', '#layout-select']) assert.equal(await visible(K, sel), false, `${sel} is not shown`);
    assert.equal(await K.page.getAttribute('#grid', 'data-role'), 'viewer');
    assert.equal(await K.page.locator('#grid .resize-handle:visible').count(), 0);
    assert.deepEqual(await K.places(), placesOf(l));
    const counter = await A.widgetIdByTitle('Requests served');
    await K.page.waitForFunction((id) => document.querySelector(`#grid [data-widget-id="${id}"] .stat-value`), counter, { timeout: 15000 });
    await A.page.waitForFunction(() => document.querySelector('#presence li[data-user^="link:"]'), null, { timeout: waitMs });

    // Let the clock and the series draw, then the picture of the link page.
    await K.page.waitForFunction(() => document.querySelector('.clock-time')?.textContent && document.querySelector('svg.series'), null, { timeout: 15000 });
    const kioskPng = await pageShot(K, `${variant}-kiosk`);
    const kioskPub = variant === 'single' ? publishDoc(kioskPng, 'kiosk.png') : null;
    process.stderr.write(`e2e: screenshot ${kioskPng}${kioskPub ? ` (copied to ${kioskPub.dest}, ${kioskPub.bytes} bytes)` : ''}\n`);

    await dragSeen('alice → link page', A, K, counter, 3, 3, { x: 3, y: 3 });
    await K.drag(counter, 3, 0); // read only: nothing happens
    await sleep(300);
    assert.deepEqual((await K.places())[counter], { x: 3, y: 3, w: 3, h: 2 });

    // It called only what a link may: GET of its layout and of its widgets; on the
    // socket, subscribe to the layout and its widgets, and ping.
    const widgetIds = Object.keys(l.items);
    for (const r of K.page.requests) {
      const ok = r.method === 'GET' && (r.path === `/api/dashboard/layouts/${l.id}` || widgetIds.some((w) => r.path === `/api/dashboard/widgets/${w}`) || r.path === '/api/ws');
      assert.ok(ok, `the link page asked ${r.method} ${r.path}`);
    }
    const allowed = new Set([`layout:${l.id}`, ...widgetIds.map((w) => `widget:${w}`)]);
    for (const m of K.page.sockets.flatMap((s) => s.sent)) {
      assert.ok(m.type === 'ping' || (m.type === 'subscribe' && allowed.has(m.channel)), `the link page sent ${JSON.stringify(m)}`);
    }
    for (const s of K.page.sockets) assert.match(s.url, /access_token=dsl_/);

    // Alice revokes the link in the dialog: the link page says so and stops for good.
    await A.page.click('#share-btn');
    await A.page.click(`#share-links li[data-link-id="${linkId}"] .link-revoke`);
    await A.page.locator(`#share-links li[data-link-id="${linkId}"]`).waitFor({ state: 'detached' });
    await A.page.click('#share-close');
    await K.page.locator('#link-ended[data-reason="revoked"]').waitFor({ state: 'visible', timeout: waitMs });
    const ended = await K.page.evaluate(() => ({ ended: window.dashsync.ended, state: window.dashsync.state }));
    assert.deepEqual(ended, { ended: { reason: 'revoked', code: 4003 }, state: 'closed' }, 'the server closed with 4003 and the client ended');
    assert.equal(await K.page.locator('#grid [data-widget-id]').count(), 0, 'the layout is gone from the page');
    const sockets = K.page.sockets.length;
    // A negative check needs a wait: 2 s is four times the first reconnect delay.
    await sleep(2000);
    assert.equal(K.page.sockets.length, sockets, 'no reconnect after the revocation');

    // Opened again, the revoked link says so without opening a socket (GET answers 401).
    await K.page.reload({ waitUntil: 'domcontentloaded' });
    await K.page.locator('#link-ended[data-reason="unauthorized"]').waitFor({ state: 'visible', timeout: 15000 });
    await sleep(500);
    assert.equal(K.page.sockets.length, sockets, 'no socket for a revoked link');
    // The browser logs the expected 401 of that GET as a console error: only that one.
    const unexpected = K.page.errors.filter((e) => !/status of 401/.test(e));
    assert.deepEqual(unexpected, []);
    K.page.errors.length = 0;
    await sideBySide(ctx.browser(), `${variant}-link-revoked`, { tab: A, caption: 'alice revoked the link' }, { tab: K, caption: 'the link page, opened again' });
  });

  it("removing bob's access while he has the layout open shows him a notice and the layout goes away", { timeout: 90000 }, async () => {
    const { a, b } = ctx.env();
    const l = await a.createLayout('alice');
    await share(l.id, { bob: 'editor' });
    const A = await open(a, 'alice', { layout: l.id });
    const B = await open(b, 'bob', { layout: l.id });
    assert.equal(await B.page.getAttribute('#grid', 'data-role'), 'editor');

    await A.page.click('#share-btn');
    await A.page.click('#share-members li[data-user="bob"] .member-remove');
    await A.page.locator('#share-members li[data-user="bob"]').waitFor({ state: 'detached' });
    await A.page.click('#share-close');
    assert.deepEqual((await a.api('alice', 'GET', `/dashboard/layouts/${l.id}/access`)).body.users, {});

    const notice = B.page.locator('#access-notice[role="alert"]');
    await notice.waitFor({ state: 'visible', timeout: waitMs });
    assert.equal(await notice.getAttribute('data-reason'), 'revoked');
    const text = await B.page.locator('#access-text').textContent();
    assert.match(text, /alice/, `the notice names the owner: ${text}`);
    assert.match(text, /Live demo/, `the notice names the layout: ${text}`);
    // The layout goes away: from the grid (his own default is shown) and the selector.
    await waitUntil(async () => (await B.layoutId()) !== l.id, { timeout: waitMs, what: "bob's page to leave the layout" });
    await B.waitLive(null);
    await waitUntil(async () => (await B.page.locator(`#layout-select option[value="${l.id}"]`).count()) === 0, { timeout: waitMs, what: 'the layout to leave his selector' });
    assert.equal(await B.page.evaluate((id) => window.dashsync.layout(id), l.id), undefined, 'the client forgot it');
    const events = await B.page.evaluate(() => window.__e2e.events.filter((e) => e.type === 'unsubscribed' && e.layoutId));
    assert.deepEqual(events.map((e) => [e.layoutId, e.reason]), [[l.id, 'revoked']]);
    // Nothing of it reaches his page any more, and he never asks for it again.
    const before = await B.page.evaluate(() => window.__e2e.messages.length);
    const counter = await A.widgetIdByTitle('Requests served');
    await A.drag(counter, 0, 7);
    await converge('alice', l.id, [A]);
    await sleep(500);
    const late = await B.page.evaluate(({ n, id }) => window.__e2e.messages.slice(n).filter((m) => m.channel === `layout:${id}`), { n: before, id: l.id });
    assert.deepEqual(late, [], 'no message of the layout after the notice');
    const resubs = B.page.sockets.flatMap((s) => s.sent).filter((m) => m.type === 'subscribe' && m.channel === `layout:${l.id}`);
    assert.equal(resubs.length, 1, 'subscribed once, never again');
    await sideBySide(ctx.browser(), `${variant}-access-removed`, { tab: A, caption: 'alice removed bob in the Share dialog' }, { tab: B, caption: 'bob: the notice, and his own layout' });
  });

  it('alice deletes a layout bob has open: he is told it was deleted, she moves to her default without a notice', { timeout: 90000 }, async () => {
    const { a, b } = ctx.env();
    await a.createLayout('alice'); // not her last one: the last cannot be deleted
    const l = await a.createLayout('alice');
    await share(l.id, { bob: 'viewer' });
    const A = await open(a, 'alice', { layout: l.id });
    const B = await open(b, 'bob', { layout: l.id });
    assert.equal(await B.page.getAttribute('#grid', 'data-role'), 'viewer');

    await A.page.click('#delete-btn');
    await A.page.click('#delete-btn'); // two steps, without a blocking dialog
    await waitUntil(async () => (await A.layoutId()) !== l.id, { timeout: waitMs, what: "alice's page to leave the deleted layout" });
    await A.waitLive(null);
    assert.equal(await A.page.locator(`#layout-select option[value="${l.id}"]`).count(), 0);
    const def = (await a.api('alice', 'GET', '/dashboard/layouts')).body.layouts.find((x) => x.isDefault);
    assert.equal(await A.layoutId(), def.id, 'she is on her default layout');
    assert.equal(await visible(A, '#access-notice'), false, 'no notice for her own delete');

    const notice = B.page.locator('#access-notice[role="alert"]');
    await notice.waitFor({ state: 'visible', timeout: waitMs });
    assert.equal(await notice.getAttribute('data-reason'), 'deleted');
    assert.match(await B.page.locator('#access-text').textContent(), /deleted by alice/);
    await waitUntil(async () => (await B.layoutId()) !== l.id, { timeout: waitMs, what: "bob's page to leave the deleted layout" });
    await B.waitLive(null);
    await waitUntil(async () => (await B.page.locator(`#layout-select option[value="${l.id}"]`).count()) === 0, { timeout: waitMs, what: 'the layout to leave his selector' });
  });
}

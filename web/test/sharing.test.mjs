// Sharing and roles in the client (SPEC §10): the role a layout handle knows, role
// changes, subscriptions the server ends, the user channel's share events, and link
// connections that must stop rather than reconnect forever.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { DashSync, canEdit, isLinkToken } from '../dashsync.js';
import { FakeClock, fakeSocketClass, flush, layoutDoc } from './helpers.mjs';

const LINK = 'dsl_01a2-link_c2VjcmV0';

// connected returns a client on a fake socket and clock, open with client id c-1.
async function connected(opts = {}, user = 'bob') {
  const clock = new FakeClock();
  const { FakeSocket, sockets } = fakeSocketClass();
  const ds = new DashSync({
    url: 'ws://h/api/ws', token: 'tok', WebSocket: FakeSocket, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout,
    now: clock.now, random: () => 0, pingIntervalMs: 0, reconnect: { initialMs: 100, maxMs: 1000, jitter: 0 }, ...opts,
  });
  const events = [];
  for (const type of ['access', 'unsubscribed', 'ended', 'user', 'error']) ds.on(type, (p) => events.push({ ...(p instanceof Error ? { code: p.code } : p), type }));
  const opened = ds.connect();
  await flush();
  sockets[0].hello('c-1', user);
  await opened;
  return { ds, clock, sockets, events, of: (type) => events.filter((e) => e.type === type) };
}

const subOf = (ws, channel) => [...ws.sentOf('subscribe')].reverse().find((m) => m.channel === channel);

// subscribed answers the layout subscribe of ws with a snapshot and role.
async function subscribe(ds, ws, role, handlers = {}, id = 'L1') {
  const p = ds.subscribeLayout(id, handlers);
  ws.frame({ id: subOf(ws, `layout:${id}`).id, type: 'subscribed', channel: `layout:${id}`, version: 3,
    snapshot: layoutDoc(3, { a: { x: 0, y: 0, w: 2, h: 2 } }, { id }), presence: [], role });
  return p;
}

test('canEdit and isLinkToken', () => {
  assert.equal(canEdit('owner'), true);
  assert.equal(canEdit('editor'), true);
  assert.equal(canEdit('viewer'), false);
  assert.equal(canEdit(null), true, 'not known yet: the server decides');
  assert.equal(isLinkToken(LINK), true);
  assert.equal(isLinkToken('eyJhbGciOi.x.y'), false);
  assert.equal(isLinkToken(undefined), false);
});

test('the handle knows its role from subscribed; access changes it, with onRole and an access event', async () => {
  const { ds, sockets, of } = await connected();
  const ws = sockets[0];
  const roles = [];
  const h = await subscribe(ds, ws, 'viewer', { onRole: (role, info) => roles.push([role, info.previous]) });
  assert.equal(h.role, 'viewer');
  assert.equal(h.canEdit, false);
  assert.deepEqual(of('access'), [], 'the first role heard is not a change');

  ws.frame({ type: 'access', channel: 'layout:L1', role: 'editor' });
  assert.equal(h.role, 'editor');
  assert.equal(h.canEdit, true);
  ws.frame({ type: 'access', channel: 'layout:L1', role: 'editor' }); // no change: no event
  ws.frame({ type: 'access', channel: 'layout:L9', role: 'viewer' }); // not subscribed: ignored
  assert.deepEqual(roles, [['editor', 'viewer']]);
  assert.deepEqual(of('access'), [{ type: 'access', layoutId: 'L1', role: 'editor', previous: 'viewer' }]);
  ds.close();
});

test('a viewer edit is refused here: nothing shown, nothing sent', async () => {
  const { ds, sockets } = await connected();
  const ws = sockets[0];
  const h = await subscribe(ds, ws, 'viewer');
  await assert.rejects(h.edit([{ op: 'replace', path: '/items/a/x', value: 4 }]), (e) => e.code === 'forbidden');
  assert.equal(ws.sentOf('edit').length, 0, 'no edit sent');
  assert.equal(h.layout.items.a.x, 0, 'not shown');
  assert.equal(h.pending, 0);

  // Promoted to editor: edits go out.
  ws.frame({ type: 'access', channel: 'layout:L1', role: 'editor' });
  const r = h.edit([{ op: 'replace', path: '/items/a/x', value: 4 }]);
  assert.equal(ws.sentOf('edit').length, 1);
  assert.equal(h.layout.items.a.x, 4);
  ws.frame({ type: 'op', channel: 'layout:L1', version: 4, ops: ws.last('edit').ops, author: 'bob', client: 'c-1' },
    { id: ws.last('edit').id, type: 'ack', version: 4 });
  assert.equal((await r).status, 'committed');
  ds.close();
});

test('down to viewer: queued edits are rejected, the one in flight is left to the server', async () => {
  const { ds, sockets } = await connected();
  const ws = sockets[0];
  const h = await subscribe(ds, ws, 'editor');
  const first = h.edit([{ op: 'replace', path: '/items/a/x', value: 1 }]);
  const second = h.edit([{ op: 'replace', path: '/items/a/y', value: 1 }]);
  assert.equal(ws.sentOf('edit').length, 1, 'one in flight, one queued');
  ws.frame({ type: 'access', channel: 'layout:L1', role: 'viewer' });
  await assert.rejects(second, (e) => e.code === 'forbidden');
  assert.equal(h.pending, 1);
  assert.deepEqual(h.layout.items.a, { x: 1, y: 0, w: 2, h: 2 }, 'the queued edit is no longer shown');
  ws.frame({ id: ws.last('edit').id, type: 'error', error: { code: 'forbidden', message: 'the viewer role may not edit this layout' } });
  await assert.rejects(first, (e) => e.code === 'forbidden');
  assert.equal(h.pending, 0);
  assert.deepEqual(h.layout.items.a, { x: 0, y: 0, w: 2, h: 2 });
  assert.equal(ws.sentOf('edit').length, 1, 'the queued edit was never sent');
  ds.close();
});

test('unsubscribed by the server (revoked): handlers told, edits rejected, and no resubscribe after a reconnect', async () => {
  const { ds, clock, sockets, of } = await connected();
  let ws = sockets[0];
  const ended = [];
  const widgetEnded = [];
  const h = await subscribe(ds, ws, 'editor', { onUnsubscribed: (info) => ended.push(info) });
  const other = await subscribe(ds, ws, 'owner', {}, 'L2');
  const wp = ds.subscribeWidget('wa', { onData: () => {}, onUnsubscribed: (info) => widgetEnded.push(info) });
  ws.frame({ id: subOf(ws, 'widget:wa').id, type: 'subscribed', channel: 'widget:wa', data: null });
  await wp;
  const edit = h.edit([{ op: 'replace', path: '/items/a/x', value: 5 }]);

  ws.frame(
    { type: 'unsubscribed', channel: 'layout:L1', reason: 'revoked' },
    { type: 'unsubscribed', channel: 'widget:wa', reason: 'revoked' },
  );
  await assert.rejects(edit, (e) => e.code === 'revoked');
  assert.deepEqual(ended, [{ layoutId: 'L1', reason: 'revoked' }]);
  assert.deepEqual(widgetEnded, [{ widgetId: 'wa', reason: 'revoked' }]);
  assert.deepEqual(of('unsubscribed').map((e) => [e.channel, e.reason]), [['layout:L1', 'revoked'], ['widget:wa', 'revoked']]);
  assert.equal(h.ended, 'revoked');
  assert.equal(h.canEdit, false);
  assert.equal(ds.layout('L1'), undefined, 'forgotten');
  assert.ok(ds.layout('L2'), 'the other layout is untouched');
  assert.equal(ds.state, 'open', 'the connection stays open');

  ws.drop(1006);
  await clock.advance(clock.pending()[0]);
  ws = sockets.at(-1);
  ws.hello('c-2', 'bob');
  await flush();
  assert.deepEqual(ws.sentOf('subscribe').map((m) => m.channel), ['layout:L2'], 'only what the server did not end is resubscribed');
  assert.equal(other.ended, null);
  ds.close();
});

test('unsubscribed with reason deleted, before the layout had arrived, rejects its subscribe', async () => {
  const { ds, sockets, of } = await connected();
  const ws = sockets[0];
  const p = ds.subscribeLayout('L1', {});
  ws.frame({ type: 'unsubscribed', channel: 'layout:L1', reason: 'deleted' });
  await assert.rejects(p, (e) => e.code === 'deleted');
  assert.equal(of('unsubscribed')[0].reason, 'deleted');
  ds.close();
});

test('user channel events layout.shared and layout.unshared reach the app', async () => {
  const { ds, sockets, of } = await connected();
  const ws = sockets[0];
  const got = [];
  ds.subscribeUser((m) => got.push([m.event, m.layout.id, m.role]));
  ws.frame({ id: subOf(ws, 'user').id, type: 'subscribed', channel: 'user' });
  ws.frame(
    { type: 'event', channel: 'user', event: 'layout.shared', layout: { id: 'L7', name: 'Ops', owner: 'alice', role: 'viewer' }, role: 'viewer' },
    { type: 'event', channel: 'user', event: 'layout.unshared', layout: { id: 'L7' } },
  );
  assert.deepEqual(got, [['layout.shared', 'L7', 'viewer'], ['layout.unshared', 'L7', undefined]]);
  assert.deepEqual(of('user').map((e) => e.event), ['layout.shared', 'layout.unshared']);
  ds.close();
});

test('a link connection closed with 4003 (revoked) ends: no reconnect, even with getToken', async () => {
  let asked = 0;
  const { ds, clock, sockets, of } = await connected({ token: LINK, getToken: async () => (asked++, LINK) }, 'link:01a2-link');
  assert.equal(ds.isLink, true);
  const ws = sockets[0];
  const h = await subscribe(ds, ws, 'viewer');
  ws.frame({ type: 'unsubscribed', channel: 'layout:L1', reason: 'revoked' });
  ws.drop(4003, 'the link was revoked');
  assert.equal(ds.state, 'closed');
  assert.deepEqual(ds.ended, { reason: 'revoked', code: 4003 });
  assert.deepEqual(of('ended'), [{ type: 'ended', reason: 'revoked', code: 4003 }]);
  assert.equal(h.ended, 'revoked');
  assert.deepEqual(clock.pending(), [], 'no reconnect scheduled');
  await clock.advance(60000);
  assert.equal(sockets.length, 1, 'no new attempt');
  assert.equal(asked, 0, 'no new token asked for');
  await assert.rejects(ds.connect(), (e) => e.code === 'closed');
  assert.equal(sockets.length, 1);
});

test('a link connection whose layout was deleted ends with reason deleted; 4001 on a link ends as expired', async () => {
  {
    const { ds, sockets, clock } = await connected({ token: LINK }, 'link:x');
    await subscribe(ds, sockets[0], 'viewer');
    sockets[0].frame({ type: 'unsubscribed', channel: 'layout:L1', reason: 'deleted' });
    sockets[0].drop(4003, "the link's layout was deleted");
    assert.deepEqual(ds.ended, { reason: 'deleted', code: 4003 });
    assert.deepEqual(clock.pending(), []);
  }
  {
    const { ds, sockets, clock } = await connected({ token: LINK }, 'link:x');
    sockets[0].drop(4001, 'token expired');
    assert.deepEqual(ds.ended, { reason: 'expired', code: 4001 });
    assert.deepEqual(clock.pending(), []);
  }
});

test('a user token closed with 4003 still gets a new token and reconnects (unchanged)', async () => {
  let issued = 0;
  const { ds, clock, sockets, of } = await connected({ token: 'user-token', getToken: async () => `user-token-${++issued}` });
  assert.equal(ds.isLink, false);
  sockets[0].drop(4003, 'forbidden');
  assert.equal(ds.ended, null);
  assert.deepEqual(of('ended'), []);
  await clock.advance(clock.pending()[0]);
  assert.equal(issued, 1);
  assert.equal(sockets.length, 2);
  ds.close();
});

test('checkToken: after an attempt fails before hello, a token it calls bad ends the client instead of looping', async () => {
  let good = true;
  const checked = [];
  const { ds, clock, sockets, of } = await connected({ token: LINK, checkToken: async (t) => (checked.push(t), good) }, 'link:x');
  sockets[0].drop(1001); // a server restart: after it, the attempt is refused
  await clock.advance(clock.pending()[0]);
  assert.deepEqual(checked, [], 'an attempt after a connection that had said hello is not checked');
  assert.equal(sockets.length, 2);
  sockets[1].drop(1006); // refused (a 401 looks like this in a browser)
  await clock.advance(clock.pending()[0]);
  assert.equal(checked.length, 1, 'checked before the next attempt');
  assert.equal(sockets.length, 3, 'still good: tried again');
  sockets[2].drop(1006);
  good = false;
  await clock.advance(clock.pending()[0]);
  assert.equal(checked.length, 2);
  assert.equal(sockets.length, 3, 'no attempt with a bad token');
  assert.equal(ds.state, 'closed');
  assert.deepEqual(ds.ended, { reason: 'unauthorized', code: 0 });
  assert.equal(of('ended').length, 1);
  assert.deepEqual(clock.pending(), [], 'nothing scheduled');
});

test('checkToken that throws (the network) counts as still good', async () => {
  const { ds, clock, sockets } = await connected({ checkToken: async () => { throw new Error('offline'); } });
  sockets[0].drop(1006);
  await clock.advance(clock.pending()[0]);
  sockets[1].drop(1006);
  await clock.advance(clock.pending()[0]);
  assert.equal(sockets.length, 3);
  assert.equal(ds.ended, null);
  ds.close();
});

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { backoffDelay, Backoff, DashSync, DEFAULT_BACKOFF, tokenExpiry } from '../dashsync.js';
import { FakeClock, fakeSocketClass, flush, layoutDoc } from './helpers.mjs';

test('backoffDelay: exponential, capped, jittered within (ceiling × (1 − jitter), ceiling]', () => {
  const opts = { initialMs: 500, maxMs: 30000, factor: 2, jitter: 0.5 };
  const ceilings = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
  ceilings.forEach((c, attempt) => {
    assert.equal(backoffDelay(attempt, opts, () => 0), c, `attempt ${attempt} without jitter`);
    assert.equal(backoffDelay(attempt, opts, () => 0.999999), Math.round(c * (1 - 0.5 * 0.999999)), `attempt ${attempt} full jitter`);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(attempt, opts);
      assert.ok(d > c * 0.5 - 1 && d <= c, `attempt ${attempt}: ${d} outside (${c / 2}, ${c}]`);
    }
  });
  assert.equal(backoffDelay(10_000, opts, () => 0), 30000, 'no overflow on huge attempts');
  assert.equal(backoffDelay(3, { ...opts, jitter: 0 }, () => 0.7), 4000, 'no jitter: exact');
  assert.deepEqual(DEFAULT_BACKOFF, opts);
});

test('Backoff: grows per failed attempt, starts over after reset', () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0 });
  assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000]);
  b.reset();
  assert.equal(b.next(), 100);
});

// connected returns a client on a fake socket and clock, open with client id c-1.
async function connected(opts = {}) {
  const clock = new FakeClock();
  const { FakeSocket, sockets } = fakeSocketClass();
  const ds = new DashSync({
    url: 'ws://h/api/ws', token: 'tok', WebSocket: FakeSocket, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout,
    now: clock.now, random: () => 0, pingIntervalMs: 0, reconnect: { initialMs: 100, maxMs: 1000, jitter: 0.5 }, ...opts,
  });
  const states = [];
  ds.on('state', (s) => states.push(s));
  const opened = ds.connect();
  await flush();
  sockets[0].hello('c-1');
  await opened;
  return { ds, clock, sockets, states };
}

test('reconnect: back-off grows while attempts fail and resets after a successful connect', async () => {
  const { ds, clock, sockets, states } = await connected();
  assert.equal(ds.state, 'open');
  assert.match(sockets[0].url, /access_token=tok/);

  const delays = [];
  ds.on('reconnect', (r) => delays.push(r.delayMs));
  sockets[0].drop(1006);
  assert.equal(ds.state, 'closed');
  for (let i = 0; i < 5; i++) {
    const n = sockets.length;
    await clock.advance(clock.pending()[0]);
    assert.equal(sockets.length, n + 1, 'a new attempt after the delay');
    assert.equal(ds.state, 'connecting');
    sockets.at(-1).drop(1006); // refused
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000], 'doubling, capped at maxMs (random() = 0: no jitter)');

  await clock.advance(clock.pending()[0]);
  sockets.at(-1).hello('c-2');
  await flush();
  assert.equal(ds.state, 'open');
  assert.equal(ds.clientId, 'c-2');
  sockets.at(-1).drop(1001); // server going away
  assert.equal(delays.at(-1), 100, 'the schedule started over');
  assert.deepEqual(states.slice(0, 4), ['connecting', 'open', 'closed', 'connecting']);
  ds.close();
  assert.equal(ds.state, 'closed');
  assert.deepEqual(clock.pending(), [], 'close stops reconnecting');
});

test('reconnect: layouts resubscribe with since, widgets and the user channel again, pending edits are resent', async () => {
  const { ds, clock, sockets } = await connected();
  ds.subscribeUser(() => {});
  const widgetData = [];
  ds.subscribeWidget('w9', (d) => widgetData.push(d.data.value));
  const sub = ds.subscribeLayout('L1', {});
  let ws = sockets[0];
  const byChannel = (sock, ch) => sock.sentOf('subscribe').find((m) => m.channel === ch);
  ws.frame({ id: byChannel(ws, 'user').id, type: 'subscribed', channel: 'user' });
  ws.frame({ id: byChannel(ws, 'widget:w9').id, type: 'subscribed', channel: 'widget:w9', data: { widgetId: 'w9', data: { value: 1 } } });
  ws.frame({ id: byChannel(ws, 'layout:L1').id, type: 'subscribed', channel: 'layout:L1', version: 5,
    snapshot: layoutDoc(5, { a: { x: 0, y: 0, w: 2, h: 2 } }), presence: [{ user: 'alice', clients: ['c-1'] }] });
  const layout = await sub;
  assert.equal(byChannel(ws, 'layout:L1').since, undefined, 'the first subscribe takes a snapshot');

  const result = ds.edit('L1', [{ op: 'replace', path: '/items/a/x', value: 3 }]);
  const sent = ws.last('edit');
  assert.deepEqual({ base: sent.base, editId: sent.editId, channel: sent.channel }, { base: 5, editId: result.editId, channel: 'layout:L1' });
  assert.equal(layout.layout.items.a.x, 3, 'shown at once');

  ws.drop(1006); // the ack is lost
  assert.equal(layout.layout.items.a.x, 3, 'still shown while offline');
  await clock.advance(clock.pending()[0]);
  ws = sockets.at(-1);
  ws.hello('c-2');
  await flush();
  assert.deepEqual(ws.sentOf('subscribe').map((m) => [m.channel, m.since]),
    [['user', undefined], ['layout:L1', 5], ['widget:w9', undefined]]);
  assert.equal(ws.sentOf('edit').length, 0, 'edits wait for the resume');

  // The resume: version 6 came from someone else; ours never reached the server.
  ws.frame({ id: byChannel(ws, 'layout:L1').id, type: 'subscribed', channel: 'layout:L1', version: 6,
    ops: [{ version: 6, ops: [{ op: 'replace', path: '/items/a/y', value: 4 }], author: 'bob', client: 'c-7' }],
    presence: [{ user: 'alice', clients: ['c-2'] }, { user: 'bob', clients: ['c-7'] }] });
  const resent = ws.last('edit');
  assert.equal(resent.editId, sent.editId, 'the same editId: the server dedups it');
  assert.equal(resent.base, 6, 'version 6 was checked here (no overlap) and follows on from its base');
  assert.deepEqual(layout.layout.items.a, { x: 3, y: 4, w: 2, h: 2 });
  assert.deepEqual(layout.presence, [{ user: 'alice', clients: ['c-2'] }, { user: 'bob', clients: ['c-7'] }]);

  ws.frame(
    { type: 'op', channel: 'layout:L1', version: 7, ops: sent.ops, author: 'alice', client: 'c-2' },
    { id: resent.id, type: 'ack', version: 7, rebased: true },
  );
  assert.deepEqual(await result, { editId: sent.editId, status: 'committed', version: 7, rebased: true });
  assert.equal(layout.pending, 0);

  ws.frame({ id: byChannel(ws, 'widget:w9').id, type: 'subscribed', channel: 'widget:w9', data: { widgetId: 'w9', data: { value: 2 } } });
  ws.frame({ type: 'data', channel: 'widget:w9', data: { widgetId: 'w9', data: { value: 3 } } });
  assert.deepEqual(widgetData, [1, 2, 3]);
  ds.close();
});

test('an op that leaves a gap makes the client resubscribe from its version', async () => {
  const { ds, sockets } = await connected();
  const sub = ds.subscribeLayout('L1', {});
  const ws = sockets[0];
  ws.frame({ id: ws.last('subscribe').id, type: 'subscribed', channel: 'layout:L1', version: 2, snapshot: layoutDoc(2, {}), presence: [] });
  await sub;
  ws.frame({ type: 'op', channel: 'layout:L1', version: 4, ops: [], author: 'bob', client: 'c-7' });
  assert.equal(ws.last('unsubscribe').channel, 'layout:L1');
  assert.equal(ws.last('subscribe').since, undefined, 'a fresh snapshot');
  ds.close();
});

function jwt(expSeconds, sub = 'alice') {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp: expSeconds })}.sig`;
}

test('tokens: refreshed with auth before they expire, and fetched anew after close 4001', async () => {
  const clock = new FakeClock();
  const now = clock.now();
  let issued = 0;
  const getToken = async () => jwt(Math.floor(clock.now() / 1000) + 600, `alice`) + `#${++issued}`;
  const { FakeSocket, sockets } = fakeSocketClass();
  const ds = new DashSync({ url: 'ws://h/api/ws', getToken, WebSocket: FakeSocket, ...clock, random: () => 0, pingIntervalMs: 0 });
  const opened = ds.connect();
  await flush();
  assert.equal(issued, 1, 'no token given: one is fetched first');
  assert.match(sockets[0].url, /access_token=/);
  sockets[0].hello('c-1');
  await opened;
  assert.equal(tokenExpiry(ds.token), Math.floor(now / 1000) * 1000 + 600_000);

  // 60 s before expiry, an auth message with a new token; no reconnect.
  await clock.advance(540_000);
  const auth = sockets[0].last('auth');
  assert.ok(auth, 'auth sent');
  assert.equal(issued, 2);
  sockets[0].frame({ id: auth.id, type: 'authed', exp: new Date(clock.now() + 600_000).toISOString() });
  await flush();
  assert.equal(sockets.length, 1);

  // The server closes with 4001: a new token before the next attempt.
  sockets[0].drop(4001, 'token expired');
  await clock.advance(clock.pending()[0]);
  assert.equal(issued, 3);
  assert.equal(sockets.length, 2);
  assert.match(sockets[1].url, /%233$|#3$|%233/);
  ds.close();
});

test('without getToken, close 4001 is terminal: state closed, an error, no reconnect', async () => {
  const { ds, clock, sockets } = await connected();
  const errors = [];
  ds.on('error', (e) => errors.push(e.code));
  sockets[0].drop(4001, 'token expired');
  assert.equal(ds.state, 'closed');
  assert.deepEqual(errors, ['unauthorized']);
  assert.deepEqual(clock.pending(), []);
});

test('a ping without answer drops the connection and reconnects', async () => {
  const { ds, clock, sockets } = await connected({ pingIntervalMs: 1000, pingTimeoutMs: 500 });
  await clock.advance(1000);
  const ping = sockets[0].last('ping');
  assert.ok(ping);
  await clock.advance(500);
  assert.equal(sockets[0].closed?.code, 4000);
  assert.equal(ds.state, 'closed');
  await clock.advance(clock.pending()[0]);
  assert.equal(sockets.length, 2);
  ds.close();
});

test('requests in flight reject with disconnected when the connection drops', async () => {
  const { ds, sockets } = await connected();
  const p = ds.refreshWidget('w1');
  sockets[0].drop(1006);
  await assert.rejects(p, (e) => e.code === 'disconnected');
  ds.close();
});

test('unsubscribing a layout waits until its pending edits are settled', async () => {
  const { ds, sockets } = await connected();
  const ws = sockets[0];
  const sub = ds.subscribeLayout('L1', {});
  ws.frame({ id: ws.last('subscribe').id, type: 'subscribed', channel: 'layout:L1', version: 1, snapshot: layoutDoc(1, { a: { x: 0, y: 0, w: 2, h: 2 } }), presence: [] });
  const layout = await sub;
  const result = layout.edit([{ op: 'replace', path: '/items/a/y', value: 2 }]);
  const edit = ws.last('edit');
  layout.unsubscribe();
  assert.equal(ws.sentOf('unsubscribe').length, 0, 'not while the edit is in flight');
  // The ack overtakes the op (as it may through Redis).
  ws.frame({ id: edit.id, type: 'ack', version: 2, rebased: false });
  assert.equal(ws.sentOf('unsubscribe').length, 0, 'not before its version arrived');
  ws.frame({ type: 'op', channel: 'layout:L1', version: 2, ops: edit.ops, author: 'alice', client: 'c-1' });
  assert.equal((await result).status, 'committed');
  assert.equal(ws.last('unsubscribe')?.channel, 'layout:L1');
  assert.equal(ds.layout('L1'), undefined);
  ds.close();
});

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { splitFrame, parseFrame, DashSync } from '../dashsync.js';
import { FakeClock, fakeSocketClass, flush, layoutDoc } from './helpers.mjs';

test('splitFrame: one message per line, empty lines skipped', () => {
  assert.deepEqual(splitFrame('{"a":1}'), ['{"a":1}']);
  assert.deepEqual(splitFrame('{"a":1}\n{"b":2}\n'), ['{"a":1}', '{"b":2}']);
  assert.deepEqual(splitFrame('\n\n{"a":1}\n\n{"b":2}'), ['{"a":1}', '{"b":2}']);
  assert.deepEqual(splitFrame(''), []);
  assert.deepEqual(splitFrame(undefined), []);
});

test('splitFrame: a newline escaped inside a JSON string does not split', () => {
  const text = JSON.stringify({ type: 'data', data: { text: 'line 1\nline 2' } }) + '\n' + JSON.stringify({ type: 'pong' });
  const { messages, errors } = parseFrame(text);
  assert.equal(errors.length, 0);
  assert.equal(messages.length, 2);
  assert.equal(messages[0].data.text, 'line 1\nline 2');
  assert.equal(messages[1].type, 'pong');
});

test('parseFrame: a bad line is reported and the others still arrive, in order', () => {
  const { messages, errors } = parseFrame('{"n":1}\nnot json\n[1,2]\n{"n":2}');
  assert.deepEqual(messages, [{ n: 1 }, { n: 2 }]);
  assert.equal(errors.length, 2);
  assert.equal(errors[0].line, 'not json');
});

test('client: every message of a multi-message frame is handled, in order', async () => {
  const clock = new FakeClock();
  const { FakeSocket, sockets } = fakeSocketClass();
  const ds = new DashSync({ url: 'ws://h/api/ws', token: 't', WebSocket: FakeSocket, ...clock, pingIntervalMs: 0 });
  const opened = ds.connect();
  await flush();
  const ws = sockets[0];
  ws.hello('c-1');
  await opened;

  const changes = [];
  const sub = ds.subscribeLayout('L1', { onChange: (l, info) => changes.push([info.cause, l.version, l.items.a.x]) });
  const req = ws.last('subscribe');
  // The subscribe answer and the next two versions in one frame: the ops must not be
  // lost while the answer is handled.
  ws.frame(
    { id: req.id, type: 'subscribed', channel: 'layout:L1', version: 1, snapshot: layoutDoc(1, { a: { x: 0, y: 0, w: 2, h: 2 } }), presence: [] },
    { type: 'op', channel: 'layout:L1', version: 2, ops: [{ op: 'replace', path: '/items/a/x', value: 4 }], author: 'bob', client: 'c-9' },
    { type: 'op', channel: 'layout:L1', version: 3, ops: [{ op: 'replace', path: '/items/a/x', value: 5 }], author: 'bob', client: 'c-9' },
  );
  const handle = await sub;
  assert.equal(handle.version, 3);
  assert.deepEqual(changes, [['snapshot', 1, 0], ['remote', 2, 4], ['remote', 3, 5]]);
  ds.close();
});

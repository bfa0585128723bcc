import { test } from 'node:test';
import assert from 'node:assert/strict';

import { LayoutDoc, applyOps, pathsOverlap, PatchError } from '../dashsync.js';
import { layoutDoc } from './helpers.mjs';

const item = (x, y = 0, w = 2, h = 2) => ({ x, y, w, h });
const rep = (path, value) => ({ op: 'replace', path, value });

// newDoc returns a LayoutDoc at version 1 with items a and b, and the events it emitted.
function newDoc(opts = {}) {
  const events = [];
  let n = 0;
  const doc = new LayoutDoc('L1', { newEditId: () => `e${++n}`, emit: (type, p) => events.push({ type, ...p }), ...opts });
  doc.load(layoutDoc(1, { a: item(0), b: item(4) }));
  return { doc, events, conflicts: () => events.filter((e) => e.type === 'conflict') };
}

const op = (version, ops, client = 'c-other', author = 'bob') => ({ version, ops, client, author });

test('applyOps: add, replace and remove on object members, strictly', () => {
  const d = { items: { a: item(0) }, settings: {} };
  const out = applyOps(d, [
    rep('/items/a/x', 3),
    { op: 'add', path: '/items/b', value: item(1) },
    { op: 'add', path: '/settings/theme', value: 'dark' },
    { op: 'remove', path: '/items/b' },
  ]);
  assert.deepEqual(out, { items: { a: item(3) }, settings: { theme: 'dark' } });
  assert.equal(d.items.a.x, 0, 'the input is not changed');
  assert.throws(() => applyOps(d, [rep('/items/zz/x', 1)]), PatchError);
  assert.throws(() => applyOps(d, [{ op: 'remove', path: '/settings/nope' }]), PatchError);
  assert.throws(() => applyOps(d, [{ op: 'move', path: '/items/a' }]), PatchError);
  const escaped = applyOps({ s: {} }, [{ op: 'add', path: '/s/a~1b~0c', value: 1 }]);
  assert.deepEqual(escaped, { s: { 'a/b~c': 1 } });
  const proto = applyOps({ s: {} }, [{ op: 'add', path: '/s/__proto__', value: { polluted: true } }]);
  assert.equal({}.polluted, undefined);
  assert.deepEqual(Object.keys(proto.s), ['__proto__']);
});

test('pathsOverlap: the server rule (segment-wise prefix)', () => {
  const cases = [
    ['/items/a', '/items/a/x', true],
    ['/items/a/x', '/items/a/x', true],
    ['/items/a/x', '/items/a/y', false],
    ['/items/a/x', '/items/b/x', false],
    ['/items/a', '/items/ab', false],
    ['/settings', '/settings/k', true],
    ['/name', '/columns', false],
  ];
  for (const [a, b, want] of cases) {
    assert.equal(pathsOverlap(a, b), want, `${a} vs ${b}`);
    assert.equal(pathsOverlap(b, a), want, `${b} vs ${a}`);
  }
});

test('a local edit shows at once and stays pending; confirmed is untouched', () => {
  const { doc } = newDoc();
  const e = doc.localEdit([rep('/items/a/x', 5)]);
  assert.equal(doc.visible.items.a.x, 5);
  assert.equal(doc.confirmed.items.a.x, 0);
  assert.equal(doc.pending.length, 1);
  assert.equal(e.base, 1);
  assert.equal(e.state, 'queued');
});

test('a local edit that does not apply to what is visible is refused at once', () => {
  const { doc } = newDoc();
  assert.throws(() => doc.localEdit([rep('/items/nope/x', 1)]), (err) => err.code === 'validation_failed');
  assert.throws(() => doc.localEdit([]), (err) => err.code === 'validation_failed');
  assert.equal(doc.pending.length, 0);
});

test('ops from others apply to confirmed and pending edits are re-applied on top', () => {
  const { doc } = newDoc();
  doc.localEdit([rep('/items/a/x', 5)]);
  doc.receive(op(2, [rep('/items/b/y', 7), rep('/items/a/y', 3)]));
  assert.equal(doc.version, 2);
  assert.deepEqual(doc.confirmed.items.a, item(0, 3));
  assert.deepEqual(doc.visible.items.a, item(5, 3), 'theirs (y) under mine (x)');
  assert.deepEqual(doc.visible.items.b, item(4, 7));
  assert.equal(doc.pending[0].base, 2, 'the queued edit was checked against version 2 and moves on');
});

test('own op then ack: the edit leaves the queue when its op arrives and is never applied twice', async () => {
  const { doc } = newDoc();
  const e = doc.localEdit([rep('/items/a/x', 5)]);
  assert.equal(doc.takeSendable('c-1'), e);
  assert.equal(doc.takeSendable('c-1'), null, 'one edit in flight at a time');

  doc.receive(op(2, [rep('/items/a/x', 5)], 'c-1', 'alice'));
  assert.equal(doc.pending.length, 0, 'its op is in confirmed now');
  assert.equal(doc.visible.items.a.x, 5);

  // Someone else moves it afterwards: if the edit were still re-applied on top, x
  // would show 5 again.
  doc.receive(op(3, [rep('/items/a/x', 9)]));
  assert.equal(doc.visible.items.a.x, 9);

  doc.acked(e.editId, 2, false);
  assert.deepEqual(await e.promise, { editId: 'e1', status: 'committed', version: 2, rebased: false });
  assert.equal(doc.visible.items.a.x, 9);
  assert.equal(doc.version, 3);
});

test('ack then own op: the edit stays shown until confirmed reaches the acked version', async () => {
  const { doc } = newDoc();
  const e = doc.localEdit([rep('/items/a/x', 5)]);
  doc.takeSendable('c-1');
  doc.acked(e.editId, 3, true); // someone else's version 2 is still on its way
  assert.equal(doc.pending.length, 1);
  assert.equal(doc.visible.items.a.x, 5, 'no flicker back to the old value');

  doc.receive(op(2, [rep('/items/b/x', 6)]));
  assert.equal(doc.visible.items.a.x, 5);
  assert.equal(doc.pending.length, 1);

  doc.receive(op(3, [rep('/items/a/x', 5)], 'c-1', 'alice'));
  assert.equal(doc.pending.length, 0);
  assert.deepEqual(await e.promise, { editId: 'e1', status: 'committed', version: 3, rebased: true });
  assert.deepEqual(doc.visible.items, { a: item(5), b: item(6) });
});

test('an ack with no op of its own (a no-op edit) settles once confirmed is there', async () => {
  const { doc } = newDoc();
  const e = doc.localEdit([rep('/items/a/x', 0)]);
  doc.takeSendable('c-1');
  doc.acked(e.editId, 1, false);
  assert.equal(doc.pending.length, 0);
  assert.deepEqual(await e.promise, { editId: 'e1', status: 'unchanged', version: 1, rebased: false });
});

test('the next edit is sent only after the previous one landed, based on its version', async () => {
  const { doc } = newDoc();
  const e1 = doc.localEdit([rep('/items/a/x', 5)]);
  const e2 = doc.localEdit([rep('/items/a/x', 6)]); // the same path: must not conflict with e1
  assert.equal(doc.visible.items.a.x, 6);
  assert.equal(doc.takeSendable('c-1'), e1);
  assert.equal(doc.takeSendable('c-1'), null);
  doc.acked(e1.editId, 2, false);
  assert.equal(doc.takeSendable('c-1'), null, 'e1 acked but its version has not arrived');
  doc.receive(op(2, [rep('/items/a/x', 5)], 'c-1', 'alice'));
  const next = doc.takeSendable('c-1');
  assert.equal(next, e2);
  assert.equal(next.base, 2, 'based on the version that includes e1');
  assert.equal((await e1.promise).status, 'committed');
  assert.equal(doc.visible.items.a.x, 6);
});

test('a queued edit that an op from someone else overlaps is a local conflict: drop', async () => {
  const { doc, conflicts } = newDoc();
  const e1 = doc.localEdit([rep('/items/b/x', 1)]);
  const e2 = doc.localEdit([rep('/items/a/x', 5)], { onConflict: 'drop' });
  doc.takeSendable('c-1'); // e1 in flight, e2 waits
  doc.receive(op(2, [rep('/items/a/x', 8)], 'c-other', 'bob'));
  assert.equal(doc.pending.length, 1, 'e2 dropped, e1 still in flight');
  assert.equal(doc.pending[0], e1);
  assert.equal(doc.visible.items.a.x, 8, 'theirs wins');
  const r = await e2.promise;
  assert.equal(r.status, 'dropped');
  assert.deepEqual(r.conflicts, [{ op: 0, path: '/items/a/x', version: 2, reason: 'overlap' }]);
  const [c] = conflicts();
  assert.equal(c.action, 'dropped');
  assert.equal(c.local, true);
  assert.equal(c.author, 'bob');
  assert.equal(c.editId, e2.editId);
});

test('a server conflict with drop: the edit goes, the caller is told, theirs shows', async () => {
  const { doc, conflicts } = newDoc();
  const e = doc.localEdit([rep('/items/a/x', 5)]);
  doc.takeSendable('c-1');
  // Their version 2 arrives while ours is in flight: ours still shows on top.
  doc.receive(op(2, [rep('/items/a/x', 8)], 'c-other', 'bob'));
  assert.equal(doc.visible.items.a.x, 5);
  doc.conflicted(e.editId, 2, [{ op: 0, path: '/items/a/x', version: 2, reason: 'overlap' }]);
  assert.equal(doc.visible.items.a.x, 8);
  assert.equal(doc.pending.length, 0);
  assert.equal((await e.promise).status, 'dropped');
  assert.equal(conflicts()[0].author, 'bob');
  assert.equal(conflicts()[0].local, false);
});

test('a server conflict with retry: resent with the same editId once the conflicting version is in', async () => {
  const { doc, conflicts } = newDoc();
  const e = doc.localEdit([rep('/items/a/x', 5)], { onConflict: 'retry' });
  doc.takeSendable('c-1');
  doc.conflicted(e.editId, 2, [{ op: 0, path: '/items/a/x', version: 2, reason: 'overlap' }]);
  assert.equal(conflicts()[0].action, 'retried');
  assert.equal(doc.visible.items.a.x, 5, 'still shown: it will be retried');
  assert.equal(doc.takeSendable('c-1'), null, 'waits for version 2');
  doc.receive(op(2, [rep('/items/a/x', 8)], 'c-other', 'bob'));
  assert.equal(doc.pending.length, 1, 'no local conflict against the version it lost to');
  const again = doc.takeSendable('c-1');
  assert.equal(again, e);
  assert.equal(again.editId, 'e1');
  assert.equal(again.base, 2);
  doc.receive(op(3, [rep('/items/a/x', 5)], 'c-1', 'alice'));
  doc.acked(e.editId, 3, false);
  assert.equal((await e.promise).status, 'committed');
  assert.equal(doc.visible.items.a.x, 5);
});

test('retry is dropped when the edit no longer applies, and settles when it changes nothing', async () => {
  const { doc, conflicts } = newDoc();
  const gone = doc.localEdit([rep('/items/a/x', 5)], { onConflict: 'retry' });
  doc.takeSendable('c-1');
  doc.conflicted(gone.editId, 2, [{ op: 0, path: '/items/a', version: 2, reason: 'overlap' }]);
  doc.receive(op(2, [{ op: 'remove', path: '/items/a' }]));
  assert.equal(doc.takeSendable('c-1'), null);
  const r = await gone.promise;
  assert.equal(r.status, 'dropped');
  assert.equal(r.reason, 'not_applicable');
  assert.equal(conflicts().at(-1).action, 'dropped');

  const same = doc.localEdit([rep('/items/b/x', 7)], { onConflict: 'retry' });
  doc.takeSendable('c-1');
  doc.conflicted(same.editId, 3, [{ op: 0, path: '/items/b/x', version: 3, reason: 'overlap' }]);
  doc.receive(op(3, [rep('/items/b/x', 7)]));
  assert.equal(doc.takeSendable('c-1'), null);
  assert.equal((await same.promise).status, 'unchanged');
});

test('the caller decides per conflict with a function', async () => {
  const seen = [];
  const { doc } = newDoc();
  const e = doc.localEdit([rep('/items/a/x', 5)], { onConflict: (c) => (seen.push(c), seen.length < 2 ? 'retry' : 'drop') });
  doc.takeSendable('c-1');
  doc.conflicted(e.editId, 1, [{ op: 0, path: '/items/a/x', version: 1, reason: 'overlap' }]);
  doc.takeSendable('c-1');
  doc.conflicted(e.editId, 1, [{ op: 0, path: '/items/a/x', version: 1, reason: 'overlap' }]);
  assert.equal((await e.promise).status, 'dropped');
  assert.equal(seen.length, 2);
});

test('retries are bounded', async () => {
  const { doc } = newDoc({ maxRetries: 2 });
  const e = doc.localEdit([rep('/items/a/x', 5)], { onConflict: 'retry' });
  for (let i = 0; i < 3; i++) {
    assert.equal(doc.takeSendable('c-1'), e, `attempt ${i + 1}`);
    doc.conflicted(e.editId, 1, [{ op: 0, path: '/items/a/x', version: 1, reason: 'overlap' }]);
  }
  assert.equal((await e.promise).status, 'dropped');
});

test('after a reconnect, an in-flight edit whose op comes with the resume is not resent', async () => {
  const { doc } = newDoc();
  const e = doc.localEdit([rep('/items/a/x', 5)]);
  doc.takeSendable('c-1');
  doc.connectionLost();
  assert.equal(doc.visible.items.a.x, 5, 'still shown while offline');
  // The resume answer carries version 2, committed from the old connection.
  assert.deepEqual(doc.resume([op(2, [rep('/items/a/x', 5)], 'c-1', 'alice')]), {});
  assert.equal(doc.pending.length, 0);
  assert.equal(doc.takeSendable('c-2'), null);
  doc.acked(e.editId, 2, false); // only if a resend happened: harmless
  assert.equal((await e.promise).status, 'committed');
});

test('after a reconnect, an in-flight edit that never committed is resent: same editId, same base', () => {
  const { doc } = newDoc();
  const e = doc.localEdit([rep('/items/a/x', 5)]);
  doc.takeSendable('c-1');
  doc.receive(op(2, [rep('/items/b/y', 1)])); // while in flight: the server checks it
  doc.connectionLost();
  assert.equal(doc.takeSendable('c-2'), null, 'not before the resume');
  doc.resume([op(3, [rep('/items/b/y', 2)])]);
  const again = doc.takeSendable('c-2');
  assert.equal(again, e);
  assert.equal(again.editId, 'e1');
  assert.equal(again.base, 1, 'the server checks every version after the base it was made on');
  assert.deepEqual([...again.sentOn], ['c-1', 'c-2']);
});

test('a resend answered with the original ack (dedup) settles it once its version is in', async () => {
  const { doc } = newDoc();
  const e = doc.localEdit([rep('/items/a/x', 5)]);
  doc.takeSendable('c-1');
  doc.connectionLost();
  doc.load(layoutDoc(4, { a: item(5), b: item(4) }), { reset: true }); // the gap was too long
  assert.equal(doc.visible.items.a.x, 5);
  doc.takeSendable('c-2');
  doc.acked(e.editId, 2, false); // the original version, already part of the snapshot
  assert.equal(doc.pending.length, 0);
  assert.equal((await e.promise).status, 'unchanged');
});

test('a reset snapshot replaces confirmed; pending edits stay on top', () => {
  const { doc } = newDoc();
  doc.localEdit([rep('/items/a/x', 5)]);
  doc.load(layoutDoc(40, { a: item(1, 1), c: item(6) }), { reset: true });
  assert.equal(doc.version, 40);
  assert.deepEqual(doc.confirmed.items, { a: item(1, 1), c: item(6) });
  assert.deepEqual(doc.visible.items, { a: item(5, 1), c: item(6) });
});

test('versions are applied once and in order: duplicates ignored, a gap reported', () => {
  const { doc } = newDoc();
  assert.deepEqual(doc.receive(op(1, [rep('/items/a/x', 9)])), { duplicate: true });
  assert.deepEqual(doc.receive(op(3, [rep('/items/a/x', 9)])), { gap: true });
  assert.equal(doc.version, 1);
  assert.equal(doc.visible.items.a.x, 0);
});

test('an edit refused by the server rejects its promise and disappears', async () => {
  const { doc } = newDoc();
  const e = doc.localEdit([rep('/items/a/w', 50)]);
  doc.takeSendable('c-1');
  const err = Object.assign(new Error('items.a.w must be at most 12'), { code: 'validation_failed' });
  doc.failed(e.editId, err);
  await assert.rejects(e.promise, /at most 12/);
  assert.equal(doc.visible.items.a.w, 2);
});

test('a rate-limited edit is kept and resent after retryAfterMs', () => {
  let now = 1000;
  const { doc } = newDoc({ now: () => now });
  const e = doc.localEdit([rep('/items/a/x', 5)]);
  doc.takeSendable('c-1', now);
  doc.failed(e.editId, { code: 'rate_limited', retryAfterMs: 250 });
  assert.equal(doc.takeSendable('c-1', now), null);
  assert.equal(doc.nextWakeup(), 1250);
  now = 1250;
  assert.equal(doc.takeSendable('c-1', now), e);
});

test('forced edits are never conflicts locally', async () => {
  const { doc } = newDoc();
  doc.localEdit([rep('/items/b/x', 1)]);
  const forced = doc.localEdit([rep('/items/a/x', 5)], { force: true });
  doc.takeSendable('c-1');
  doc.receive(op(2, [rep('/items/a/x', 8)]));
  assert.ok(doc.pending.includes(forced));
  assert.equal(doc.visible.items.a.x, 5);
});

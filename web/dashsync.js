// dashsync.js: the dependency-free client of a dashsync server (SPEC §5), as one ES
// module. It runs in browsers as is (no build step) and in Node ≥ 20 with a WebSocket
// implementation passed in.
//
//   import { DashSync } from '/web/dashsync.js';
//   const ds = new DashSync({ url: '/api/ws', getToken: async () => fetchToken() });
//   ds.on('state', (s) => indicator.dataset.state = s);        // open | connecting | closed
//   await ds.connect();
//   const layout = await ds.subscribeLayout(id, { onChange: (doc) => render(doc) });
//   const result = await layout.edit([{ op: 'replace', path: `/items/${w}/x`, value: 3 }],
//                                    { onConflict: 'drop' });   // or 'retry'
//   ds.subscribeWidget(w, (data) => draw(data.data));
//
// What it does for you:
// - connects with the token in the `access_token` query parameter, reconnects with
//   exponential back-off and jitter (reset once a connection says hello), and after every
//   reconnect resubscribes: layouts with `since` (resume), widgets and the user channel;
// - splits the server's newline-delimited frames into messages;
// - gives a promise per request (subscribe, edit, refresh, auth, ping);
// - keeps a token fresh: with `getToken`, an `auth` message shortly before the token
//   expires, and a new token before reconnecting after close code 4001/4003;
// - keeps each subscribed layout as a LayoutDoc: the confirmed state (the last version
//   the server sent) plus a queue of pending local edits shown on top of it at once
//   (optimistic co-editing; see LayoutDoc for the exact rules);
// - knows the caller's role on each layout (SPEC §10: `subscribed`, then `access`),
//   refuses edits a viewer may not make without sending them, and forgets a layout or
//   widget the server ended (`unsubscribed` with reason revoked or deleted), so it is
//   never resubscribed;
// - with a link token (`dsl_…`), treats the server's close 4003 (the link was revoked,
//   or its layout deleted) and 4001 (it expired) as the end: no reconnect.
//
// The pure parts (parseFrame, backoffDelay, applyOps, pathsOverlap, LayoutDoc) are
// exported for tests and for clients that bring their own transport.

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** DashSyncError is a failed request: `code` is the server's error code (SPEC §4) or one
 * of the client's own: `disconnected`, `timeout`, `closed`, `not_subscribed`. */
export class DashSyncError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = 'DashSyncError';
    this.code = code;
    if (extra.details) this.details = extra.details;
    if (extra.retryAfterMs != null) this.retryAfterMs = extra.retryAfterMs;
  }
}

function errorFromReply(err) {
  const e = err && typeof err === 'object' ? err : {};
  return new DashSyncError(e.code || 'internal', e.message || 'request failed', e);
}

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

/** splitFrame returns the non-empty lines of a server frame. A frame carries one or more
 * JSON messages separated by "\n" (SPEC §5); JSON escapes newlines inside strings, so
 * splitting on "\n" never cuts a message. */
export function splitFrame(text) {
  if (typeof text !== 'string' || text === '') return [];
  return text.split('\n').filter((line) => line.trim() !== '');
}

/** parseFrame splits a frame and parses each message. A line that is not a JSON object
 * goes to `errors` and does not stop the others. */
export function parseFrame(text) {
  const messages = [];
  const errors = [];
  for (const line of splitFrame(text)) {
    try {
      const m = JSON.parse(line);
      if (m && typeof m === 'object' && !Array.isArray(m)) messages.push(m);
      else errors.push({ line, error: new Error('a message must be a JSON object') });
    } catch (error) {
      errors.push({ line, error });
    }
  }
  return { messages, errors };
}

// ---------------------------------------------------------------------------
// Reconnect schedule
// ---------------------------------------------------------------------------

/** The default reconnect schedule: 0.5 s doubling up to 30 s, each delay shortened by a
 * random part of up to half of it (jitter), so a server restart is not met by every
 * client at the same instant. */
export const DEFAULT_BACKOFF = Object.freeze({ initialMs: 500, maxMs: 30000, factor: 2, jitter: 0.5 });

/** backoffDelay is the wait before reconnect attempt `attempt` (0 for the first):
 * ceiling = min(maxMs, initialMs × factor^attempt), and the delay lies in
 * (ceiling × (1 − jitter), ceiling]; `random` returns a number in [0, 1). */
export function backoffDelay(attempt, opts = {}, random = Math.random) {
  const o = { ...DEFAULT_BACKOFF, ...opts };
  const n = Math.min(Math.max(0, attempt | 0), 64);
  const ceiling = Math.min(o.maxMs, o.initialMs * Math.pow(o.factor, n));
  const jitter = Math.min(Math.max(o.jitter, 0), 1);
  return Math.round(ceiling * (1 - jitter * random()));
}

/** Backoff counts consecutive failed attempts; next() gives the next delay, reset()
 * starts over (called once a connection succeeded). */
export class Backoff {
  constructor(opts = {}, random = Math.random) {
    this.opts = { ...DEFAULT_BACKOFF, ...opts };
    this.random = random;
    this.attempt = 0;
  }
  next() {
    const d = backoffDelay(this.attempt, this.opts, this.random);
    this.attempt++;
    return d;
  }
  reset() {
    this.attempt = 0;
  }
}

// ---------------------------------------------------------------------------
// JSON Patch, restricted to what dashsync documents carry (SPEC §3)
// ---------------------------------------------------------------------------

/** PatchError is an op that cannot be applied (its target is missing, say). */
export class PatchError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PatchError';
  }
}

/** parsePath splits a JSON Pointer into unescaped segments ("~1" is "/", "~0" is "~"). */
export function parsePath(path) {
  if (typeof path !== 'string' || path[0] !== '/') throw new PatchError(`path ${JSON.stringify(path)} must start with /`);
  return path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** pointer joins segments into a JSON Pointer, escaping "~" and "/":
 * pointer('items', id, 'x') is "/items/<id>/x". */
export function pointer(...segs) {
  return segs.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/** pathsOverlap reports whether one path is a segment-wise prefix of the other, the
 * server's overlap rule: /items/a overlaps /items/a/x; /items/a/x does not overlap
 * /items/a/y nor /items/ab. */
export function pathsOverlap(a, b) {
  if (a.length > b.length) [a, b] = [b, a];
  return b.startsWith(a) && (a.length === b.length || b[a.length] === '/');
}

/** overlaps lists, for each op of `mine` that overlaps an op of `theirs`, a conflict in
 * the server's shape ({op, path, version, reason}). */
export function overlaps(mine, theirs, version) {
  const out = [];
  mine.forEach((op, i) => {
    if (theirs.some((t) => pathsOverlap(op.path, t.path))) out.push({ op: i, path: op.path, version, reason: 'overlap' });
  });
  return out;
}

const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

/** clone deep-copies a JSON value. */
export function clone(v) {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

/** deepEqual compares two JSON values (object key order does not matter). */
export function deepEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => hasOwn(b, k) && deepEqual(a[k], b[k]));
}

function setOwn(obj, key, value) {
  // defineProperty, not assignment: a key named "__proto__" stays a plain property.
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

function applyOpInPlace(doc, op) {
  if (!op || typeof op !== 'object') throw new PatchError('an op must be an object');
  const segs = parsePath(op.path);
  let parent = doc;
  for (const s of segs.slice(0, -1)) {
    if (parent === null || typeof parent !== 'object' || Array.isArray(parent) || !hasOwn(parent, s)) {
      throw new PatchError(`${op.path}: ${s} does not exist`);
    }
    parent = parent[s];
  }
  if (parent === null || typeof parent !== 'object' || Array.isArray(parent)) throw new PatchError(`${op.path}: the parent is not an object`);
  const key = segs[segs.length - 1];
  switch (op.op) {
    case 'add':
      setOwn(parent, key, clone(op.value));
      return;
    case 'replace':
      if (!hasOwn(parent, key)) throw new PatchError(`${op.path} does not exist (replace)`);
      setOwn(parent, key, clone(op.value));
      return;
    case 'remove':
      if (!hasOwn(parent, key)) throw new PatchError(`${op.path} does not exist (remove)`);
      delete parent[key];
      return;
    default:
      throw new PatchError(`unknown op ${JSON.stringify(op.op)}`);
  }
}

/** applyOps returns a copy of doc with ops applied in order (RFC 6902 add, replace and
 * remove on object members); it throws PatchError, leaving doc untouched, when one
 * cannot be applied. */
export function applyOps(doc, ops) {
  const out = clone(doc);
  for (const op of ops) applyOpInPlace(out, op);
  return out;
}

/** uuid returns a random (v4) UUID, also where crypto.randomUUID is missing (pages
 * served over plain http from another host). */
export function uuid() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---------------------------------------------------------------------------
// LayoutDoc: confirmed state + pending edits
// ---------------------------------------------------------------------------

/**
 * LayoutDoc is one layout as a client sees it while co-editing.
 *
 * - `confirmed` is the layout at `version`, the last version the server delivered
 *   (snapshot, resume or `op`), each applied exactly once, in order.
 * - `pending` are local edits not yet settled, oldest first. `visible` is confirmed
 *   with every pending edit applied on top (an edit that no longer applies is skipped),
 *   so a local edit shows at once and an op from someone else shows under it.
 * - One edit is in flight at a time (the head of the queue), so an edit is only sent
 *   once the versions of the edits before it are in `confirmed`, and is based on a
 *   version that includes them: our own edits never conflict with each other.
 * - Each edit's `base` is the version its conflict check starts at. While an edit waits
 *   in the queue, ops from others are checked against it here with the server's own
 *   overlap rule (a collision is a conflict, settled by its onConflict policy) and its
 *   base moves forward past the ops that passed; once sent, the server decides.
 * - Own ops are recognised by the client id: the server stamps every op with the id of
 *   the connection whose edit made it, and the in-flight edit remembers the ids of the
 *   connections it was sent on. Such an op settles the head edit: its change is now in
 *   `confirmed`, so it leaves the queue and is never applied twice. The ack may come
 *   before or after the op: an ack for version v keeps the edit shown until `confirmed`
 *   reaches v; an ack at or below `version` with no op of its own settles it at once (a
 *   no-op, or a resend the server had already committed).
 * - A conflict reply (or a local conflict) drops the edit, or with `retry` puts it back
 *   in the queue based on the conflicting version, to be resent (same editId) once that
 *   version has arrived, unless it no longer applies or no longer changes anything.
 * - connectionLost() puts the in-flight edit back in the queue with its editId and base;
 *   after the resume it is resent, and the server's editId dedup answers with the
 *   original ack if it had committed (its op, from the resume, already settled it).
 *
 * Results (the promise of each edit): {status, editId, version, rebased?, conflicts?}
 * with status `committed` (its op arrived), `unchanged` (acknowledged with no op of its
 * own: it changed nothing, or was already part of a snapshot) or `dropped` (lost a
 * conflict). Errors other than rate limits reject it with a DashSyncError.
 *
 * Events go to `emit(type, payload)`: `change` {layout, version, cause} and `conflict`
 * {layoutId, editId, ops, conflicts, version, author, local, action: 'dropped'|'retried'}.
 */
export class LayoutDoc {
  constructor(id, opts = {}) {
    this.id = id;
    this.confirmed = null;
    this.version = 0;
    this.visible = null;
    this.ready = false; // in step with the server (subscribed, resumed)
    this.pending = [];
    this.onConflict = opts.onConflict ?? 'drop';
    this.maxRetries = opts.maxRetries ?? 3;
    this.newEditId = opts.newEditId ?? uuid;
    this.now = opts.now ?? (() => Date.now());
    this.emit = opts.emit ?? (() => {});
    this._landed = new Map(); // editId → edit whose op arrived before its ack
    this._authors = new Map(); // version → author, for the last versions (conflict notices)
  }

  /** load replaces the confirmed state with a snapshot (a subscribe answer, or a reset). */
  load(snapshot, { reset = false } = {}) {
    this.confirmed = clone(snapshot);
    this.version = Number(snapshot.version) || 0;
    this.ready = true;
    this._settleAcked();
    this._recompute(reset ? 'reset' : 'snapshot');
  }

  /** resume applies the versions of a resume answer, in order. It answers {resync:true}
   * when they do not follow on from `version` (the caller then resubscribes). */
  resume(changes) {
    this.ready = true;
    for (const c of changes) {
      const r = this._apply(c);
      if (r.gap || r.resync) return { resync: true };
    }
    this._recompute('resume');
    return {};
  }

  /** receive applies one `op` message ({version, ops, author, client}). It answers
   * {duplicate:true} for a version already applied and {gap:true} or {resync:true} when
   * the caller must resubscribe. */
  receive(m) {
    if (!this.ready) return { ignored: true };
    const r = this._apply(m);
    if (r.applied) this._recompute('remote', { author: m.author, client: m.client, own: r.own, version: m.version });
    return r;
  }

  _apply({ version, ops, author, client }) {
    if (version <= this.version) return { duplicate: true };
    if (version !== this.version + 1) return { gap: true };
    let next;
    try {
      next = applyOps(this.confirmed, ops || []);
    } catch (error) {
      return { resync: true, error };
    }
    next.version = version;
    this.confirmed = next;
    this.version = version;
    this._authors.set(version, author);
    if (this._authors.size > 200) this._authors.delete(this._authors.keys().next().value);

    const head = this.pending[0];
    const own = !!(head && client && head.sentOn.has(client) && head.state !== 'queued-retry');
    if (own) {
      this.pending.shift();
      head.landedVersion = version;
      if (head.state === 'acked') this._settle(head, { status: 'committed', version, rebased: head.ackRebased });
      else this._landed.set(head.editId, head);
      for (const e of this.pending) if (e.base === version - 1) e.base = version;
    } else {
      for (const e of [...this.pending]) {
        if (e.state === 'sent' || e.state === 'acked' || e.force || version <= e.base) continue;
        const conflicts = overlaps(e.ops, ops || [], version);
        if (conflicts.length) this._conflict(e, { version, conflicts, author, local: true });
        else if (e.base === version - 1) e.base = version;
      }
    }
    this._settleAcked();
    return { applied: true, own };
  }

  // _settleAcked settles the head edit once `confirmed` has reached its ack's version
  // without an op of its own.
  _settleAcked() {
    const head = this.pending[0];
    if (head && head.state === 'acked' && this.version >= head.ackVersion) {
      this.pending.shift();
      this._settle(head, { status: 'unchanged', version: head.ackVersion, rebased: head.ackRebased });
    }
  }

  /** localEdit queues an edit made on the visible state and shows it at once. It throws
   * a DashSyncError (validation_failed) when the ops do not apply to what is visible. */
  localEdit(ops, opts = {}) {
    if (!this.confirmed) throw new DashSyncError('not_subscribed', `layout ${this.id} is not loaded yet`);
    if (!Array.isArray(ops) || ops.length === 0) throw new DashSyncError('validation_failed', 'an edit needs at least one op');
    try {
      applyOps(this.visible, ops);
    } catch (e) {
      throw new DashSyncError('validation_failed', e.message);
    }
    const edit = {
      editId: opts.editId ?? this.newEditId(),
      ops: clone(ops),
      force: !!opts.force,
      onConflict: opts.onConflict ?? this.onConflict,
      base: this.version,
      state: 'queued',
      sentOn: new Set(),
      retries: 0,
      notBefore: 0,
      waitFor: 0,
      recheck: false,
    };
    edit.promise = new Promise((resolve, reject) => {
      edit._resolve = resolve;
      edit._reject = reject;
    });
    this.pending.push(edit);
    this._recompute('local', { editId: edit.editId });
    return edit;
  }

  /** takeSendable returns the edit to send now on connection `clientId`, marked as
   * sent, or null: when not in step, when an edit is in flight, or while the head
   * waits (a rate limit's delay, the version a retry waits for). */
  takeSendable(clientId, now = this.now()) {
    for (;;) {
      const head = this.pending[0];
      if (!this.ready || !head || (head.state !== 'queued' && head.state !== 'queued-retry')) return null;
      if (head.notBefore > now || head.waitFor > this.version) return null;
      if (head.recheck) {
        // A retry: is it still meaningful on the new base?
        let next;
        try {
          next = applyOps(this.confirmed, head.ops);
        } catch {
          this.pending.shift();
          this._dropped(head, { version: this.version, conflicts: head.lastConflicts, reason: 'not_applicable' });
          continue;
        }
        if (deepEqual(next, this.confirmed)) {
          this.pending.shift();
          this._settle(head, { status: 'unchanged', version: this.version });
          this._recompute('settled');
          continue;
        }
        head.recheck = false;
      }
      head.state = 'sent';
      head.sentOn.add(clientId);
      return head;
    }
  }

  /** nextWakeup is when a waiting head edit may be sent (ms since epoch), or 0. */
  nextWakeup() {
    const head = this.pending[0];
    return head && (head.state === 'queued' || head.state === 'queued-retry') ? head.notBefore : 0;
  }

  /** acked handles the `ack` of an edit: version is the committed (or current) one. */
  acked(editId, version, rebased) {
    const landed = this._landed.get(editId);
    if (landed) {
      this._landed.delete(editId);
      this._settle(landed, { status: 'committed', version: landed.landedVersion, rebased: !!rebased });
      return;
    }
    const e = this.pending.find((x) => x.editId === editId);
    if (!e) return;
    e.state = 'acked';
    e.ackVersion = version;
    e.ackRebased = !!rebased;
    if (e === this.pending[0]) this._settleAcked();
    this._recompute('acked');
  }

  /** conflicted handles a `conflict` reply: version is the server's head then. */
  conflicted(editId, version, conflicts = []) {
    const e = this.pending.find((x) => x.editId === editId);
    if (!e) return;
    this._conflict(e, { version, conflicts, author: this._authorOf(conflicts), local: false });
  }

  /** failed handles an `error` reply to an edit. Rate limits and unavailability keep the
   * edit for a later resend (after retryAfterMs); anything else rejects it. */
  failed(editId, err) {
    const e = this.pending.find((x) => x.editId === editId);
    if (!e) return;
    if (err && (err.code === 'rate_limited' || err.code === 'unavailable')) {
      e.state = 'queued';
      e.notBefore = this.now() + (err.retryAfterMs || 1000);
      return;
    }
    this.pending.splice(this.pending.indexOf(e), 1);
    e._reject(err);
    this._recompute('failed', { editId });
  }

  /** connectionLost is called when the connection closed: the in-flight edit goes back
   * to the queue (same editId and base) and edits whose op had arrived are settled. */
  connectionLost() {
    this.ready = false;
    for (const e of this._landed.values()) this._settle(e, { status: 'committed', version: e.landedVersion, rebased: null });
    this._landed.clear();
    for (const e of this.pending) if (e.state === 'sent') e.state = 'queued';
  }

  /** rejectQueued rejects the edits not sent yet (the role no longer allows them); the
   * one in flight is left to the server's answer. */
  rejectQueued(err) {
    const queued = this.pending.filter((e) => e.state === 'queued' || e.state === 'queued-retry');
    if (queued.length === 0) return;
    this.pending = this.pending.filter((e) => !queued.includes(e));
    for (const e of queued) e._reject(err);
    this._recompute('failed');
  }

  /** discard rejects every unsettled edit (the layout was deleted or unsubscribed). */
  discard(err) {
    for (const e of [...this.pending, ...this._landed.values()]) e._reject(err);
    this.pending = [];
    this._landed.clear();
  }

  /** settled reports whether no edit waits for the server. */
  get settled() {
    return this.pending.length === 0 && this._landed.size === 0;
  }

  _authorOf(conflicts) {
    for (const c of conflicts || []) if (this._authors.has(c.version)) return this._authors.get(c.version);
    return undefined;
  }

  _conflict(e, info) {
    const payload = {
      layoutId: this.id, editId: e.editId, ops: clone(e.ops), conflicts: info.conflicts, version: info.version,
      author: info.author, local: info.local,
    };
    let policy = e.onConflict;
    if (typeof policy === 'function') {
      try {
        policy = policy(payload);
      } catch {
        policy = 'drop';
      }
    }
    if (policy === 'retry' && e.retries < this.maxRetries) {
      e.retries++;
      e.state = 'queued-retry';
      e.base = Math.max(e.base, info.version);
      e.waitFor = info.version;
      e.recheck = true;
      e.lastConflicts = info.conflicts;
      this.emit('conflict', { ...payload, action: 'retried' });
      return;
    }
    this.pending.splice(this.pending.indexOf(e), 1);
    this._dropped(e, info);
  }

  _dropped(e, info) {
    const result = { status: 'dropped', editId: e.editId, version: info.version, conflicts: info.conflicts || [] };
    if (info.reason) result.reason = info.reason;
    this.emit('conflict', {
      layoutId: this.id, editId: e.editId, ops: clone(e.ops), conflicts: info.conflicts || [], version: info.version,
      author: info.author, local: !!info.local, action: 'dropped', reason: info.reason,
    });
    e._resolve(result);
    this._recompute('dropped', { editId: e.editId });
  }

  _settle(e, result) {
    e._resolve({ editId: e.editId, ...result });
  }

  _recompute(cause, extra = {}) {
    if (!this.confirmed) return;
    let v = this.confirmed;
    for (const e of this.pending) {
      try {
        v = applyOps(v, e.ops);
      } catch {
        // It no longer applies (its target went away): the server will say so.
      }
    }
    if (v === this.confirmed) v = clone(v);
    this.visible = v;
    this.emit('change', { layout: v, version: this.version, pending: this.pending.length, cause, ...extra });
  }
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

/** tokenExpiry returns a JWT's exp in ms since the epoch, or 0 when it has none or is
 * not a JWT. The signature is not checked: the server does that. */
export function tokenExpiry(token) {
  try {
    const part = String(token).split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const exp = JSON.parse(atob(b64)).exp;
    return typeof exp === 'number' ? exp * 1000 : 0;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------
// DashSync: the connection
// ---------------------------------------------------------------------------

const CLOSE_TOKEN_EXPIRED = 4001;
const CLOSE_FORBIDDEN = 4003;
const CLOSE_PING_TIMEOUT = 4000;

/** The roles of SPEC §10, least first. */
export const ROLES = Object.freeze(['viewer', 'editor', 'owner']);

/** canEdit reports whether a role may edit a layout (SPEC §10: editor and owner). A
 * role not known yet (null) is let through: the server decides. */
export function canEdit(role) {
  return role !== 'viewer';
}

/** isLinkToken reports whether a token has the form of a link token (SPEC §10). */
export function isLinkToken(token) {
  return typeof token === 'string' && token.startsWith('dsl_');
}

/**
 * DashSync is a connection to a dashsync server that survives reconnects.
 *
 * Options:
 * - `url`: the WebSocket URL, absolute (ws:, wss:, http:, https:) or relative to the
 *   page; default "/api/ws".
 * - `token`: the JWT to connect with; `getToken`: an async function returning a fresh
 *   one (used before the first connect when `token` is missing, shortly before expiry,
 *   and after the server closed with 4001/4003).
 * - `reconnect`: {initialMs, maxMs, factor, jitter} (DEFAULT_BACKOFF).
 * - `onConflict`: the default policy of edits, 'drop' (default) or 'retry', or a
 *   function (conflict) → 'drop' | 'retry'; `maxRetries` (3).
 * - `pingIntervalMs` (25000; 0: off), `pingTimeoutMs` (10000): a ping without answer
 *   closes the connection and reconnects. `tokenRefreshMarginMs` (60000).
 * - `checkToken`: an async function (token) → false when the token is no longer good
 *   (a REST call answering 401, say). A browser cannot see why an upgrade failed (a 401
 *   looks like any dropped connection), so after an attempt that closed before `hello`
 *   the client asks it before trying again; false ends the client (`ended`, reason
 *   'unauthorized') instead of retrying forever. A throw counts as "still good".
 * - For tests and other runtimes: `WebSocket`, `setTimeout`, `clearTimeout`, `now`,
 *   `random`, `newEditId`.
 *
 * Events (on/off): `state` ('open' | 'connecting' | 'closed'), `hello` {client, user},
 * `reconnect` {attempt, delayMs}, `close` {code, reason}, `layout` {layoutId, layout,
 * version, cause}, `presence` {layoutId, users, counts}, `conflict` (see LayoutDoc),
 * `data` {widgetId, data}, `widget` {widgetId, widget}, `user` (a user-channel event
 * message), `token` {exp}, `error` (a DashSyncError or Error), `message` (every message),
 * `access` {layoutId, role, previous} (the caller's role on a layout changed),
 * `unsubscribed` {channel, layoutId | widgetId, reason} (the server ended a
 * subscription: 'revoked' or 'deleted'), `ended` {reason, code} (the client stopped
 * for good on the server's word: a link revoked, expired, or refused).
 */
export class DashSync {
  constructor(opts = {}) {
    this.url = opts.url ?? '/api/ws';
    this.token = opts.token ?? null;
    this.getToken = opts.getToken ?? null;
    this.onConflict = opts.onConflict ?? 'drop';
    this.maxRetries = opts.maxRetries ?? 3;
    this.pingIntervalMs = opts.pingIntervalMs ?? 25000;
    this.pingTimeoutMs = opts.pingTimeoutMs ?? 10000;
    this.tokenRefreshMarginMs = opts.tokenRefreshMarginMs ?? 60000;
    this._WebSocket = opts.WebSocket ?? globalThis.WebSocket;
    this._setTimeout = opts.setTimeout ?? ((f, ms) => globalThis.setTimeout(f, ms));
    this._clearTimeout = opts.clearTimeout ?? ((t) => globalThis.clearTimeout(t));
    this._now = opts.now ?? (() => Date.now());
    this._newEditId = opts.newEditId ?? uuid;
    this.checkToken = opts.checkToken ?? null;
    this.backoff = new Backoff(opts.reconnect, opts.random ?? Math.random);

    /** state is 'closed', 'connecting' or 'open' (a hello arrived). */
    this.state = 'closed';
    /** clientId is this connection's id (from hello); null while not open. */
    this.clientId = null;
    /** user is the signed-in user (from hello); "link:<id>" on a link connection. */
    this.user = null;
    /** ended is {reason, code} once the client stopped for good on the server's word
     * (reason 'revoked', 'deleted', 'expired' or 'unauthorized'); null until then. */
    this.ended = null;

    this._ws = null;
    this._wanted = false;
    this._attempt = 0; // sequence of connection attempts, to ignore stale ones
    this._freshToken = false;
    this._nextId = 1;
    this._requests = new Map();
    this._listeners = new Map();
    this._layouts = new Map(); // layoutId → layout subscription entry
    this._widgets = new Map(); // widgetId → {handlers, data, subscribed, waiters}
    this._userSub = null; // {handlers, subscribed}
    this._timers = { reconnect: null, ping: null, token: null, edits: new Map() };
    this._openWaiters = [];
    this._helloOnSocket = false; // the current socket said hello
    this._failedAttempts = 0; // attempts closed before hello since the last hello
    this._lastEndReason = null; // reason of the last `unsubscribed` of a layout (links)
  }

  /** isLink reports whether this client connects with a link token (SPEC §10). */
  get isLink() {
    return isLinkToken(this.token) || (typeof this.user === 'string' && this.user.startsWith('link:'));
  }

  // -- events ---------------------------------------------------------------

  /** on adds a listener for an event type and returns a function removing it. */
  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }

  /** off removes a listener. */
  off(type, fn) {
    this._listeners.get(type)?.delete(fn);
  }

  _emit(type, payload) {
    for (const fn of [...(this._listeners.get(type) || [])]) {
      try {
        fn(payload);
      } catch (err) {
        if (type !== 'error') this._emit('error', err);
      }
    }
  }

  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    this._emit('state', s);
  }

  // -- connection -----------------------------------------------------------

  /** connect opens the connection (and keeps it open until close()). It resolves once
   * the server said hello; a failed attempt is retried with back-off, so it waits. */
  connect() {
    if (this.ended) return Promise.reject(new DashSyncError('closed', `the client ended: ${this.ended.reason}`));
    this._wanted = true;
    if (this.state === 'open') return Promise.resolve(this);
    const p = new Promise((resolve, reject) => this._openWaiters.push({ resolve, reject }));
    if (!this._ws && !this._timers.reconnect && this.state !== 'connecting') this._open();
    return p;
  }

  /** close closes the connection for good: no reconnect; requests in flight reject. */
  close() {
    this._wanted = false;
    this._attempt++;
    this._clearTimer('reconnect');
    const ws = this._ws;
    if (ws) {
      this._detach(ws);
      try {
        ws.close(1000, 'client closed');
      } catch {
        // already closing
      }
      this._closed({ code: 1000, reason: 'client closed' });
    } else {
      this._setState('closed');
    }
    for (const w of this._openWaiters.splice(0)) w.reject(new DashSyncError('closed', 'the client was closed'));
  }

  async _open() {
    const attempt = ++this._attempt;
    this._setState('connecting');
    if (this.getToken && (this._freshToken || !this.token || this._tokenExpiresWithin(30000))) {
      try {
        this.token = await this.getToken();
        this._freshToken = false;
      } catch (err) {
        if (attempt !== this._attempt || !this._wanted) return;
        this._emit('error', err);
        this._scheduleReconnect();
        return;
      }
    }
    if (attempt !== this._attempt || !this._wanted) return;
    if (this.checkToken && this._failedAttempts > 0) {
      // The last attempt failed before hello: a refused token looks just like that.
      let good = true;
      try {
        good = (await this.checkToken(this.token)) !== false;
      } catch {
        good = true;
      }
      if (attempt !== this._attempt || !this._wanted) return;
      if (!good) {
        this._end('unauthorized', 0);
        return;
      }
    }
    let ws;
    this._helloOnSocket = false;
    try {
      ws = new this._WebSocket(this._socketURL());
    } catch (err) {
      this._emit('error', err);
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    ws.onmessage = (ev) => {
      if (this._ws === ws) this._onFrame(ev.data);
    };
    ws.onclose = (ev) => {
      if (this._ws === ws) {
        this._detach(ws);
        this._closed({ code: ev?.code ?? 1006, reason: ev?.reason ?? '' });
      }
    };
    ws.onerror = () => {}; // a close event follows
  }

  _detach(ws) {
    if (this._ws === ws) this._ws = null;
    ws.onmessage = ws.onclose = ws.onerror = null;
  }

  _socketURL() {
    let base;
    if (/^wss?:\/\//i.test(this.url)) base = new URL(this.url);
    else {
      const loc = globalThis.location?.href;
      base = loc ? new URL(this.url, loc) : new URL(this.url);
      if (base.protocol === 'http:') base.protocol = 'ws:';
      else if (base.protocol === 'https:') base.protocol = 'wss:';
    }
    if (this.token) base.searchParams.set('access_token', this.token);
    return base.toString();
  }

  _tokenExpiresWithin(ms) {
    const exp = tokenExpiry(this.token);
    return exp !== 0 && exp - this._now() < ms;
  }

  // _closed runs when the connection is gone (closed by either side, or dropped).
  _closed({ code, reason }) {
    this._clearTimer('ping');
    this._clearTimer('token');
    for (const t of this._timers.edits.values()) this._clearTimeout(t);
    this._timers.edits.clear();
    const requests = [...this._requests.values()];
    this._requests.clear();
    for (const r of requests) {
      if (r.timer) this._clearTimeout(r.timer);
      r.fail(new DashSyncError('disconnected', 'the connection closed'));
    }
    this.clientId = null;
    for (const entry of this._layouts.values()) {
      entry.subscribed = entry.subscribing = false;
      entry.doc.connectionLost();
      if (entry.presence.size || entry.counts) {
        entry.presence = new Map();
        entry.counts = null;
        this._emitPresence(entry);
      }
    }
    for (const w of this._widgets.values()) w.subscribed = w.subscribing = false;
    if (this._userSub) this._userSub.subscribed = false;
    if (!this._helloOnSocket) this._failedAttempts++;
    this._emit('close', { code, reason });
    if (this._wanted && this.isLink && (code === CLOSE_TOKEN_EXPIRED || code === CLOSE_FORBIDDEN)) {
      // A link cannot be renewed: reconnecting would only be refused (401), forever.
      this._end(code === CLOSE_TOKEN_EXPIRED ? 'expired' : this._lastEndReason || 'revoked', code);
      return;
    }
    if (code === CLOSE_TOKEN_EXPIRED || code === CLOSE_FORBIDDEN) {
      if (!this.getToken) {
        this._wanted = false;
        this._emit('error', new DashSyncError('unauthorized', code === CLOSE_TOKEN_EXPIRED ? 'the token expired' : 'the token was refused'));
      }
      this._freshToken = true;
    }
    if (!this._wanted) {
      this._setState('closed');
      for (const w of this._openWaiters.splice(0)) w.reject(new DashSyncError('closed', 'the connection closed'));
      return;
    }
    this._scheduleReconnect();
  }

  // _end stops the client for good on the server's word: no reconnect, state closed,
  // the `ended` event. Subscriptions are kept as they were (nothing more will arrive).
  _end(reason, code) {
    this._wanted = false;
    this._clearTimer('reconnect');
    this.ended = { reason, code };
    this._setState('closed');
    for (const w of this._openWaiters.splice(0)) w.reject(new DashSyncError('closed', `the client ended: ${reason}`));
    this._emit('ended', { reason, code });
  }

  _scheduleReconnect() {
    this._setState('closed');
    const delayMs = this.backoff.next();
    this._emit('reconnect', { attempt: this.backoff.attempt, delayMs });
    this._clearTimer('reconnect');
    this._timers.reconnect = this._setTimeout(() => {
      this._timers.reconnect = null;
      if (this._wanted) this._open();
    }, delayMs);
  }

  _clearTimer(name) {
    if (this._timers[name]) {
      this._clearTimeout(this._timers[name]);
      this._timers[name] = null;
    }
  }

  _onFrame(data) {
    const { messages, errors } = parseFrame(typeof data === 'string' ? data : String(data));
    for (const e of errors) this._emit('error', new DashSyncError('bad_message', `unreadable message: ${e.error.message}`));
    for (const m of messages) {
      try {
        this._dispatch(m);
      } catch (err) {
        this._emit('error', err);
      }
    }
  }

  _dispatch(m) {
    this._emit('message', m);
    if (m.type === 'hello') {
      this._onHello(m);
      return;
    }
    if (m.id != null && this._requests.has(m.id)) {
      const r = this._requests.get(m.id);
      this._requests.delete(m.id);
      if (r.timer) this._clearTimeout(r.timer);
      if (m.type === 'error') r.fail(errorFromReply(m.error));
      else r.done(m);
      return;
    }
    switch (m.type) {
      case 'op':
        this._onOp(m);
        return;
      case 'snapshot':
        this._onSnapshot(m);
        return;
      case 'presence':
        this._onPresence(m);
        return;
      case 'data': {
        const id = channelId(m.channel, 'widget');
        const w = this._widgets.get(id);
        if (w) {
          w.data = m.data ?? null;
          for (const h of [...w.handlers]) callHandler(h, 'onData', w.data, this);
        }
        this._emit('data', { widgetId: id, data: m.data ?? null });
        return;
      }
      case 'widget': {
        const id = channelId(m.channel, 'widget');
        const w = this._widgets.get(id);
        if (w) for (const h of [...w.handlers]) callHandler(h, 'onWidget', m.widget, this);
        this._emit('widget', { widgetId: id, widget: m.widget });
        return;
      }
      case 'event':
        if (this._userSub) for (const h of [...this._userSub.handlers]) callHandler(h, 'onEvent', m, this);
        this._emit('user', m);
        return;
      case 'access':
        this._onAccess(m);
        return;
      case 'unsubscribed':
        this._onUnsubscribed(m);
        return;
      case 'error':
        this._emit('error', errorFromReply(m.error));
        return;
      default:
      // Replies to requests already given up (timeouts), and types added later.
    }
  }

  _onHello(m) {
    this.clientId = m.client;
    this.user = m.user;
    this._helloOnSocket = true;
    this._failedAttempts = 0;
    this.backoff.reset();
    this._freshToken = false;
    this._setState('open');
    this._emit('hello', { client: m.client, user: m.user, layout: m.layout });
    this._schedulePing();
    this._scheduleTokenRefresh();
    if (this._userSub) this._subscribeUserNow();
    for (const entry of this._layouts.values()) this._subscribeLayoutNow(entry);
    for (const [id, w] of this._widgets) this._subscribeWidgetNow(id, w);
    for (const w of this._openWaiters.splice(0)) w.resolve(this);
  }

  // -- requests -------------------------------------------------------------

  /**
   * request sends a message with a fresh id and resolves with its reply (rejecting with
   * a DashSyncError for an `error` reply, a lost connection, or after timeoutMs).
   * onReply/onError, when given, run synchronously as the reply is read, before any
   * later message of the same frame: state that later messages depend on is updated
   * in time.
   */
  request(msg, { timeoutMs = 0, onReply, onError } = {}) {
    if (this.state !== 'open' || !this._ws) return Promise.reject(new DashSyncError('disconnected', 'not connected'));
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const r = {
        done: (m) => {
          try {
            resolve(onReply ? onReply(m) : m);
          } catch (err) {
            reject(err);
          }
        },
        fail: (err) => {
          if (onError) {
            try {
              onError(err);
            } catch (e) {
              this._emit('error', e);
            }
          }
          reject(err);
        },
        timer: null,
      };
      if (timeoutMs > 0) {
        r.timer = this._setTimeout(() => {
          if (this._requests.get(id) === r) {
            this._requests.delete(id);
            r.fail(new DashSyncError('timeout', `no reply to ${msg.type} in ${timeoutMs} ms`));
          }
        }, timeoutMs);
      }
      this._requests.set(id, r);
      try {
        this._ws.send(JSON.stringify({ id, ...msg }));
      } catch (err) {
        this._requests.delete(id);
        if (r.timer) this._clearTimeout(r.timer);
        r.fail(new DashSyncError('disconnected', err.message));
      }
    });
  }

  /** ping sends a ping and resolves with the round-trip time in ms. */
  async ping(timeoutMs = this.pingTimeoutMs) {
    const t0 = this._now();
    await this.request({ type: 'ping' }, { timeoutMs });
    return this._now() - t0;
  }

  _schedulePing() {
    this._clearTimer('ping');
    if (!this.pingIntervalMs) return;
    this._timers.ping = this._setTimeout(() => {
      this._timers.ping = null;
      const ws = this._ws;
      if (!ws || this.state !== 'open') return;
      this.ping().then(
        () => this._schedulePing(),
        (err) => {
          if (err.code === 'timeout' && this._ws === ws) {
            // A silent connection is dead: give up on it now rather than after TCP does.
            this._detach(ws);
            try {
              ws.close(CLOSE_PING_TIMEOUT, 'ping timeout');
            } catch {
              // ignore
            }
            this._closed({ code: CLOSE_PING_TIMEOUT, reason: 'ping timeout' });
          } else if (this._ws === ws) {
            this._schedulePing();
          }
        },
      );
    }, this.pingIntervalMs);
  }

  // -- tokens ---------------------------------------------------------------

  /**
   * refreshToken replaces the connection's token without reconnecting: with `token`, or
   * else one from getToken(). While open it sends `auth` and resolves with {exp}; while
   * not, the token is kept for the next connect.
   */
  async refreshToken(token) {
    const t = token ?? (this.getToken ? await this.getToken() : null);
    if (!t) throw new DashSyncError('unauthorized', 'no token to refresh with');
    this.token = t;
    if (this.state !== 'open') return { exp: null };
    const m = await this.request({ type: 'auth', token: t }, { timeoutMs: 15000 });
    this._emit('token', { exp: m.exp });
    this._scheduleTokenRefresh();
    return { exp: m.exp };
  }

  _scheduleTokenRefresh() {
    this._clearTimer('token');
    const exp = tokenExpiry(this.token);
    if (!this.getToken || !exp) return;
    const left = exp - this._now();
    const margin = Math.min(this.tokenRefreshMarginMs, Math.max(left / 5, 1000));
    this._timers.token = this._setTimeout(() => {
      this._timers.token = null;
      this.refreshToken().catch((err) => {
        this._emit('error', err);
        if (this.state === 'open') {
          this._timers.token = this._setTimeout(() => this._scheduleTokenRefresh(), 5000);
        }
      });
    }, Math.max(left - margin, 0));
  }

  // -- layouts --------------------------------------------------------------

  /**
   * subscribeLayout subscribes to layout:<id> and keeps the layout in step, across
   * reconnects (resuming with since). handlers: onChange(layout, info), onPresence(users,
   * counts), onConflict(conflict), onError(err), onRole(role, {previous}) when the
   * caller's role changes, onUnsubscribed({layoutId, reason}) when the server ends the
   * subscription (reason 'revoked' or 'deleted'; the layout is then forgotten, its
   * unsettled edits rejected, and it is not resubscribed after a reconnect). It resolves
   * with a handle: {id, layout, version, pending, presence, role, ended, canEdit,
   * edit(ops, opts), unsubscribe()} once the layout arrived.
   */
  subscribeLayout(id, handlers = {}) {
    let entry = this._layouts.get(id);
    if (!entry) {
      entry = {
        id,
        handlers: new Set(),
        presence: new Map(),
        counts: null,
        subscribed: false,
        subscribing: false,
        closing: false,
        waiters: [],
        role: null, // the caller's role (SPEC §10), from `subscribed` and `access`
        ended: null, // the server's reason when it ended the subscription
      };
      entry.doc = new LayoutDoc(id, {
        onConflict: this.onConflict,
        maxRetries: this.maxRetries,
        newEditId: this._newEditId,
        now: this._now,
        emit: (type, payload) => this._onDocEvent(entry, type, payload),
      });
      entry.handle = this._layoutHandle(entry);
      this._layouts.set(id, entry);
      if (this.state === 'open') this._subscribeLayoutNow(entry);
    }
    entry.closing = false;
    entry.handlers.add(typeof handlers === 'function' ? { onChange: handlers } : handlers);
    if (entry.doc.confirmed && entry.doc.ready) return Promise.resolve(entry.handle);
    return new Promise((resolve, reject) => entry.waiters.push({ resolve, reject }));
  }

  /** layout returns the visible state of a subscribed layout, or undefined. */
  layout(id) {
    return this._layouts.get(id)?.doc.visible ?? undefined;
  }

  /** layoutDoc returns the LayoutDoc of a subscribed layout (confirmed, pending, …). */
  layoutDoc(id) {
    return this._layouts.get(id)?.doc;
  }

  /** presence returns [{user, clients:[…]}] for a subscribed layout. */
  presence(id) {
    const e = this._layouts.get(id);
    return e ? presenceList(e) : [];
  }

  _layoutHandle(entry) {
    const ds = this;
    return {
      id: entry.id,
      get layout() {
        return entry.doc.visible;
      },
      get version() {
        return entry.doc.version;
      },
      get pending() {
        return entry.doc.pending.length;
      },
      get presence() {
        return presenceList(entry);
      },
      /** role is the caller's role on the layout: 'owner', 'editor', 'viewer' (null
       * until the server said). */
      get role() {
        return entry.role;
      },
      /** ended is the server's reason ('revoked', 'deleted') once it ended the
       * subscription, else null. */
      get ended() {
        return entry.ended;
      },
      get canEdit() {
        return !entry.ended && canEdit(entry.role);
      },
      edit: (ops, opts) => ds.edit(entry.id, ops, opts),
      unsubscribe: (handlers) => ds.unsubscribeLayout(entry.id, handlers),
    };
  }

  /**
   * unsubscribeLayout removes handlers (all when none are given); with none left the
   * layout is unsubscribed, once its pending edits are settled (so none is lost).
   */
  unsubscribeLayout(id, handlers) {
    const entry = this._layouts.get(id);
    if (!entry) return;
    if (handlers) entry.handlers.delete(handlers);
    else entry.handlers.clear();
    if (entry.handlers.size > 0) return;
    entry.closing = true;
    this._maybeRelease(entry);
  }

  _maybeRelease(entry) {
    if (!entry.closing || !entry.doc.settled) return;
    this._layouts.delete(entry.id);
    for (const w of entry.waiters.splice(0)) w.reject(new DashSyncError('closed', 'unsubscribed'));
    // With a subscribe still in flight, the unsubscribe follows it on the connection.
    if ((entry.subscribed || entry.subscribing) && this.state === 'open') {
      this.request({ type: 'unsubscribe', channel: `layout:${entry.id}` }).catch(() => {});
    }
  }

  _subscribeLayoutNow(entry, { fresh = false } = {}) {
    const doc = entry.doc;
    const msg = { type: 'subscribe', channel: `layout:${entry.id}` };
    if (doc.confirmed && !fresh) msg.since = doc.version;
    entry.subscribing = true;
    this.request(msg, {
      onReply: (m) => {
        entry.subscribing = false;
        if (this._layouts.get(entry.id) !== entry) return null;
        if (m.snapshot) {
          doc.load(m.snapshot, { reset: !!m.reset });
        } else if (doc.resume(m.ops || []).resync) {
          this._resync(entry);
          return null;
        }
        entry.subscribed = true;
        if (m.role) this._setRole(entry, m.role);
        this._setPresence(entry, m.presence);
        for (const w of entry.waiters.splice(0)) w.resolve(entry.handle);
        this._flushEdits(entry);
        this._maybeRelease(entry);
        return entry.handle;
      },
      onError: (err) => {
        entry.subscribing = false;
        if (err.code === 'disconnected' || this._layouts.get(entry.id) !== entry) return;
        if (err.code === 'rate_limited' || err.code === 'unavailable') {
          this._setTimeout(() => {
            if (this._layouts.get(entry.id) === entry && this.state === 'open' && !entry.subscribed) this._subscribeLayoutNow(entry);
          }, err.retryAfterMs || 1000);
          return;
        }
        // not_found, forbidden…: the layout is gone for us.
        this._layouts.delete(entry.id);
        entry.doc.discard(err);
        for (const w of entry.waiters.splice(0)) w.reject(err);
        for (const h of [...entry.handlers]) callHandler(h, 'onError', err, this);
        this._emit('error', err);
      },
    }).catch(() => {});
  }

  // _resync starts a layout over from a fresh subscription (a gap, or an op that did not
  // apply: neither should happen with a correct server). Pending edits stay.
  _resync(entry) {
    entry.subscribed = false;
    entry.doc.ready = false;
    if (this.state !== 'open') return;
    this.request({ type: 'unsubscribe', channel: `layout:${entry.id}` }).catch(() => {});
    this._subscribeLayoutNow(entry, { fresh: true });
  }

  _onOp(m) {
    const entry = this._layouts.get(channelId(m.channel, 'layout'));
    if (!entry) return;
    const r = entry.doc.receive(m);
    if (r.gap || r.resync) {
      this._resync(entry);
      return;
    }
    this._flushEdits(entry);
    this._maybeRelease(entry);
  }

  _onSnapshot(m) {
    const entry = this._layouts.get(channelId(m.channel, 'layout'));
    if (!entry || !m.snapshot) return;
    entry.doc.load(m.snapshot, { reset: !!m.reset });
    this._flushEdits(entry);
    this._maybeRelease(entry);
  }

  // _setRole records the caller's role on a layout; a change (not the first role heard)
  // is told to the handlers and as `access`. Down to viewer, the edits still queued here
  // are rejected (forbidden) rather than sent to be refused one by one.
  _setRole(entry, role) {
    const previous = entry.role;
    entry.role = role;
    if (previous === role || previous == null) return;
    if (!canEdit(role)) entry.doc.rejectQueued(new DashSyncError('forbidden', `the ${role} role may not edit this layout`));
    for (const h of [...entry.handlers]) callHandler(h, 'onRole', role, this, { previous });
    this._emit('access', { layoutId: entry.id, role, previous });
    this._maybeRelease(entry);
  }

  _onAccess(m) {
    const entry = this._layouts.get(channelId(m.channel, 'layout'));
    if (entry && m.role) this._setRole(entry, m.role);
  }

  // _onUnsubscribed handles the server ending a subscription (SPEC §10: access removed,
  // a link revoked, the layout deleted). The channel is forgotten, so nothing
  // resubscribes it after a reconnect.
  _onUnsubscribed(m) {
    const reason = m.reason || 'revoked';
    const layoutId = channelId(m.channel, 'layout');
    if (layoutId) {
      this._lastEndReason = reason;
      const entry = this._layouts.get(layoutId);
      if (entry) {
        this._layouts.delete(layoutId);
        entry.ended = reason;
        entry.subscribed = entry.subscribing = false;
        const t = this._timers.edits.get(layoutId);
        if (t) {
          this._clearTimeout(t);
          this._timers.edits.delete(layoutId);
        }
        const err = new DashSyncError(reason, reason === 'deleted' ? `layout ${layoutId} was deleted` : `access to layout ${layoutId} was removed`);
        entry.doc.discard(err);
        for (const w of entry.waiters.splice(0)) w.reject(err);
        for (const h of [...entry.handlers]) callHandler(h, 'onUnsubscribed', { layoutId, reason }, this);
      }
      this._emit('unsubscribed', { channel: m.channel, layoutId, reason });
      return;
    }
    const widgetId = channelId(m.channel, 'widget');
    if (widgetId) {
      const w = this._widgets.get(widgetId);
      if (w) {
        this._widgets.delete(widgetId);
        for (const x of w.waiters.splice(0)) x.resolve(null);
        for (const h of [...w.handlers]) callHandler(h, 'onUnsubscribed', { widgetId, reason }, this);
      }
      this._emit('unsubscribed', { channel: m.channel, widgetId, reason });
      return;
    }
    if (m.channel === 'user' && this._userSub) this._userSub.subscribed = false;
    this._emit('unsubscribed', { channel: m.channel, reason });
  }

  _onDocEvent(entry, type, payload) {
    if (type === 'change') {
      for (const h of [...entry.handlers]) callHandler(h, 'onChange', payload.layout, this, payload);
      this._emit('layout', { layoutId: entry.id, ...payload });
    } else if (type === 'conflict') {
      for (const h of [...entry.handlers]) callHandler(h, 'onConflict', payload, this);
      this._emit('conflict', payload);
    }
  }

  // -- edits ----------------------------------------------------------------

  /**
   * edit changes a layout: ops are JSON Patch ops on the paths of SPEC §3. On a
   * subscribed layout the edit shows at once and is sent in order, with an editId, and
   * resent after a reconnect until settled. opts: onConflict ('drop' | 'retry' |
   * function), force (last writer wins), editId. It resolves with {status: 'committed' |
   * 'unchanged' | 'dropped', editId, version, rebased, conflicts} and rejects with a
   * DashSyncError when the server refuses the edit (validation_failed…).
   *
   * On a layout that is not subscribed, opts.base is required; the edit is sent once, as
   * is, and resolves with {status: 'acked' | 'dropped', version, rebased, conflicts}.
   */
  edit(layoutId, ops, opts = {}) {
    const entry = this._layouts.get(layoutId);
    if (!entry || !entry.doc.confirmed) return this._editUnmanaged(layoutId, ops, opts);
    if (!canEdit(entry.role)) {
      // A viewer's edit would only be refused: it is neither shown nor sent.
      return Promise.reject(new DashSyncError('forbidden', `the ${entry.role} role may not edit this layout`));
    }
    let e;
    try {
      e = entry.doc.localEdit(ops, opts);
    } catch (err) {
      return Promise.reject(err);
    }
    this._flushEdits(entry);
    const p = e.promise;
    p.editId = e.editId;
    return p;
  }

  _editUnmanaged(layoutId, ops, opts) {
    if (opts.base == null) return Promise.reject(new DashSyncError('not_subscribed', `subscribe to layout ${layoutId} first, or pass {base}`));
    const editId = opts.editId ?? this._newEditId();
    const msg = { type: 'edit', channel: `layout:${layoutId}`, base: opts.base, editId, ops };
    if (opts.force) msg.force = true;
    return this.request(msg).then((m) =>
      m.type === 'ack'
        ? { status: 'acked', editId, version: m.version, rebased: !!m.rebased }
        : { status: 'dropped', editId, version: m.version, conflicts: m.conflicts || [] },
    );
  }

  _flushEdits(entry) {
    if (this.state !== 'open' || !entry.subscribed || this._layouts.get(entry.id) !== entry) return;
    const doc = entry.doc;
    const e = doc.takeSendable(this.clientId, this._now());
    if (!e) {
      this._maybeRelease(entry);
      const at = doc.nextWakeup();
      if (at && !this._timers.edits.has(entry.id)) {
        this._timers.edits.set(entry.id, this._setTimeout(() => {
          this._timers.edits.delete(entry.id);
          this._flushEdits(entry);
        }, Math.max(at - this._now(), 0)));
      }
      return;
    }
    const msg = { type: 'edit', channel: `layout:${entry.id}`, base: e.base, editId: e.editId, ops: e.ops };
    if (e.force) msg.force = true;
    this.request(msg, {
      onReply: (m) => {
        if (m.type === 'conflict') doc.conflicted(e.editId, m.version, m.conflicts || []);
        else doc.acked(e.editId, m.version, m.rebased);
        this._flushEdits(entry);
      },
      onError: (err) => {
        if (err.code === 'disconnected') return; // resent after the reconnect
        doc.failed(e.editId, err);
        if (err.code !== 'rate_limited' && err.code !== 'unavailable') {
          for (const h of [...entry.handlers]) callHandler(h, 'onError', err, this);
        }
        this._flushEdits(entry);
      },
    }).catch(() => {});
  }

  // -- presence -------------------------------------------------------------

  _setPresence(entry, p) {
    entry.presence = new Map();
    entry.counts = null;
    if (Array.isArray(p)) {
      for (const u of p) entry.presence.set(u.user, new Set(u.clients || []));
    } else if (p && typeof p === 'object') {
      entry.counts = { users: p.users | 0, clients: p.clients | 0 };
    }
    this._emitPresence(entry);
  }

  _onPresence(m) {
    const entry = this._layouts.get(channelId(m.channel, 'layout'));
    if (!entry || !entry.subscribed) return;
    if (m.counts) {
      entry.presence = new Map();
      entry.counts = { users: m.counts.users | 0, clients: m.counts.clients | 0 };
    } else {
      entry.counts = null;
      for (const j of m.joined || []) {
        if (!entry.presence.has(j.user)) entry.presence.set(j.user, new Set());
        entry.presence.get(j.user).add(j.client);
      }
      for (const l of m.left || []) {
        const s = entry.presence.get(l.user);
        if (!s) continue;
        s.delete(l.client);
        if (s.size === 0) entry.presence.delete(l.user);
      }
    }
    this._emitPresence(entry);
  }

  _emitPresence(entry) {
    const users = presenceList(entry);
    const counts = entry.counts ?? { users: users.length, clients: users.reduce((n, u) => n + u.clients.length, 0) };
    for (const h of [...entry.handlers]) callHandler(h, 'onPresence', users, this, counts);
    this._emit('presence', { layoutId: entry.id, users, counts });
  }

  // -- widgets --------------------------------------------------------------

  /**
   * subscribeWidget subscribes to widget:<id> (once, however many handlers) and calls
   * handler with each widget data object ({widgetId, data, fetchedAt, expiresAt, stale})
   * as it arrives, resubscribing after reconnects. handler is a function (data) or an
   * object {onData, onWidget, onUnsubscribed}: onUnsubscribed({widgetId, reason}) when
   * the server ends the subscription (access to its layout removed), after which it is
   * not resubscribed. It resolves with the data at hand (null when none).
   */
  subscribeWidget(id, handler) {
    let w = this._widgets.get(id);
    if (!w) {
      w = { handlers: new Set(), data: null, subscribed: false, subscribing: false, waiters: [] };
      this._widgets.set(id, w);
      if (this.state === 'open') this._subscribeWidgetNow(id, w);
    }
    if (handler) w.handlers.add(handler);
    if (w.subscribed) return Promise.resolve(w.data);
    return new Promise((resolve, reject) => w.waiters.push({ resolve, reject }));
  }

  /** unsubscribeWidget removes a handler (all when none is given); with none left the
   * widget channel is unsubscribed. */
  unsubscribeWidget(id, handler) {
    const w = this._widgets.get(id);
    if (!w) return;
    if (handler) w.handlers.delete(handler);
    else w.handlers.clear();
    if (w.handlers.size > 0) return;
    this._widgets.delete(id);
    for (const x of w.waiters.splice(0)) x.resolve(null);
    if ((w.subscribed || w.subscribing) && this.state === 'open') {
      this.request({ type: 'unsubscribe', channel: `widget:${id}` }).catch(() => {});
    }
  }

  /** refreshWidget asks the server to fetch a widget's data now; the data arrives as
   * `data` to the widget's subscribers. */
  refreshWidget(id) {
    return this.request({ type: 'refresh', channel: `widget:${id}` }, { timeoutMs: 30000 });
  }

  _subscribeWidgetNow(id, w) {
    w.subscribing = true;
    this.request({ type: 'subscribe', channel: `widget:${id}` }, {
      onReply: (m) => {
        w.subscribing = false;
        if (this._widgets.get(id) !== w) return null;
        w.subscribed = true;
        w.data = m.data ?? null;
        for (const x of w.waiters.splice(0)) x.resolve(w.data);
        if (w.data) for (const h of [...w.handlers]) callHandler(h, 'onData', w.data, this);
        return w.data;
      },
      onError: (err) => {
        w.subscribing = false;
        if (err.code === 'disconnected' || this._widgets.get(id) !== w) return;
        if (err.code === 'rate_limited' || err.code === 'unavailable') {
          this._setTimeout(() => {
            if (this._widgets.get(id) === w && this.state === 'open' && !w.subscribed) this._subscribeWidgetNow(id, w);
          }, err.retryAfterMs || 1000);
          return;
        }
        this._widgets.delete(id);
        for (const x of w.waiters.splice(0)) x.reject(err);
        this._emit('error', err);
      },
    }).catch(() => {});
  }

  // -- user channel -----------------------------------------------------------

  /** subscribeUser subscribes to the `user` channel (layout created, renamed, deleted,
   * default changed, widgets, dashboard state); handler gets each event message. */
  subscribeUser(handler) {
    if (!this._userSub) {
      this._userSub = { handlers: new Set(), subscribed: false };
      if (this.state === 'open') this._subscribeUserNow();
    }
    if (handler) this._userSub.handlers.add(handler);
    return () => this._userSub?.handlers.delete(handler);
  }

  _subscribeUserNow() {
    const sub = this._userSub;
    this.request({ type: 'subscribe', channel: 'user' }, {
      onReply: () => {
        sub.subscribed = true;
      },
    }).catch(() => {});
  }
}

function channelId(channel, kind) {
  const prefix = kind + ':';
  return typeof channel === 'string' && channel.startsWith(prefix) ? channel.slice(prefix.length) : '';
}

function presenceList(entry) {
  return [...entry.presence.entries()]
    .map(([user, clients]) => ({ user, clients: [...clients].sort() }))
    .sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
}

// callHandler calls handler's method `name` (a bare function is the subscription's
// main handler: onData for widgets, onEvent for the user channel), reporting a throw as
// an `error` event rather than breaking the client's own bookkeeping.
function callHandler(handler, name, arg, ds, extra) {
  try {
    if (typeof handler === 'function') {
      if (name === 'onData' || name === 'onEvent') handler(arg, extra);
    } else if (handler && typeof handler[name] === 'function') {
      handler[name](arg, extra);
    }
  } catch (err) {
    ds._emit('error', err);
  }
}

// Test doubles for the DashSync client: a WebSocket the test plays the server of, and
// timers that run only when the test advances the clock.

/** FakeClock is setTimeout/clearTimeout/now on a virtual clock. */
export class FakeClock {
  constructor(start = 1_700_000_000_000) {
    this.t = start;
    this.timers = new Map();
    this.seq = 0;
    this.setTimeout = (fn, ms) => {
      const id = ++this.seq;
      this.timers.set(id, { at: this.t + Math.max(0, ms | 0), fn });
      return id;
    };
    this.clearTimeout = (id) => this.timers.delete(id);
    this.now = () => this.t;
  }

  /** pending lists the delays (from now) of the timers set, soonest first. */
  pending() {
    return [...this.timers.values()].map((x) => x.at - this.t).sort((a, b) => a - b);
  }

  /** advance moves the clock by ms, running every timer due on the way, in order. */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let next = null;
      for (const [id, x] of this.timers) if (x.at <= end && (!next || x.at < next[1].at)) next = [id, x];
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

/** flush lets pending promise callbacks run. */
export async function flush() {
  for (let i = 0; i < 10; i++) await Promise.resolve();
  await new Promise((r) => setImmediate(r));
}

/** fakeSocketClass returns a WebSocket class whose instances are recorded in `sockets`. */
export function fakeSocketClass() {
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = null;
      sockets.push(this);
    }
    send(text) {
      if (this.closed) throw new Error('closed');
      this.sent.push(JSON.parse(text));
    }
    close(code = 1000, reason = '') {
      if (this.closed) return;
      this.closed = { code, reason };
      this.onclose?.({ code, reason });
    }
    // The server side.
    /** frame delivers messages in one frame, newline-delimited, as the server does. */
    frame(...messages) {
      this.onmessage?.({ data: messages.map((m) => JSON.stringify(m)).join('\n') });
    }
    hello(client, user = 'alice') {
      this.frame({ type: 'hello', client, user });
    }
    /** drop closes from the server side (or the network). */
    drop(code = 1006, reason = '') {
      if (this.closed) return;
      this.closed = { code, reason };
      this.onclose?.({ code, reason });
    }
    /** last returns the last sent message of a type. */
    last(type) {
      return [...this.sent].reverse().find((m) => m.type === type);
    }
    sentOf(type) {
      return this.sent.filter((m) => m.type === type);
    }
  }
  return { FakeSocket, sockets };
}

/** layoutDoc is a layout document as the server sends it. */
export function layoutDoc(version, items, extra = {}) {
  return { id: 'L1', name: 'Ops', isDefault: true, columns: 12, items, settings: {}, version, ...extra };
}

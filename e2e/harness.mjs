// The end-to-end harness: builds bin/dashsync once, starts and stops real `dashsync
// serve` processes on loopback (embedded SQLite, or instances sharing a fresh Postgres
// database and Redis), launches Debian's Chromium through playwright-core, and opens
// the demo page as a user. Every wait here is bounded.
//
// Environment:
//   CI=true                    a missing Chromium, Postgres or Redis is a failure, not a skip
//   DASHSYNC_E2E_CHROMIUM      the browser (default /usr/bin/chromium)
//   DASHSYNC_E2E_POSTGRES_URL  admin URL of the Postgres the cluster variant creates its
//                              database in (default postgres://postgres@127.0.0.1:5432/postgres)
//   DASHSYNC_E2E_REDIS_URL     the Redis of the cluster variant (default redis://127.0.0.1:6379/0)
//   DASHSYNC_E2E_SKIP_BUILD=1  use bin/dashsync as it is
//   DASHSYNC_E2E_UPDATE_DOCS=1 also copy the representative screenshots to docs/ (demo.png,
//                              share.png, kiosk.png)

import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, createWriteStream, copyFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

export const E2E_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO = join(E2E_DIR, '..');
export const BIN = join(REPO, 'bin', 'dashsync');
export const SCREENSHOT_DIR = join(E2E_DIR, 'screenshots');
export const CHROMIUM = process.env.DASHSYNC_E2E_CHROMIUM || '/usr/bin/chromium';
export const CI = process.env.CI === 'true';
export const PG_ADMIN_URL = process.env.DASHSYNC_E2E_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.DASHSYNC_E2E_REDIS_URL || 'redis://127.0.0.1:6379/0';

// The flags this machine's Chromium needs (no sandbox as root, no GPU, and none of its
// own network traffic: only loopback is reachable here).
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Pages of a test run side by side: none of them may be throttled as hidden.
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
  '--disable-renderer-backgrounding',
];

export const VIEWPORT = { width: 1280, height: 800 };

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/** A deadline for one REST call to a local server: generous, for a loaded machine. */
const REQUEST_TIMEOUT_MS = 15000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** withTimeout rejects when p has not settled within ms. */
export function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

/** waitUntil polls fn (sync or async) until it returns a truthy value, at most ms. */
export async function waitUntil(fn, { timeout = 10000, interval = 50, what = 'a condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? `: ${last.message}` : last !== undefined ? ` (last: ${JSON.stringify(last)})` : '';
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${detail}`);
    }
    await sleep(interval);
  }
}

function loud(lines) {
  const bar = '*'.repeat(76);
  process.stderr.write(`\n${bar}\n${lines.map((l) => `* ${l}`).join('\n')}\n${bar}\n\n`);
}

/**
 * requirement checks a precondition of a suite. It returns null when met; otherwise
 * a reason to skip, printed loudly, or (under CI=true) it throws.
 */
export function requirement(ok, what, hint) {
  if (ok) return null;
  const reason = `${what} (${hint})`;
  if (CI) throw new Error(`e2e: ${reason}, and CI=true: the end-to-end suite must run`);
  loud([`e2e: SKIPPED: ${what}`, hint]);
  return reason;
}

export function haveChromium() {
  return existsSync(CHROMIUM);
}

export async function loadPlaywright() {
  try {
    return await import('playwright-core');
  } catch {
    return null;
  }
}

/** chromiumMissing is null when the browser and playwright-core are there, else the skip reason. */
export async function chromiumMissing() {
  const pw = await loadPlaywright();
  return (
    requirement(haveChromium(), `no Chromium at ${CHROMIUM}`, 'scripts/install-e2e installs it (apt-get install chromium)') ??
    requirement(!!pw, 'playwright-core is not installed in e2e/node_modules', 'scripts/install-e2e runs npm ci in e2e/')
  );
}

// ---------------------------------------------------------------------------
// Building the server
// ---------------------------------------------------------------------------

let built = false;

/** buildServer builds bin/dashsync once per process (go build -tags nomsgpack). */
export function buildServer() {
  if (built || process.env.DASHSYNC_E2E_SKIP_BUILD === '1') {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing`);
    built = true;
    return;
  }
  const t0 = Date.now();
  const r = spawnSync('go', ['build', '-tags', 'nomsgpack', '-o', BIN, './cmd/dashsync'], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 300000,
  });
  if (r.status !== 0) throw new Error(`go build failed (${r.status ?? r.signal}):\n${r.stderr}${r.error ? r.error.message : ''}`);
  built = true;
  process.stderr.write(`e2e: built ${BIN} in ${Date.now() - t0} ms\n`);
}

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------

const live = new Set(); // every child process not yet known to have exited

// A test process that dies (an uncaught error, Ctrl-C) takes its servers with it.
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    for (const child of live) child.kill('SIGKILL');
    process.exit(130);
  });
}

/**
 * Server is one `dashsync serve` process. start() listens on 127.0.0.1:<port> (0 picks
 * a free port the first time; a restart keeps the port and the data dir).
 */
export class Server {
  constructor({ name = 'dashsync', dataDir, args = [], env = {}, logDir }) {
    this.name = name;
    this.dataDir = dataDir;
    this.args = args;
    this.env = env;
    this.logDir = logDir ?? dataDir;
    this.port = 0;
    this.child = null;
    this.starts = 0;
    this.output = '';
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start({ timeout = 20000 } = {}) {
    if (this.child) throw new Error(`${this.name} is already running`);
    mkdirSync(this.dataDir, { recursive: true });
    this.starts++;
    const args = [
      'serve',
      '--addr', `127.0.0.1:${this.port}`,
      '--data-dir', this.dataDir,
      '--rate-rest', '0',
      '--rate-ws', '0',
      '--rate-edits', '0',
      '--log-format', 'text',
      '--shutdown-timeout', '5s',
      ...this.args,
    ];
    const log = createWriteStream(join(this.logDir, `${this.name}.log`), { flags: this.starts === 1 ? 'w' : 'a' });
    log.write(`\n=== start #${this.starts}: ${BIN} ${args.join(' ')}\n`);
    const child = spawn(BIN, args, { cwd: this.dataDir, env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(child);
    this.output = '';
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.exited = exited;
    exited.then(() => {
      live.delete(child);
      log.end();
      if (this.child === child) this.child = null;
    });
    const listening = new Promise((resolve, reject) => {
      let buf = '';
      const onData = (chunk) => {
        const s = chunk.toString();
        log.write(s);
        this.output = (this.output + s).slice(-20000);
        buf += s;
        const m = /dashsync listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(buf);
        if (m) {
          resolve(Number(m[1]));
          buf = '';
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', (chunk) => {
        const s = chunk.toString();
        log.write(s);
        this.output = (this.output + s).slice(-20000);
      });
      exited.then(({ code, signal }) => reject(new Error(`${this.name} exited (${code ?? signal}) before listening:\n${this.output.slice(-3000)}`)));
    });
    try {
      this.port = await withTimeout(listening, timeout, `${this.name} to listen`);
    } catch (err) {
      await this.stop();
      throw err;
    }
    await waitUntil(async () => (await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2000) })).ok, {
      timeout,
      what: `${this.name} /healthz`,
    });
    return this;
  }

  /** stop sends SIGTERM and waits for the exit (SIGKILL after `timeout`). */
  async stop({ timeout = 10000 } = {}) {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    try {
      await withTimeout(child.exited, timeout, `${this.name} to exit after SIGTERM`);
    } catch {
      child.kill('SIGKILL');
      await withTimeout(child.exited, 5000, `${this.name} to exit after SIGKILL`).catch(() => {});
    }
    this.child = null;
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  // -- REST with a dev token ------------------------------------------------------

  async token(user) {
    const res = await fetch(`${this.url}/dev/token?user=${encodeURIComponent(user)}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`GET /dev/token: ${res.status}`);
    return (await res.json()).token;
  }

  async api(user, method, path, body) {
    const token = await this.token(user);
    const res = await fetch(`${this.url}/api${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // not JSON
    }
    return { status: res.status, body: json, text };
  }

  /** layout reads GET /api/dashboard/layouts/:id as user. */
  async layout(user, id) {
    const r = await this.api(user, 'GET', `/dashboard/layouts/${encodeURIComponent(id)}`);
    if (r.status !== 200) throw new Error(`GET layout ${id} as ${user}: ${r.status} ${r.text}`);
    return r.body;
  }

  /** history reads the versions of a layout (newest first, as the API answers). */
  async history(user, id) {
    const r = await this.api(user, 'GET', `/dashboard/layouts/${encodeURIComponent(id)}/versions?limit=100`);
    if (r.status !== 200) throw new Error(`GET versions of ${id} as ${user}: ${r.status} ${r.text}`);
    return r.body.versions;
  }

  /** createLayout creates a layout for user from a template (default: the demo one). */
  async createLayout(user, template = 'demo') {
    const r = await this.api(user, 'POST', '/dashboard/layouts', { template });
    if (r.status !== 201) throw new Error(`POST layout as ${user}: ${r.status} ${r.text}`);
    return r.body;
  }
}

/** tempDir makes a fresh directory, removed by the returned function. */
export function tempDir(prefix = 'dashsync-e2e-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------------------
// Postgres and Redis (the cluster variant)
// ---------------------------------------------------------------------------

function run(cmd, args, { timeout = 15000, input } = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout, input, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function havePostgres() {
  try {
    return run('psql', [PG_ADMIN_URL, '-Atqc', 'SELECT 1'], { timeout: 5000 }).trim() === '1';
  } catch {
    return false;
  }
}

export function haveRedis() {
  try {
    return run('redis-cli', ['-u', REDIS_URL, 'ping'], { timeout: 5000 }).trim() === 'PONG';
  } catch {
    return false;
  }
}

/** createDatabase creates a fresh database; it returns its URL and a drop function. */
export function createDatabase() {
  const name = `dashsync_e2e_${process.pid}_${randomBytes(4).toString('hex')}`;
  run('psql', [PG_ADMIN_URL, '-qc', `CREATE DATABASE ${name}`]);
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  if (!u.searchParams.has('sslmode')) u.searchParams.set('sslmode', 'disable');
  return {
    name,
    url: u.toString(),
    drop: () => {
      try {
        run('psql', [PG_ADMIN_URL, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
      } catch (err) {
        process.stderr.write(`e2e: could not drop database ${name}: ${err.message}\n`);
      }
    },
  };
}

/** dropRedisKeys deletes every key under prefix (best effort). */
export function dropRedisKeys(prefix) {
  try {
    const keys = run('redis-cli', ['-u', REDIS_URL, '--scan', '--pattern', `${prefix}*`]).split('\n').filter(Boolean);
    for (let i = 0; i < keys.length; i += 200) run('redis-cli', ['-u', REDIS_URL, 'del', ...keys.slice(i, i + 200)]);
  } catch (err) {
    process.stderr.write(`e2e: could not clear Redis keys ${prefix}*: ${err.message}\n`);
  }
}

// ---------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------

export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
}

/**
 * newPage opens a page in a context of its own (a tab: its own sessionStorage and
 * socket), recording its console errors (page.errors), its WebSockets with the messages
 * each sent (page.sockets), its requests to /api (page.requests: {method, path}) and,
 * in the page, window.__e2e: layout change causes, conflicts, the messages of the
 * socket, client events (access, unsubscribed, ended) and the time of each pointerup.
 */
async function newPage(browser) {
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
  context.setDefaultTimeout(10000);
  context.setDefaultNavigationTimeout(15000);
  const page = await context.newPage();
  page.errors = [];
  page.requests = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/')) page.requests.push({ method: r.method(), path: u.pathname, search: u.search });
  });
  // Every WebSocket of the page, with the messages it sent (parsed).
  page.sockets = [];
  page.on('websocket', (ws) => {
    const rec = { url: ws.url(), sent: [], closed: false };
    page.sockets.push(rec);
    ws.on('framesent', (f) => {
      for (const line of String(f.payload).split('\n')) {
        if (!line.trim()) continue;
        try {
          rec.sent.push(JSON.parse(line));
        } catch {
          rec.sent.push({ unreadable: line });
        }
      }
    });
    ws.on('close', () => (rec.closed = true));
  });
  page.on('pageerror', (err) => page.errors.push(err.message));
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push(m.text());
  });
  await page.addInitScript(() => {
    const e2e = { causes: [], conflicts: [], messages: [], pointerups: [], states: [], events: [] };
    window.__e2e = e2e;
    document.addEventListener('pointerup', () => e2e.pointerups.push(Date.now()), true);
    // Hook the client as soon as the page creates it (app.js assigns window.dashsync).
    let ds;
    Object.defineProperty(window, 'dashsync', {
      configurable: true,
      get: () => ds,
      set: (v) => {
        ds = v;
        v.on('layout', (e) => e2e.causes.push({ cause: e.cause, version: e.version, at: Date.now() }));
        v.on('conflict', (c) => e2e.conflicts.push({ action: c.action, editId: c.editId, local: c.local, ops: c.ops }));
        v.on('message', (m) => e2e.messages.push({ type: m.type, channel: m.channel, version: m.version, rebased: m.rebased, client: m.client }));
        v.on('state', (s) => e2e.states.push(s));
        for (const type of ['access', 'unsubscribed', 'ended']) v.on(type, (p) => e2e.events.push({ type, ...p, at: Date.now() }));
      },
    });
  });
  return { page, context };
}

/**
 * openTab opens the demo page as `user` (see newPage) and waits until it is live:
 * connected, and the layout drawn.
 */
export async function openTab(browser, baseURL, user, { layout, wait = true } = {}) {
  const { page, context } = await newPage(browser);
  const url = new URL('/', baseURL);
  url.searchParams.set('user', user);
  if (layout) url.searchParams.set('layout', layout);
  await page.goto(url.toString(), { waitUntil: 'domcontentloaded' });
  const tab = new Tab(page, context, user, baseURL);
  if (wait) await tab.waitLive(layout);
  return tab;
}

/**
 * openLink opens a link page (url: /?link=<token>, as the Share dialog gives it) and,
 * given the layout's id, waits until that layout is drawn and live. Its Tab's user is
 * "link".
 */
export async function openLink(browser, url, { layout, wait = true } = {}) {
  const { page, context } = await newPage(browser);
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  const tab = new Tab(page, context, 'link', new URL(url).origin);
  if (wait && layout) await tab.waitLive(layout);
  return tab;
}

/** Tab is one page of the demo, with the reads and moves the tests use. */
export class Tab {
  constructor(page, context, user, baseURL) {
    this.page = page;
    this.context = context;
    this.user = user;
    this.baseURL = baseURL;
  }

  async close() {
    await this.context.close().catch(() => {});
  }

  state() {
    return this.page.getAttribute('#connection', 'data-state');
  }

  async waitState(states, timeout = 15000) {
    const list = [].concat(states);
    await this.page.waitForFunction((l) => l.includes(document.querySelector('#connection')?.dataset.state), list, { timeout });
  }

  /** waitLive waits until the connection is open and a layout (this one, if given) is drawn. */
  async waitLive(layoutId, timeout = 15000) {
    await this.waitState('open', timeout);
    await this.page.waitForFunction(
      (id) => {
        const g = document.querySelector('#grid');
        return g?.dataset.ready === 'true' && (!id || g.dataset.layoutId === id) && g.querySelectorAll('[data-widget-id]').length > 0;
      },
      layoutId ?? null,
      { timeout },
    );
  }

  layoutId() {
    return this.page.getAttribute('#grid', 'data-layout-id');
  }

  /** places reads every tile's place: {id: {x, y, w, h}}. */
  places() {
    return this.page.$$eval('#grid [data-widget-id]', (tiles) =>
      Object.fromEntries(tiles.map((t) => [t.dataset.widgetId, { x: +t.dataset.x, y: +t.dataset.y, w: +t.dataset.w, h: +t.dataset.h }])),
    );
  }

  /** widgetIdByTitle finds the tile whose title is `title`. */
  async widgetIdByTitle(title) {
    const id = await this.page.$$eval(
      '#grid [data-widget-id]',
      (tiles, t) => tiles.find((el) => el.querySelector('.tile-title')?.textContent === t)?.dataset.widgetId ?? null,
      title,
    );
    if (!id) throw new Error(`no tile titled ${title}`);
    return id;
  }

  tile(id) {
    return this.page.locator(`#grid [data-widget-id="${id}"]`);
  }

  /** settled: the page's client has no edit waiting for the server. */
  settled() {
    return this.page.evaluate(() => {
      const id = document.querySelector('#grid')?.dataset.layoutId;
      const doc = id && window.dashsync?.layoutDoc(id);
      return !!doc && doc.settled && doc.ready;
    });
  }

  version() {
    return this.page.evaluate(() => {
      const id = document.querySelector('#grid')?.dataset.layoutId;
      return window.dashsync?.layoutDoc(id)?.version ?? null;
    });
  }

  /** colStep is the width of one grid column plus its gap, in CSS pixels. */
  colStep() {
    return this.page.evaluate(() => {
      const g = document.querySelector('#grid');
      const cs = getComputedStyle(g);
      const gap = parseFloat(cs.columnGap) || 0;
      const width = g.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
      return (width + gap) / Number(g.dataset.columns || 12);
    });
  }

  /**
   * drag moves a tile with the mouse: down on its title, move by dx columns and dy
   * rows, up. It answers the page's time (Date.now()) of the pointerup.
   */
  async drag(id, dxCols, dyRows = 0) {
    const head = this.tile(id).locator('.tile-head');
    await head.scrollIntoViewIfNeeded();
    const box = await head.boundingBox();
    if (!box) throw new Error(`tile ${id} has no box`);
    const step = await this.colStep();
    const rowStep = await this.page.evaluate(() => {
      const cs = getComputedStyle(document.querySelector('#grid'));
      return (parseFloat(cs.getPropertyValue('--row-h')) || 64) + (parseFloat(cs.rowGap) || 0);
    });
    // Grab the title a little right of its left edge (away from the meta text).
    const x0 = box.x + Math.min(40, box.width / 3);
    const y0 = box.y + box.height / 2;
    const before = await this.page.evaluate(() => window.__e2e.pointerups.length);
    await this.page.mouse.move(x0, y0);
    await this.page.mouse.down();
    await this.page.mouse.move(x0 + dxCols * step, y0 + dyRows * rowStep, { steps: 8 });
    await this.page.mouse.up();
    await this.page.waitForFunction((n) => window.__e2e.pointerups.length > n, before, { timeout: 10000 });
    return this.page.evaluate(() => window.__e2e.pointerups.at(-1));
  }

  /** press focuses a tile and presses a key on it (arrow keys move it). */
  async press(id, key) {
    await this.tile(id).focus();
    await this.page.keyboard.press(key);
  }

  /**
   * watchPlace starts recording, in the page, the time (Date.now()) at which tile id's
   * data-x/data-y first equal {x, y}; read it with placeSeenAt().
   */
  watchPlace(id, want) {
    return this.page.evaluate(
      ({ id, want }) => {
        const tile = document.querySelector(`#grid [data-widget-id="${id}"]`);
        window.__e2e.seen = null;
        const check = () => {
          if (window.__e2e.seen == null && +tile.dataset.x === want.x && +tile.dataset.y === want.y) window.__e2e.seen = Date.now();
        };
        const mo = new MutationObserver(check);
        mo.observe(tile, { attributes: true, attributeFilter: ['data-x', 'data-y'] });
        window.__e2e.stopWatch = () => mo.disconnect();
        check();
      },
      { id, want },
    );
  }

  async placeSeenAt(timeout = 10000) {
    await this.page.waitForFunction(() => window.__e2e.seen != null, null, { timeout });
    return this.page.evaluate(() => {
      window.__e2e.stopWatch?.();
      return window.__e2e.seen;
    });
  }

  /**
   * keyAt presses `key` on tile id at the page's time `at` (ms since epoch): the page's
   * main thread spins until then and dispatches the keydown on the tile in the same
   * task, so no message from the server can be handled between `at` and the edit the
   * page's own key handler makes. Two tabs given one `at` edit on the same base version.
   */
  keyAt(id, key, at) {
    return this.page.evaluate(
      ({ id, key, at }) => {
        const tile = document.querySelector(`#grid [data-widget-id="${id}"]`);
        if (!tile) throw new Error(`no tile ${id}`);
        const late = Date.now() - at;
        while (Date.now() < at) {
          // spin: nothing else runs on this page until `at`
        }
        const base = window.dashsync.layoutDoc(document.querySelector('#grid').dataset.layoutId).version;
        tile.dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true, cancelable: true }));
        return { late, base, firedAt: Date.now() };
      },
      { id, key, at },
    );
  }

  /** editsSent lists the `edit` messages this tab sent, each with the index of its socket. */
  editsSent() {
    return this.page.sockets.flatMap((s, i) => s.sent.filter((m) => m.type === 'edit').map((m) => ({ ...m, socket: i })));
  }

  conflictShown() {
    return this.page.locator('#conflict-notice[role="alert"]').isVisible();
  }

  async screenshot() {
    return this.page.screenshot({ type: 'png', animations: 'disabled', caret: 'hide' });
  }
}

/** placesOf turns a layout document's items into {id: {x, y, w, h}}. */
export function placesOf(layout) {
  return Object.fromEntries(Object.entries(layout.items).map(([id, it]) => [id, { x: it.x, y: it.y, w: it.w, h: it.h }]));
}

// ---------------------------------------------------------------------------
// Screenshots
// ---------------------------------------------------------------------------

/**
 * sideBySide writes one PNG of two tabs (each 1280×800) side by side, with a caption
 * over each, to e2e/screenshots/<name>.png, and answers its path.
 */
export async function sideBySide(browser, name, left, right) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const [a, b] = await Promise.all([left.tab.screenshot(), right.tab.screenshot()]);
  const context = await browser.newContext({ viewport: { width: 2 * VIEWPORT.width + 24, height: VIEWPORT.height + 44 }, deviceScaleFactor: 1 });
  try {
    const page = await context.newPage();
    const img = (buf) => `data:image/png;base64,${buf.toString('base64')}`;
    const esc = (s) => s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]);
    await page.setContent(`<!doctype html><html><head><style>
      body { margin: 0; background: #2b3340; font: 14px system-ui, sans-serif; color: #e8edf4; }
      .row { display: flex; gap: 24px; }
      figure { margin: 0; }
      figcaption { height: 44px; line-height: 44px; padding-left: 12px; }
      img { display: block; width: ${VIEWPORT.width}px; height: ${VIEWPORT.height}px; }
    </style></head><body><div class="row">
      <figure><figcaption>${esc(left.caption)}</figcaption><img src="${img(a)}"></figure>
      <figure><figcaption>${esc(right.caption)}</figcaption><img src="${img(b)}"></figure>
    </div></body></html>`);
    await page.waitForFunction(() => [...document.images].every((i) => i.complete && i.naturalWidth > 0), null, { timeout: 5000 });
    const path = join(SCREENSHOT_DIR, `${name}.png`);
    await page.screenshot({ path, type: 'png' });
    return path;
  } finally {
    await context.close().catch(() => {});
  }
}

/** publishDemo copies a screenshot to docs/demo.png (only with DASHSYNC_E2E_UPDATE_DOCS=1). */
export function publishDemo(path) {
  return publishDoc(path, 'demo.png');
}

/** publishDoc copies a screenshot to docs/<name> (only with DASHSYNC_E2E_UPDATE_DOCS=1). */
export function publishDoc(path, name) {
  if (process.env.DASHSYNC_E2E_UPDATE_DOCS !== '1') return null;
  const dest = join(REPO, 'docs', name);
  copyFileSync(path, dest);
  return { dest, bytes: statSync(dest).size };
}

/** pageShot writes a screenshot of one tab to e2e/screenshots/<name>.png and answers its path. */
export async function pageShot(tab, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await tab.page.screenshot({ path, type: 'png', animations: 'disabled', caret: 'hide' });
  return path;
}

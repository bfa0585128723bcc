// The demo dashboard served by `dashsync serve` at /: a layout selector, a grid of live
// widgets that can be dragged, resized and moved with the keyboard, presence, the
// connection state and conflict notices. It uses nothing but dashsync.js and the REST
// API (SPEC §4, §9).
//
// Hooks for tests from outside (keep them stable):
// - each tile: data-widget-id, data-x, data-y, data-w, data-h (its position in the
//   layout document, including this tab's pending edits), data-type;
// - #connection: data-state="open|connecting|closed";
// - #presence: data-presence-users (distinct users, this one included),
//   data-presence-clients; each <li> data-user and data-clients;
// - #conflict-notice: role="alert", shown when an edit of this tab lost a conflict;
// - #grid: data-layout-id, data-version and data-ready="true" once a layout is shown;
// - window.dashsync: the DashSync client of the page.

import { DashSync, pointer } from './dashsync.js';

const $ = (sel) => document.querySelector(sel);
const MAX_Y = 10000;
const MAX_H = 100;
const NARROW = window.matchMedia('(max-width: 720px)');
// Kinds the server fetches (and refreshes); static and push data change only when written.
const FETCHED = (w) => w && w.source && w.source.kind !== 'static' && w.source.kind !== 'push';

const app = {
  ds: null,
  user: '',
  getToken: null,
  layouts: [],
  templates: [],
  widgets: new Map(), // widget id → definition
  currentId: null,
  handle: null,
  tiles: new Map(), // widget id → tile element
  data: new Map(), // widget id → {data, at}
  refreshAsked: new Map(), // widget id → when a fallback refresh was last asked
  drag: null,
};

// ---------------------------------------------------------------------------
// Sign-in and REST
// ---------------------------------------------------------------------------

async function devToken(user) {
  const res = await fetch(`/dev/token?user=${encodeURIComponent(user)}`, { cache: 'no-store' });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    const err = new Error(body.error?.message || `dev sign-in failed (${res.status})`);
    err.status = res.status;
    throw err;
  }
  return (await res.json()).token;
}

/** rest calls the REST API with the client's current token; a 401 gets one retry with a
 * fresh token when the page can get one. */
async function rest(method, path, body, retry = true) {
  const res = await fetch(`/api${path}`, {
    method,
    headers: { Authorization: `Bearer ${app.ds.token}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
    cache: 'no-store',
  });
  if (res.status === 401 && retry && app.getToken) {
    await app.ds.refreshToken().catch(() => {});
    return rest(method, path, body, false);
  }
  if (res.status === 204) return null;
  const json = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error(json?.error?.message || `${method} ${path}: ${res.status}`);
    err.code = json?.error?.code;
    err.status = res.status;
    throw err;
  }
  return json;
}

function showSignIn(message = '') {
  $('#signin').hidden = false;
  $('#grid').hidden = true;
  $('#toolbar').hidden = true;
  $('#signin-error').textContent = message;
  setConnection('closed', 'Signed out');
  $('#token-input').focus();
}

async function main() {
  const params = new URLSearchParams(location.search);
  const user = params.get('user');
  let token = null;
  if (user) {
    app.getToken = () => devToken(user);
    try {
      token = await app.getToken();
    } catch (err) {
      showSignIn(err.status === 404 ? 'Signing in from the address needs a server started with --dev. Paste a token instead.' : err.message);
      return;
    }
  } else {
    token = sessionStorage.getItem('dashsync.token');
    if (!token) {
      showSignIn();
      return;
    }
    $('#signout').hidden = false;
  }
  start(token);
}

$('#signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const token = $('#token-input').value.trim();
  if (!token) return;
  const res = await fetch('/api/dashboard/layouts', { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' }).catch(() => null);
  if (!res || !res.ok) {
    $('#signin-error').textContent = res && res.status === 401 ? 'That token is not valid (or has expired).' : 'The server cannot be reached.';
    return;
  }
  sessionStorage.setItem('dashsync.token', token);
  $('#signin').hidden = true;
  $('#grid').hidden = false;
  $('#signout').hidden = false;
  start(token);
});

$('#signout').addEventListener('click', () => {
  sessionStorage.removeItem('dashsync.token');
  location.assign('/');
});

// ---------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------

function start(token) {
  const ds = new DashSync({ url: '/api/ws', token, getToken: app.getToken, onConflict: 'drop' });
  app.ds = ds;
  window.dashsync = ds;

  ds.on('state', (s) => {
    if (s === 'open') setConnection('open', 'Live');
    else if (s === 'connecting') setConnection('connecting', 'Connecting…');
    else setConnection('closed', 'Offline');
  });
  ds.on('reconnect', ({ delayMs }) => {
    if (ds.state === 'closed') setConnection('closed', `Offline, retrying in ${Math.max(1, Math.round(delayMs / 1000))} s`);
  });
  ds.on('hello', ({ user }) => {
    app.user = user;
    $('#whoami').textContent = user;
    $('#whoami').title = `Signed in as ${user}`;
  });
  ds.on('conflict', onConflict);
  ds.on('error', (err) => {
    if (err && err.code === 'unauthorized') {
      toast('Your session has expired: sign in again.');
      if (!app.getToken) showSignIn('Your token has expired.');
    } else if (err && err.code === 'rate_limited') {
      toast('Slow down a little: too many changes at once.');
    } else {
      console.warn('dashsync:', err);
    }
  });
  ds.subscribeUser(onUserEvent);
  ds.connect().catch(() => {});

  $('#toolbar').hidden = false;
  $('#layout-picker').hidden = false;
  $('#presence-box').hidden = false;
  loadEverything().catch((err) => toast(`Could not load the dashboards: ${err.message}`));
  setInterval(tick, 1000);
}

async function loadEverything() {
  const [layouts, templates, widgets] = await Promise.all([
    rest('GET', '/dashboard/layouts'),
    rest('GET', '/dashboard/templates'),
    rest('GET', '/dashboard/widgets'),
  ]);
  app.templates = templates.templates;
  renderTemplates();
  setWidgets(widgets.widgets);
  app.layouts = layouts.layouts;
  if (app.layouts.length === 0) {
    // A first visit: a layout of live demo widgets (the "demo" template has a counter,
    // a time series, a clock, a table and a note).
    const name = app.templates.some((t) => t.name === 'demo') ? 'demo' : 'ops-overview';
    await rest('POST', '/dashboard/layouts', { template: name });
    await Promise.all([reloadLayouts(), reloadWidgets()]);
  }
  const wanted = new URLSearchParams(location.search).get('layout');
  const pick = app.layouts.find((l) => l.id === wanted) || app.layouts.find((l) => l.isDefault) || app.layouts[0];
  renderLayoutSelect();
  if (pick) openLayout(pick.id);
}

async function reloadLayouts() {
  app.layouts = (await rest('GET', '/dashboard/layouts')).layouts;
  renderLayoutSelect();
}

async function reloadWidgets() {
  setWidgets((await rest('GET', '/dashboard/widgets')).widgets);
  for (const id of app.tiles.keys()) renderTileChrome(id);
}

function setWidgets(list) {
  app.widgets = new Map(list.map((w) => [w.id, w]));
}

// ---------------------------------------------------------------------------
// Layouts: selector and actions
// ---------------------------------------------------------------------------

function renderLayoutSelect() {
  const sel = $('#layout-select');
  sel.replaceChildren(
    ...app.layouts
      .slice()
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((l) => {
        const o = document.createElement('option');
        o.value = l.id;
        o.textContent = l.isDefault ? `${l.name} (default)` : l.name;
        return o;
      }),
  );
  sel.disabled = app.layouts.length === 0;
  if (app.currentId) sel.value = app.currentId;
  const cur = app.layouts.find((l) => l.id === app.currentId);
  $('#default-btn').disabled = !cur || cur.isDefault;
  $('#delete-btn').disabled = app.layouts.length <= 1;
  $('#delete-btn').title = app.layouts.length <= 1 ? 'The last layout cannot be deleted' : '';
}

function renderTemplates() {
  $('#template-select').replaceChildren(
    ...app.templates.map((t) => {
      const o = document.createElement('option');
      o.value = t.name;
      o.textContent = t.title;
      o.title = t.description;
      return o;
    }),
  );
}

function openLayout(id) {
  if (app.currentId === id && app.handle) return;
  cancelDrag();
  const prev = app.currentId;
  if (prev && app.handle) {
    app.handle.unsubscribe(layoutHandlers);
  }
  for (const wid of [...app.tiles.keys()]) removeTile(wid);
  app.currentId = id;
  app.handle = null;
  const grid = $('#grid');
  grid.dataset.layoutId = id;
  grid.dataset.ready = 'false';
  renderLayoutSelect();
  const url = new URL(location.href);
  url.searchParams.set('layout', id);
  history.replaceState(null, '', url);
  app.ds
    .subscribeLayout(id, layoutHandlers)
    .then((handle) => {
      if (app.currentId !== id) return;
      app.handle = handle;
      renderLayout(handle.layout);
      renderPresence(handle.presence);
    })
    .catch((err) => {
      if (app.currentId !== id) return;
      toast(`This layout cannot be opened: ${err.message}`);
      reloadLayouts().then(() => openDefault()).catch(() => {});
    });
}

const layoutHandlers = {
  onChange(layout) {
    if (layout && layout.id === app.currentId) renderLayout(layout);
  },
  onPresence(users) {
    renderPresence(users);
  },
  onError(err) {
    toast(err.code === 'validation_failed' ? `That change was refused: ${err.message}` : err.message);
  },
};

function openDefault() {
  const l = app.layouts.find((x) => x.isDefault) || app.layouts[0];
  if (l) openLayout(l.id);
}

$('#layout-select').addEventListener('change', (ev) => openLayout(ev.target.value));

$('#rename-btn').addEventListener('click', () => {
  const cur = app.handle?.layout;
  if (!cur) return;
  $('#rename-btn').hidden = true;
  $('#rename-form').hidden = false;
  $('#rename-input').value = cur.name;
  $('#rename-input').select();
  $('#rename-input').focus();
});

function closeRename() {
  $('#rename-form').hidden = true;
  $('#rename-btn').hidden = false;
  $('#rename-btn').focus();
}

$('#rename-cancel').addEventListener('click', closeRename);
$('#rename-input').addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape') closeRename();
});
$('#rename-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = $('#rename-input').value.trim();
  closeRename();
  if (!name || !app.handle || name === app.handle.layout.name) return;
  // A rename is an edit like any other: co-edited, shown at once.
  editLayout([{ op: 'replace', path: '/name', value: name }], 'rename');
});

$('#clone-btn').addEventListener('click', async () => {
  const cur = app.handle?.layout;
  if (!cur) return;
  try {
    const copy = await rest('POST', `/dashboard/layouts/${encodeURIComponent(cur.id)}`, { name: `${cur.name} (copy)`.slice(0, 100) });
    await reloadLayouts();
    openLayout(copy.id);
    toast(`Cloned as “${copy.name}”.`);
  } catch (err) {
    toast(`Clone failed: ${err.message}`);
  }
});

$('#default-btn').addEventListener('click', async () => {
  if (!app.currentId) return;
  try {
    await rest('POST', `/dashboard/layouts/${encodeURIComponent(app.currentId)}/default`, {});
    await reloadLayouts();
    toast('This layout is now your default.');
  } catch (err) {
    toast(`Could not set the default: ${err.message}`);
  }
});

let deleteArmed = null;
$('#delete-btn').addEventListener('click', async () => {
  const btn = $('#delete-btn');
  if (!app.currentId || app.layouts.length <= 1) return;
  if (!deleteArmed) {
    // Two steps, without a blocking dialog.
    btn.textContent = 'Click again to delete';
    btn.classList.add('armed');
    deleteArmed = setTimeout(disarmDelete, 4000);
    return;
  }
  disarmDelete();
  const id = app.currentId;
  try {
    await rest('DELETE', `/dashboard/layouts/${encodeURIComponent(id)}`);
    app.handle?.unsubscribe(layoutHandlers);
    app.handle = null;
    app.currentId = null;
    await reloadLayouts();
    openDefault();
    toast('Layout deleted.');
  } catch (err) {
    toast(`Delete failed: ${err.message}`);
  }
});

function disarmDelete() {
  clearTimeout(deleteArmed);
  deleteArmed = null;
  const btn = $('#delete-btn');
  btn.textContent = 'Delete';
  btn.classList.remove('armed');
}

$('#create-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const template = $('#template-select').value;
  if (!template) return;
  try {
    const l = await rest('POST', '/dashboard/layouts', { template });
    await Promise.all([reloadLayouts(), reloadWidgets()]);
    openLayout(l.id);
    toast(`Created “${l.name}”.`);
  } catch (err) {
    toast(`Create failed: ${err.message}`);
  }
});

let userEventTimer = null;
function onUserEvent(m) {
  // Several events often come together (a default change touches two layouts).
  clearTimeout(userEventTimer);
  userEventTimer = setTimeout(async () => {
    try {
      if (m.event.startsWith('widget.')) await reloadWidgets();
      await reloadLayouts();
      if (app.currentId && !app.layouts.some((l) => l.id === app.currentId)) {
        toast('This layout was deleted elsewhere.');
        app.handle?.unsubscribe(layoutHandlers);
        app.handle = null;
        app.currentId = null;
        openDefault();
      }
    } catch (err) {
      console.warn('dashsync: reload after a user event failed', err);
    }
  }, 100);
}

// ---------------------------------------------------------------------------
// The grid
// ---------------------------------------------------------------------------

function renderLayout(layout) {
  const grid = $('#grid');
  grid.style.setProperty('--cols', String(layout.columns));
  grid.dataset.version = String(layout.version);
  grid.dataset.columns = String(layout.columns);
  $('#layout-version').textContent = `v${layout.version}`;
  const opt = [...$('#layout-select').options].find((o) => o.value === layout.id);
  const summary = app.layouts.find((l) => l.id === layout.id);
  if (summary && summary.name !== layout.name) {
    summary.name = layout.name;
    if (opt) opt.textContent = summary.isDefault ? `${layout.name} (default)` : layout.name;
  }
  document.title = `${layout.name} · dashsync`;

  const ids = Object.keys(layout.items);
  let unknown = false;
  for (const id of ids) {
    if (!app.tiles.has(id)) createTile(id);
    if (!app.widgets.has(id)) unknown = true;
    placeTile(id, layout.items[id]);
  }
  for (const id of [...app.tiles.keys()]) if (!layout.items[id]) removeTile(id);
  if (unknown) reloadWidgets().catch(() => {});
  $('#empty').hidden = ids.length > 0;
  grid.dataset.ready = 'true';
}

function createTile(id) {
  const tile = document.createElement('article');
  tile.className = 'tile';
  tile.tabIndex = 0;
  tile.dataset.widgetId = id;
  tile.setAttribute('aria-roledescription', 'widget tile');
  tile.setAttribute('aria-describedby', 'grid-help');

  const head = document.createElement('header');
  head.className = 'tile-head';
  const grip = document.createElement('span');
  grip.className = 'grip';
  grip.setAttribute('aria-hidden', 'true');
  const title = document.createElement('h2');
  title.className = 'tile-title';
  const meta = document.createElement('span');
  meta.className = 'tile-meta';
  head.append(grip, title, meta);

  const body = document.createElement('div');
  body.className = 'tile-body';
  body.innerHTML = '<p class="muted waiting">Waiting for data…</p>';

  const handle = document.createElement('div');
  handle.className = 'resize-handle';
  handle.setAttribute('aria-hidden', 'true');
  handle.title = 'Drag to resize';

  tile.append(head, body, handle);
  head.addEventListener('pointerdown', (ev) => startDrag(ev, tile, 'move'));
  handle.addEventListener('pointerdown', (ev) => startDrag(ev, tile, 'resize'));
  tile.addEventListener('keydown', (ev) => onTileKey(ev, tile));

  $('#grid').append(tile);
  app.tiles.set(id, tile);
  renderTileChrome(id);
  const handler = { onData: (d) => onData(id, d), onWidget: (w) => onWidgetChanged(id, w) };
  tile._handler = handler;
  app.ds.subscribeWidget(id, handler).then((d) => {
    // Nothing cached yet for a fetched kind: ask for it rather than wait a period.
    if (d === null && FETCHED(app.widgets.get(id))) askRefresh(id);
  }, () => {});
  return tile;
}

function removeTile(id) {
  const tile = app.tiles.get(id);
  if (!tile) return;
  app.ds.unsubscribeWidget(id, tile._handler);
  tile.remove();
  app.tiles.delete(id);
  app.data.delete(id);
}

function renderTileChrome(id) {
  const tile = app.tiles.get(id);
  if (!tile) return;
  const w = app.widgets.get(id);
  tile.dataset.type = w?.type || 'unknown';
  tile.querySelector('.tile-title').textContent = w?.title || 'Widget';
  const meta = tile.querySelector('.tile-meta');
  meta.textContent = FETCHED(w) ? `every ${w.source.refreshSeconds}s` : w?.source?.kind || '';
  updateTileLabel(tile);
  const d = app.data.get(id);
  if (d) renderData(id, d.data);
}

function placeTile(id, it) {
  const tile = app.tiles.get(id);
  if (!tile) return;
  tile.dataset.x = String(it.x);
  tile.dataset.y = String(it.y);
  tile.dataset.w = String(it.w);
  tile.dataset.h = String(it.h);
  if (app.drag && app.drag.id === id) return; // the drag preview keeps its place
  setGridPlace(tile, it);
  updateTileLabel(tile);
}

function setGridPlace(tile, it) {
  tile.style.gridColumn = `${it.x + 1} / span ${it.w}`;
  tile.style.gridRow = `${it.y + 1} / span ${it.h}`;
  // On a narrow window tiles stack in reading order of their places.
  tile.style.order = String(it.y * 1000 + it.x);
}

function updateTileLabel(tile) {
  const title = tile.querySelector('.tile-title').textContent;
  const { x, y, w, h } = tile.dataset;
  tile.setAttribute('aria-label', `${title}: column ${+x + 1}, row ${+y + 1}, ${w} wide, ${h} high`);
}

function gridMetrics() {
  const grid = $('#grid');
  const cs = getComputedStyle(grid);
  const gap = parseFloat(cs.columnGap) || 0;
  const rowGap = parseFloat(cs.rowGap) || 0;
  const width = grid.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  const cols = app.handle?.layout.columns || 12;
  const rowH = parseFloat(cs.getPropertyValue('--row-h')) || 64;
  return { cols, colStep: (width + gap) / cols, rowStep: rowH + rowGap };
}

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

// -- dragging and resizing with the pointer ----------------------------------------

function startDrag(ev, tile, mode) {
  if (ev.button !== 0 || NARROW.matches || !app.handle) return;
  const id = tile.dataset.widgetId;
  const it = app.handle.layout.items[id];
  if (!it) return;
  ev.preventDefault();
  tile.focus({ preventScroll: true });
  const target = ev.currentTarget;
  target.setPointerCapture(ev.pointerId);
  app.drag = { id, mode, tile, target, pointerId: ev.pointerId, x0: ev.clientX, y0: ev.clientY, from: { ...it }, to: { ...it }, m: gridMetrics() };
  tile.classList.add(mode === 'move' ? 'dragging' : 'resizing');
  target.addEventListener('pointermove', onDragMove);
  target.addEventListener('pointerup', onDragEnd);
  target.addEventListener('pointercancel', onDragCancel);
}

function onDragMove(ev) {
  const d = app.drag;
  if (!d || ev.pointerId !== d.pointerId) return;
  const dx = Math.round((ev.clientX - d.x0) / d.m.colStep);
  const dy = Math.round((ev.clientY - d.y0) / d.m.rowStep);
  const f = d.from;
  const cols = d.m.cols;
  d.to = d.mode === 'move'
    ? { ...f, x: clamp(f.x + dx, 0, cols - f.w), y: clamp(f.y + dy, 0, MAX_Y) }
    : { ...f, w: clamp(f.w + dx, 1, cols - f.x), h: clamp(f.h + dy, 1, MAX_H) };
  setGridPlace(d.tile, d.to);
}

function onDragEnd(ev) {
  const d = app.drag;
  if (!d || ev.pointerId !== d.pointerId) return;
  endDrag();
  commitPlace(d.id, d.to, d.mode === 'move' ? 'move' : 'resize');
}

function onDragCancel() {
  cancelDrag();
}

function endDrag() {
  const d = app.drag;
  if (!d) return;
  app.drag = null;
  d.target.removeEventListener('pointermove', onDragMove);
  d.target.removeEventListener('pointerup', onDragEnd);
  d.target.removeEventListener('pointercancel', onDragCancel);
  if (d.target.hasPointerCapture?.(d.pointerId)) d.target.releasePointerCapture(d.pointerId);
  d.tile.classList.remove('dragging', 'resizing');
}

function cancelDrag() {
  const d = app.drag;
  if (!d) return;
  endDrag();
  const it = app.handle?.layout.items[d.id];
  if (it) setGridPlace(d.tile, it);
}

document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && app.drag) cancelDrag();
});

// -- the keyboard ------------------------------------------------------------------

const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

function onTileKey(ev, tile) {
  if (ev.target !== tile || !ARROWS[ev.key] || ev.altKey || ev.ctrlKey || ev.metaKey || !app.handle) return;
  const id = tile.dataset.widgetId;
  const layout = app.handle.layout;
  const it = layout.items[id];
  if (!it) return;
  ev.preventDefault();
  const [dx, dy] = ARROWS[ev.key];
  const cols = layout.columns;
  const to = ev.shiftKey
    ? { ...it, w: clamp(it.w + dx, 1, cols - it.x), h: clamp(it.h + dy, 1, MAX_H) }
    : { ...it, x: clamp(it.x + dx, 0, cols - it.w), y: clamp(it.y + dy, 0, MAX_Y) };
  commitPlace(id, to, ev.shiftKey ? 'resize' : 'move');
}

// -- edits -------------------------------------------------------------------------

/** commitPlace sends the fields of a tile's place that changed: /items/<id>/x and /y
 * for a move, /w and /h for a resize (fields left alone are not sent, so they never
 * collide with someone else's change of them). */
function commitPlace(id, to, kind) {
  const from = app.handle?.layout.items[id];
  if (!from) return;
  const ops = [];
  for (const k of ['x', 'y', 'w', 'h']) {
    if (from[k] !== to[k]) ops.push({ op: 'replace', path: pointer('items', id, k), value: to[k] });
  }
  const tile = app.tiles.get(id);
  if (ops.length === 0) {
    if (tile) setGridPlace(tile, from);
    return;
  }
  editLayout(ops, kind);
  const title = app.widgets.get(id)?.title || 'Widget';
  announce(kind === 'move'
    ? `${title} moved to column ${to.x + 1}, row ${to.y + 1}`
    : `${title} resized to ${to.w} by ${to.h}`);
}

function editLayout(ops, kind) {
  if (!app.handle) return;
  app.ds.edit(app.currentId, ops, { onConflict: 'drop' }).then(
    (r) => {
      if (kind === 'rename' && r.status === 'committed') reloadLayouts().catch(() => {});
    },
    (err) => toast(`That change was refused: ${err.message}`),
  );
}

// -- conflicts ---------------------------------------------------------------------

let conflictTimer = null;
function onConflict(c) {
  if (c.action !== 'dropped' || c.layoutId !== app.currentId) return;
  const what = describeEdit(c.ops);
  const by = c.author && c.author !== app.user ? `${c.author}'s` : c.author ? 'another tab’s' : 'a concurrent';
  const text = c.reason === 'not_applicable'
    ? `Your ${what} could not be applied any more: it was changed meanwhile.`
    : `Your ${what} lost to ${by} change made at the same time; theirs is shown.`;
  $('#conflict-text').textContent = text;
  const n = $('#conflict-notice');
  n.hidden = false;
  n.dataset.editId = c.editId;
  clearTimeout(conflictTimer);
  conflictTimer = setTimeout(() => {
    n.hidden = true;
  }, 8000);
}

$('#conflict-dismiss').addEventListener('click', () => {
  $('#conflict-notice').hidden = true;
});

function describeEdit(ops) {
  const paths = ops.map((o) => o.path);
  if (paths.includes('/name')) return 'rename of the layout';
  const m = /^\/items\/([^/]+)/.exec(paths[0] || '');
  const title = m ? app.widgets.get(m[1].replace(/~1/g, '/').replace(/~0/g, '~'))?.title : null;
  const fields = paths.map((p) => p.split('/').pop());
  const kind = fields.some((f) => f === 'w' || f === 'h') ? 'resize' : 'move';
  return title ? `${kind} of “${title}”` : 'change';
}

// ---------------------------------------------------------------------------
// Presence and the connection
// ---------------------------------------------------------------------------

function renderPresence(users) {
  const ul = $('#presence');
  const clients = users.reduce((n, u) => n + u.clients.length, 0);
  ul.dataset.presenceUsers = String(users.length);
  ul.dataset.presenceClients = String(clients);
  ul.replaceChildren(
    ...users.map((u) => {
      const li = document.createElement('li');
      li.dataset.user = u.user;
      li.dataset.clients = String(u.clients.length);
      const me = u.user === app.user;
      const tabs = u.clients.length > 1 ? `, ${u.clients.length} tabs` : '';
      li.title = `${u.user}${me ? ' (you)' : ''}${tabs}`;
      li.setAttribute('aria-label', li.title);
      const avatar = document.createElement('span');
      avatar.className = 'avatar';
      avatar.setAttribute('aria-hidden', 'true');
      avatar.textContent = u.user.slice(0, 1).toUpperCase();
      avatar.style.backgroundColor = colourOf(u.user);
      const name = document.createElement('span');
      name.className = 'presence-name';
      name.setAttribute('aria-hidden', 'true');
      name.textContent = me ? `${u.user} (you)` : u.user;
      li.append(avatar, name);
      if (u.clients.length > 1) {
        const badge = document.createElement('span');
        badge.className = 'tabs-badge';
        badge.setAttribute('aria-hidden', 'true');
        badge.textContent = `×${u.clients.length}`;
        li.append(badge);
      }
      return li;
    }),
  );
}

function colourOf(s) {
  let h = 0;
  for (const ch of s) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${h % 360} 55% 42%)`;
}

function setConnection(state, text) {
  const el = $('#connection');
  el.dataset.state = state;
  el.textContent = text;
}

let toastTimer = null;
function toast(text) {
  const t = $('#toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    t.hidden = true;
  }, 5000);
}

function announce(text) {
  $('#announcer').textContent = text;
}

// ---------------------------------------------------------------------------
// Widget data
// ---------------------------------------------------------------------------

function onData(id, d) {
  if (!d) return;
  app.data.set(id, { data: d, at: Date.now() });
  renderData(id, d);
}

function onWidgetChanged(id, w) {
  if (!w) return;
  app.widgets.set(id, w);
  renderTileChrome(id);
}

function askRefresh(id) {
  app.refreshAsked.set(id, Date.now());
  app.ds.refreshWidget(id).catch(() => {});
}

// tick runs every second: clocks advance, and widgets whose data did not come on time
// get a `refresh`. The server refreshes subscribed widgets every refreshSeconds; this
// fallback only asks when nothing arrived for 1.5 periods (plus a second).
function tick() {
  const now = Date.now();
  for (const [id, tile] of app.tiles) {
    const w = app.widgets.get(id);
    if (tile.dataset.type === 'clock') renderClock(tile);
    if (!FETCHED(w) || app.ds.state !== 'open') continue;
    const period = Math.max(1, w.source.refreshSeconds || 60) * 1000;
    const last = Math.max(app.data.get(id)?.at || 0, app.refreshAsked.get(id) || 0);
    if (now - last > period * 1.5 + 1000) askRefresh(id);
  }
}

function renderData(id, d) {
  const tile = app.tiles.get(id);
  if (!tile) return;
  const w = app.widgets.get(id);
  const body = tile.querySelector('.tile-body');
  tile.classList.toggle('stale', !!d.stale);
  tile.dataset.fetchedAt = d.fetchedAt || '';
  const data = d.data;
  const type = w?.type || 'unknown';
  try {
    switch (type) {
      case 'stat':
        return renderStat(body, data);
      case 'timeseries':
        return renderSeries(body, data);
      case 'clock':
        tile._clock = data && data.now ? { server: Date.parse(data.now), local: Date.now() } : null;
        return renderClock(tile);
      case 'table':
        return renderTable(body, data, w?.title);
      case 'text':
        return renderText(body, data);
      default:
        return renderJSON(body, data);
    }
  } catch (err) {
    console.warn('dashsync: cannot draw widget', id, err);
    renderJSON(body, data);
  }
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function formatNumber(v) {
  if (typeof v !== 'number') return String(v ?? '–');
  return Math.abs(v) >= 1000 ? v.toLocaleString('en-US', { maximumFractionDigits: 0 }) : v.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

function renderStat(body, data) {
  const box = el('div', 'stat');
  const value = el('span', 'stat-value', formatNumber(data?.value));
  box.append(value);
  if (data?.unit) box.append(el('span', 'stat-unit', data.unit));
  body.replaceChildren(box);
}

const SVG = 'http://www.w3.org/2000/svg';

function renderSeries(body, data) {
  const points = Array.isArray(data?.points) ? data.points.filter((p) => Array.isArray(p) && p.length >= 2) : [];
  if (points.length === 0) {
    body.replaceChildren(el('p', 'muted', 'No points yet.'));
    return;
  }
  const ts = points.map((p) => +p[0]);
  const vs = points.map((p) => +p[1]);
  const t0 = Math.min(...ts);
  const t1 = Math.max(...ts);
  let lo = Math.min(...vs);
  let hi = Math.max(...vs);
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const W = 300;
  const H = 100;
  const xy = points.map((p) => [((+p[0] - t0) / (t1 - t0 || 1)) * W, H - ((+p[1] - lo) / (hi - lo)) * (H - 8) - 4]);
  const line = xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');

  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'series');
  svg.setAttribute('role', 'img');
  const last = vs[vs.length - 1];
  svg.setAttribute('aria-label', `${points.length} points from ${formatNumber(lo)} to ${formatNumber(hi)}, latest ${formatNumber(last)}`);
  for (const f of [0.25, 0.5, 0.75]) {
    const g = document.createElementNS(SVG, 'line');
    g.setAttribute('x1', '0');
    g.setAttribute('x2', String(W));
    g.setAttribute('y1', String(H * f));
    g.setAttribute('y2', String(H * f));
    g.setAttribute('class', 'series-grid');
    svg.append(g);
  }
  const area = document.createElementNS(SVG, 'polygon');
  area.setAttribute('points', `0,${H} ${line} ${W},${H}`);
  area.setAttribute('class', 'series-area');
  const pl = document.createElementNS(SVG, 'polyline');
  pl.setAttribute('points', line);
  pl.setAttribute('class', 'series-line');
  svg.append(area, pl);

  const head = el('div', 'series-head');
  head.append(el('span', 'series-last', formatNumber(last)), el('span', 'muted', `min ${formatNumber(Math.min(...vs))} · max ${formatNumber(Math.max(...vs))}`));
  const wrap = el('div', 'series-wrap');
  wrap.append(svg);
  const foot = el('div', 'series-foot muted');
  foot.append(el('span', '', timeOf(t0)), el('span', '', timeOf(t1)));
  body.replaceChildren(head, wrap, foot);
}

function timeOf(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function renderClock(tile) {
  const body = tile.querySelector('.tile-body');
  const c = tile._clock;
  if (!c || Number.isNaN(c.server)) return;
  const now = new Date(c.server + (Date.now() - c.local));
  let face = body.querySelector('.clock');
  if (!face) {
    face = el('div', 'clock');
    face.append(el('time', 'clock-time'), el('span', 'clock-date muted'));
    body.replaceChildren(face);
  }
  const time = face.querySelector('.clock-time');
  time.textContent = now.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', timeZone: 'UTC' });
  time.dateTime = now.toISOString();
  face.querySelector('.clock-date').textContent =
    `${now.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' })} · UTC`;
}

function renderTable(body, data, title) {
  const columns = Array.isArray(data?.columns) ? data.columns : [];
  const rows = Array.isArray(data?.rows) ? data.rows : [];
  const table = el('table', 'data-table');
  table.append(el('caption', 'sr-only', title || 'Table'));
  const thead = el('thead');
  const hr = el('tr');
  for (const c of columns) {
    const th = el('th', '', String(c));
    th.scope = 'col';
    hr.append(th);
  }
  thead.append(hr);
  const tbody = el('tbody');
  for (const r of rows) {
    const tr = el('tr');
    for (const v of Array.isArray(r) ? r : [r]) tr.append(el('td', '', typeof v === 'object' ? JSON.stringify(v) : String(v)));
    tbody.append(tr);
  }
  table.append(thead, tbody);
  const scroll = el('div', 'table-scroll');
  scroll.append(table);
  body.replaceChildren(scroll);
}

function renderText(body, data) {
  const text = typeof data === 'string' ? data : data?.text ?? '';
  body.replaceChildren(el('p', 'note', text));
}

function renderJSON(body, data) {
  body.replaceChildren(el('pre', 'json', JSON.stringify(data, null, 2)));
}

main().catch((err) => {
  console.warn('dashsync: start failed', err);
  toast(`The page could not start: ${err.message}`);
});

// The demo dashboard served by `dashsync serve` at /: a layout selector (own layouts and
// those shared with the user), a grid of live widgets that can be dragged, resized and
// moved with the keyboard, presence, the connection state, conflict notices, sharing
// (SPEC §10: the Share dialog, roles, view-only mode, notices when access ends) and the
// link page at /?link=<token> (the layout, live, read only, no toolbar). It
// uses nothing but dashsync.js and the REST API (SPEC §4, §9, §10).
//
// Hooks for tests from outside (keep them stable):
// - each tile: data-widget-id, data-x, data-y, data-w, data-h (its position in the
//   layout document, including this tab's pending edits), data-type;
// - #connection: data-state="open|connecting|closed";
// - #presence: data-presence-users (distinct users, this one included),
//   data-presence-clients; each <li> data-user and data-clients;
// - #conflict-notice: role="alert", shown when an edit of this tab lost a conflict;
// - #grid: data-layout-id, data-version and data-ready="true" once a layout is shown,
//   data-role (owner, editor, viewer) and data-mode (user, link);
// - #role-badge[data-role]: "View only" (viewer) or "Editor" on a shared layout;
// - #layout-select options: data-owner and data-role (shared ones in an optgroup);
// - #access-notice: role="alert", data-reason (revoked, deleted) when the current
//   layout went away because the server ended this user's access to it;
// - #share-dialog: #share-members li[data-user][data-role] (.member-role select,
//   .member-remove), #share-user, #share-role, #share-add, #share-link-ttl,
//   #share-link-create, #share-link-url (the new link's address), #share-links
//   li[data-link-id] (.link-revoke);
// - the link page: body.kiosk, #link-ended[data-reason] when the link stopped working;
// - window.dashsync: the DashSync client of the page.

import { DashSync, pointer, canEdit } from './dashsync.js';

const $ = (sel) => document.querySelector(sel);
const MAX_Y = 10000;
const MAX_H = 100;
const NARROW = window.matchMedia('(max-width: 720px)');
// Kinds the server fetches (and refreshes); static and push data change only when written.
const FETCHED = (w) => w && w.source && w.source.kind !== 'static' && w.source.kind !== 'push';

const app = {
  ds: null,
  mode: 'user', // 'link' on the link page
  user: '',
  getToken: null,
  role: null, // the user's role on the current layout (SPEC §10)
  widgetFetches: new Set(), // widget ids being read one by one (widgets of shared layouts)
  widgetUnreadable: new Set(), // widget ids that answered 404 or 403: not asked again
  deleting: null, // the layout this tab is deleting (its own `deleted` needs no notice)
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
  const link = params.get('link');
  if (link) {
    startLink(link, params.get('layout'));
    return;
  }
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
    rest('GET', '/dashboard/layouts?include=shared'),
    rest('GET', '/dashboard/templates'),
    rest('GET', '/dashboard/widgets'),
  ]);
  app.templates = templates.templates;
  renderTemplates();
  setWidgets(widgets.widgets);
  app.layouts = layouts.layouts;
  if (ownLayouts().length === 0) {
    // A first visit: a layout of live demo widgets (the "demo" template has a counter,
    // a time series, a clock, a table and a note). Layouts shared with the user do not
    // count: everyone gets one of their own.
    const name = app.templates.some((t) => t.name === 'demo') ? 'demo' : 'ops-overview';
    await rest('POST', '/dashboard/layouts', { template: name });
    await Promise.all([reloadLayouts(), reloadWidgets()]);
  }
  const wanted = new URLSearchParams(location.search).get('layout');
  const pick = app.layouts.find((l) => l.id === wanted) || defaultLayout();
  renderLayoutSelect();
  if (pick) openLayout(pick.id);
}

async function reloadLayouts() {
  app.layouts = (await rest('GET', '/dashboard/layouts?include=shared')).layouts;
  renderLayoutSelect();
}

// A summary is the user's own unless it names another owner (SPEC §10: entries carry
// owner and role; `isDefault` is the owner's notion, so only own layouts show it).
const isOwn = (l) => !l.role || l.role === 'owner';
const ownLayouts = () => app.layouts.filter(isOwn);

function defaultLayout() {
  const own = ownLayouts();
  return own.find((l) => l.isDefault) || own[0] || app.layouts[0];
}

async function reloadWidgets() {
  const own = (await rest('GET', '/dashboard/widgets')).widgets;
  // The list is the user's own widgets: those of a shared layout's owner, read one by
  // one, stay.
  const ownIds = new Set(own.map((w) => w.id));
  const others = [...app.widgets.values()].filter((w) => !ownIds.has(w.id) && app.tiles.has(w.id));
  setWidgets([...own, ...others]);
  for (const id of app.tiles.keys()) renderTileChrome(id);
}

function setWidgets(list) {
  app.widgets = new Map(list.map((w) => [w.id, w]));
}

// ---------------------------------------------------------------------------
// Layouts: selector and actions
// ---------------------------------------------------------------------------

function optionText(l) {
  if (isOwn(l)) return l.isDefault ? `${l.name} (default)` : l.name;
  return `${l.name} · ${l.owner}${l.role === 'viewer' ? ' (view only)' : ''}`;
}

function renderLayoutSelect() {
  const sel = $('#layout-select');
  const byName = (a, b) => a.name.localeCompare(b.name) || (a.owner || '').localeCompare(b.owner || '');
  const option = (l) => {
    const o = document.createElement('option');
    o.value = l.id;
    o.textContent = optionText(l);
    o.dataset.owner = l.owner || app.user;
    o.dataset.role = l.role || 'owner';
    if (!isOwn(l)) o.title = `Shared with you by ${l.owner}: you are ${l.role === 'viewer' ? 'a viewer' : 'an editor'}`;
    return o;
  };
  const own = ownLayouts().sort(byName);
  const shared = app.layouts.filter((l) => !isOwn(l)).sort(byName);
  const children = own.map(option);
  if (shared.length) {
    const group = document.createElement('optgroup');
    group.label = 'Shared with you';
    group.append(...shared.map(option));
    children.push(group);
  }
  sel.replaceChildren(...children);
  sel.disabled = app.layouts.length === 0;
  if (app.currentId) sel.value = app.currentId;
  const cur = app.layouts.find((l) => l.id === app.currentId);
  $('#default-btn').disabled = !cur || !!cur.isDefault;
  $('#delete-btn').disabled = own.length <= 1;
  $('#delete-btn').title = own.length <= 1 ? 'The last layout cannot be deleted' : '';
  applyRole();
}

// -- roles (SPEC §10) ----------------------------------------------------------------

/** currentRole is the user's role on the current layout: what the server said on
 * subscribe (and since, with `access`), else what the list says. */
function currentRole() {
  if (app.mode === 'link') return 'viewer';
  if (!app.currentId) return null;
  const summary = app.layouts.find((l) => l.id === app.currentId);
  return app.handle?.role || summary?.role || null;
}

const GRID_HELP = 'Drag a tile by its title, resize it from its corner; on a focused tile, arrow keys move it and Shift + arrows resize it.';

/** applyRole shows what the role allows (SPEC §10's table): a viewer gets no drag, no
 * resize, no rename and a "View only" badge; sharing, deleting and setting the default
 * are the owner's; cloning and new layouts are everyone's. */
function applyRole() {
  const role = currentRole() || 'owner';
  app.role = role;
  const owner = role === 'owner';
  const viewer = !canEdit(role);
  const grid = $('#grid');
  grid.dataset.role = role;
  grid.dataset.mode = app.mode;
  document.body.dataset.role = role;
  $('#rename-group').hidden = viewer;
  if (viewer) $('#rename-form').hidden = true;
  $('#share-btn').hidden = !owner;
  $('#default-btn').hidden = !owner;
  $('#delete-btn').hidden = !owner;
  const summary = app.layouts.find((l) => l.id === app.currentId);
  const badge = $('#role-badge');
  badge.hidden = owner || !app.currentId;
  badge.dataset.role = owner ? '' : role;
  badge.textContent = viewer ? 'View only' : 'Editor';
  badge.title = summary?.owner && !owner
    ? `${summary.owner} shared this layout with you: ${viewer ? 'you can watch it live, not change it' : 'you can move, resize and rename its tiles'}`
    : '';
  $('#grid-help').textContent = viewer ? 'View only: this layout updates live; you cannot change it. Clone it to make a copy of your own.' : GRID_HELP;
  if (viewer && app.drag) cancelDrag();
  if (!owner && $('#share-dialog').open) $('#share-dialog').close();
}

/** mayEdit: the current layout may be changed from this page. */
function mayEdit() {
  return app.mode === 'user' && !!app.handle && app.handle.canEdit;
}

/** mayRefresh: the role may force a data refresh (SPEC §10: editor and owner). */
function mayRefresh() {
  return app.mode === 'user' && canEdit(currentRole());
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
  closeShare();
  renderLayoutSelect();
  const url = new URL(location.href);
  url.searchParams.set('layout', id);
  history.replaceState(null, '', url);
  app.ds
    .subscribeLayout(id, layoutHandlers)
    .then((handle) => {
      if (app.currentId !== id) return;
      app.handle = handle;
      applyRole();
      renderLayout(handle.layout);
      renderPresence(handle.presence);
    })
    .catch((err) => {
      if (app.currentId !== id) return;
      if (err.code === 'revoked' || err.code === 'deleted') return; // layoutGone said so
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
    if (err.code === 'forbidden') toast('You can only view this layout: the change was not made.');
    else toast(err.code === 'validation_failed' ? `That change was refused: ${err.message}` : err.message);
  },
  onRole(role, { previous }) {
    const summary = app.layouts.find((l) => l.id === app.currentId);
    if (summary) summary.role = role;
    renderLayoutSelect();
    const by = summary?.owner && summary.owner !== app.user ? summary.owner : 'The owner';
    toast(`${by} made you ${role === 'viewer' ? 'a viewer' : 'an editor'} of this layout${previous ? ` (you were ${previous === 'viewer' ? 'a viewer' : 'an editor'})` : ''}.`);
  },
  onUnsubscribed({ layoutId, reason }) {
    layoutGone(layoutId, reason);
  },
};

function openDefault() {
  const l = defaultLayout();
  if (l) openLayout(l.id);
}

/**
 * layoutGone handles a layout this user can no longer see (SPEC §10): its access was
 * removed ('revoked') or it was deleted ('deleted'). It leaves the selector; if it was
 * the one shown, a notice says why and the page moves to the user's default layout.
 * Called from the server's `unsubscribed` and from the user channel, whichever comes
 * first; the second call finds nothing left to do.
 */
function layoutGone(id, reason) {
  const summary = app.layouts.find((l) => l.id === id);
  app.layouts = app.layouts.filter((l) => l.id !== id);
  if (app.currentId !== id) {
    renderLayoutSelect();
    return;
  }
  const name = summary?.name || app.handle?.layout?.name || 'This layout';
  const owner = summary && !isOwn(summary) ? summary.owner : null;
  if (app.deleting !== id) {
    const text = reason === 'deleted'
      ? `“${name}” was deleted${owner ? ` by ${owner}` : ' (in another tab)'}.`
      : `${owner || 'The owner'} stopped sharing “${name}” with you: it is no longer available.`;
    showAccessNotice(text, reason);
  }
  cancelDrag();
  app.handle?.unsubscribe(layoutHandlers);
  app.handle = null;
  app.currentId = null;
  for (const wid of [...app.tiles.keys()]) removeTile(wid);
  $('#grid').dataset.ready = 'false';
  closeShare();
  renderLayoutSelect();
  // Deleted from this tab: its handler opens the new default once the list is read again.
  if (app.deleting !== id) openDefault();
}

let accessTimer = null;
function showAccessNotice(text, reason) {
  const n = $('#access-notice');
  $('#access-text').textContent = text;
  n.dataset.reason = reason;
  n.hidden = false;
  clearTimeout(accessTimer);
  accessTimer = setTimeout(() => {
    n.hidden = true;
  }, 20000);
}

$('#access-dismiss').addEventListener('click', () => {
  $('#access-notice').hidden = true;
});

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
  app.deleting = id;
  try {
    await rest('DELETE', `/dashboard/layouts/${encodeURIComponent(id)}`);
    if (app.currentId === id) {
      app.handle?.unsubscribe(layoutHandlers);
      app.handle = null;
      app.currentId = null;
    }
    await reloadLayouts();
    if (!app.currentId) openDefault();
    toast('Layout deleted.');
  } catch (err) {
    toast(`Delete failed: ${err.message}`);
  } finally {
    app.deleting = null;
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
const userEvents = { widgets: false, gone: new Map() }; // since the last reload
function onUserEvent(m) {
  const ev = m.event || '';
  const l = m.layout || {};
  if (ev === 'layout.shared' && !app.layouts.some((x) => x.id === l.id)) {
    toast(`${l.owner || 'Someone'} shared “${l.name || 'a layout'}” with you${m.role || l.role ? ` (${m.role || l.role})` : ''}.`);
  }
  if (ev === 'layout.unshared') userEvents.gone.set(l.id, 'revoked');
  if (ev === 'layout.deleted') userEvents.gone.set(l.id, 'deleted');
  if (ev.startsWith('widget.')) userEvents.widgets = true;
  // Several events often come together (a default change touches two layouts).
  clearTimeout(userEventTimer);
  userEventTimer = setTimeout(async () => {
    const widgets = userEvents.widgets;
    const gone = new Map(userEvents.gone);
    userEvents.widgets = false;
    userEvents.gone.clear();
    const cur = app.currentId;
    const before = app.layouts.find((x) => x.id === cur);
    try {
      if (widgets) await reloadWidgets();
      await reloadLayouts();
      if (cur && app.currentId === cur && !app.layouts.some((x) => x.id === cur)) {
        // Still shown, yet no longer listed: ended here first (the socket's
        // `unsubscribed` may come later, or not at all for a layout not subscribed).
        app.layouts.push(before || { id: cur, name: app.handle?.layout?.name });
        layoutGone(cur, gone.get(cur) || 'deleted');
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
    if (opt) opt.textContent = optionText(summary);
  }
  document.title = `${layout.name} · dashsync`;
  if (app.mode === 'link') $('#kiosk-name').textContent = layout.name;

  const ids = Object.keys(layout.items);
  for (const id of ids) {
    if (!app.tiles.has(id)) createTile(id);
    if (!app.widgets.has(id)) fetchWidget(id);
    placeTile(id, layout.items[id]);
  }
  for (const id of [...app.tiles.keys()]) if (!layout.items[id]) removeTile(id);
  $('#empty').hidden = ids.length > 0;
  if (app.mode === 'link') fitKiosk(layout);
  grid.dataset.ready = 'true';
}

/** fetchWidget reads one widget placed on the layout that the page does not know: a
 * widget of the owner of a shared layout (or of a link's layout), or one just created
 * elsewhere. GET /api/dashboard/widgets/:id is open to every role, links included. */
function fetchWidget(id) {
  if (app.widgetFetches.has(id) || app.widgetUnreadable.has(id)) return;
  app.widgetFetches.add(id);
  rest('GET', `/dashboard/widgets/${encodeURIComponent(id)}`)
    .then((r) => {
      if (!r?.widget) return;
      app.widgets.set(id, r.widget);
      renderTileChrome(id);
      if (r.data && !app.data.has(id)) onData(id, r.data);
    })
    .catch((err) => {
      if (err.status === 404 || err.status === 403) app.widgetUnreadable.add(id);
      else console.warn('dashsync: cannot read widget', id, err);
    })
    .finally(() => app.widgetFetches.delete(id));
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
    // Nothing cached yet for a fetched kind: ask for it rather than wait a period
    // (a viewer may not: the server refreshes subscribed widgets anyway).
    if (d === null && FETCHED(app.widgets.get(id)) && mayRefresh()) askRefresh(id);
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
  if (ev.button !== 0 || NARROW.matches) return;
  if (!mayEdit()) {
    // Read only: a press on the title bar neither moves the tile nor starts selecting text.
    ev.preventDefault();
    return;
  }
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
  if (ev.target !== tile || !ARROWS[ev.key] || ev.altKey || ev.ctrlKey || ev.metaKey || !mayEdit()) return;
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
  if (!from || !mayEdit()) return;
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
  if (!mayEdit()) return;
  app.ds.edit(app.currentId, ops, { onConflict: 'drop' }).then(
    (r) => {
      if (kind === 'rename' && r.status === 'committed') reloadLayouts().catch(() => {});
    },
    (err) => {
      // Access removed or layout deleted: the access notice says it.
      if (err.code === 'revoked' || err.code === 'deleted') return;
      if (err.code === 'forbidden') toast('You can only view this layout: the change was not made.');
      else toast(`That change was refused: ${err.message}`);
    },
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
      const viaLink = u.user.startsWith('link:');
      const label = viaLink ? 'link viewer' : u.user;
      const tabs = u.clients.length > 1 ? `, ${u.clients.length} ${viaLink ? 'screens' : 'tabs'}` : '';
      li.title = `${label}${me ? ' (you)' : ''}${tabs}`;
      li.setAttribute('aria-label', li.title);
      const avatar = document.createElement('span');
      avatar.className = 'avatar';
      avatar.setAttribute('aria-hidden', 'true');
      avatar.textContent = viaLink ? '↗' : u.user.slice(0, 1).toUpperCase();
      avatar.style.backgroundColor = viaLink ? '#5b6677' : colourOf(u.user);
      const name = document.createElement('span');
      name.className = 'presence-name';
      name.setAttribute('aria-hidden', 'true');
      name.textContent = me ? `${label} (you)` : label;
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
// The Share dialog (SPEC §10; the owner's alone)
// ---------------------------------------------------------------------------

const share = { layoutId: null, access: null, newLink: null };

function shareError(text = '') {
  $('#share-error').textContent = text;
}

async function openShare() {
  if (app.role !== 'owner' || !app.currentId) return;
  const dlg = $('#share-dialog');
  if (share.layoutId !== app.currentId) {
    share.newLink = null;
    share.access = null;
  }
  share.layoutId = app.currentId;
  $('#share-name').textContent = app.handle?.layout?.name || '';
  shareError();
  renderShare();
  if (!dlg.open) dlg.showModal();
  $('#share-user').focus();
  await loadAccess();
}

function closeShare() {
  const dlg = $('#share-dialog');
  if (dlg.open) dlg.close();
}

async function loadAccess() {
  const id = share.layoutId;
  try {
    const a = await rest('GET', `/dashboard/layouts/${encodeURIComponent(id)}/access`);
    if (share.layoutId !== id) return;
    share.access = a;
    renderShare();
  } catch (err) {
    shareError(`Could not read who has access: ${err.message}`);
  }
}

const roleName = (r) => (r === 'editor' ? 'Editor' : r === 'viewer' ? 'Viewer' : 'Owner');

function formatDate(s) {
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' });
}

function renderShare() {
  const a = share.access;
  const ul = $('#share-members');
  ul.setAttribute('aria-busy', a ? 'false' : 'true');
  if (!a) {
    ul.replaceChildren(el('li', 'muted', 'Loading…'));
    $('#share-links').replaceChildren();
    return;
  }
  const person = (user, role) => {
    const li = document.createElement('li');
    li.className = 'member';
    li.dataset.user = user;
    li.dataset.role = role;
    const avatar = el('span', 'avatar', user.slice(0, 1).toUpperCase());
    avatar.setAttribute('aria-hidden', 'true');
    avatar.style.backgroundColor = colourOf(user);
    li.append(avatar, el('span', 'member-name', user === app.user ? `${user} (you)` : user));
    return li;
  };
  const owner = person(a.owner, 'owner');
  owner.append(el('span', 'member-owner muted', 'Owner'));
  const members = Object.entries(a.users || {})
    .sort(([x], [y]) => x.localeCompare(y))
    .map(([user, role]) => {
      const li = person(user, role);
      const sel = document.createElement('select');
      sel.className = 'member-role';
      sel.setAttribute('aria-label', `Role of ${user}`);
      for (const r of ['viewer', 'editor']) {
        const o = document.createElement('option');
        o.value = r;
        o.textContent = roleName(r);
        sel.append(o);
      }
      sel.value = role;
      sel.addEventListener('change', () => putAccess({ [user]: sel.value }, `${user} is now ${sel.value === 'viewer' ? 'a viewer' : 'an editor'}.`));
      const rm = el('button', 'member-remove link', 'Remove');
      rm.type = 'button';
      rm.setAttribute('aria-label', `Remove ${user}`);
      rm.addEventListener('click', () => putAccess({ [user]: null }, `${user} no longer has access.`));
      li.append(sel, rm);
      return li;
    });
  ul.replaceChildren(owner, ...members);
  if (members.length === 0) ul.append(el('li', 'member-none muted', 'Nobody else yet.'));

  const nl = share.newLink;
  $('#share-link-new').hidden = !nl;
  if (nl) $('#share-link-url').value = nl.url;
  const links = (a.links || []).slice().sort((x, y) => (x.createdAt < y.createdAt ? 1 : -1));
  $('#share-links').replaceChildren(
    ...links.map((l) => {
      const li = document.createElement('li');
      li.className = 'link-item';
      li.dataset.linkId = l.id;
      const text = el('span', 'link-text');
      text.append(el('strong', '', nl && nl.id === l.id ? 'New view-only link' : 'View-only link'), el('span', 'muted', ` · created ${formatDate(l.createdAt)} · expires ${formatDate(l.expiresAt)}`));
      const rv = el('button', 'link-revoke link danger', 'Revoke');
      rv.type = 'button';
      rv.setAttribute('aria-label', `Revoke the link created ${formatDate(l.createdAt)}`);
      rv.addEventListener('click', () => revokeLink(l.id));
      li.append(text, rv);
      return li;
    }),
  );
  if (links.length === 0) $('#share-links').append(el('li', 'link-none muted', 'No links.'));
}

/** putAccess merges users into the access list (null removes one), based on the
 * version shown: when someone changed it meanwhile, the list is read again. */
async function putAccess(users, done) {
  const id = share.layoutId;
  shareError();
  try {
    const body = { users };
    if (share.access && Number.isInteger(share.access.version)) body.version = share.access.version;
    share.access = await rest('PUT', `/dashboard/layouts/${encodeURIComponent(id)}/access`, body);
    renderShare();
    if (done) announce(done);
  } catch (err) {
    if (err.status === 409) {
      await loadAccess();
      shareError('The access list changed meanwhile (another tab?): here it is as it is now. Try again.');
    } else {
      shareError(err.message);
      renderShare(); // a refused role change puts the select back
    }
  }
}

$('#share-btn').addEventListener('click', () => openShare());
$('#share-close').addEventListener('click', () => closeShare());

$('#share-add-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const user = $('#share-user').value.trim();
  const role = $('#share-role').value;
  if (!user) return;
  if (share.access && user === share.access.owner) {
    shareError(`${user} owns this layout already.`);
    return;
  }
  await putAccess({ [user]: role }, `${user} can now ${role === 'viewer' ? 'view' : 'edit'} this layout.`);
  if (!$('#share-error').textContent) $('#share-user').value = '';
});

$('#share-link-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const id = share.layoutId;
  shareError();
  try {
    const l = await rest('POST', `/dashboard/layouts/${encodeURIComponent(id)}/links`, { role: 'viewer', ttlSeconds: Number($('#share-link-ttl').value) });
    share.newLink = { id: l.id, url: linkURL(l.token) };
    renderShare();
    $('#share-link-url').select();
    await loadAccess();
  } catch (err) {
    shareError(`Could not create a link: ${err.message}`);
  }
});

/** linkURL is the address of the link page: the token alone (the server's `hello`
 * names the link's layout). */
function linkURL(token) {
  const u = new URL('/', location.href);
  u.searchParams.set('link', token);
  return u.toString();
}

$('#share-link-copy').addEventListener('click', async () => {
  const input = $('#share-link-url');
  const btn = $('#share-link-copy');
  let ok = false;
  try {
    await navigator.clipboard.writeText(input.value);
    ok = true;
  } catch {
    input.select();
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
  }
  btn.textContent = ok ? 'Copied' : 'Press Ctrl+C';
  input.select();
  setTimeout(() => {
    btn.textContent = 'Copy';
  }, 2000);
});

async function revokeLink(linkId) {
  const id = share.layoutId;
  shareError();
  try {
    await rest('DELETE', `/dashboard/layouts/${encodeURIComponent(id)}/links/${encodeURIComponent(linkId)}`);
    if (share.newLink?.id === linkId) share.newLink = null;
    announce('The link was revoked: screens showing it stop at once.');
    await loadAccess();
  } catch (err) {
    shareError(`Could not revoke the link: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------
// The link page: /?link=<token> (SPEC §10)
// ---------------------------------------------------------------------------

/**
 * startLink shows one layout through a link token: live, read only, with no toolbar,
 * for a wall display. It calls only what a link may: GET of the layout (to check the
 * link before connecting), GET of each widget placed on it, and the WebSocket
 * (subscribe to the layout and its widgets, ping). The layout is the one the token
 * names ("dsl_<layout id>_<link id>_<secret>"; the server checks it is the link's).
 */
async function startLink(token, layoutId) {
  app.mode = 'link';
  document.body.classList.add('kiosk');
  $('#toolbar').hidden = true;
  $('#signin').hidden = true;
  $('#kiosk-badge').hidden = false;
  const grid = $('#grid');
  grid.dataset.mode = 'link';
  grid.dataset.role = 'viewer';
  layoutId = layoutId || layoutOfLinkToken(token);
  if (!layoutId) return linkEnded('unauthorized');
  const layoutPath = `/api/dashboard/layouts/${encodeURIComponent(layoutId)}`;
  // The link's state, as the server sees it: 401 is a revoked, expired or unknown link.
  const check = async () => {
    const res = await fetch(layoutPath, { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
    return res.status;
  };
  let status;
  try {
    status = await check();
  } catch {
    status = 0; // the server cannot be reached: the client retries
  }
  if (status === 401) return linkEnded('unauthorized');
  if (status === 404 || status === 403) return linkEnded('not_found');

  const ds = new DashSync({
    url: '/api/ws',
    token,
    // A browser cannot tell a refused upgrade from a dropped one: after a failed
    // attempt, ask REST whether the link still works before trying again.
    checkToken: async () => {
      const st = await check();
      return st !== 401 && st !== 404 && st !== 403;
    },
  });
  app.ds = ds;
  window.dashsync = ds;
  ds.on('state', (s) => {
    const text = s === 'open' ? 'Live' : s === 'connecting' ? 'Connecting…' : 'Offline';
    setConnection(s, text);
    $('#kiosk-state').dataset.state = s;
    $('#kiosk-state').textContent = text;
  });
  ds.on('ended', ({ reason }) => linkEnded(reason));
  ds.on('error', (err) => console.warn('dashsync:', err));
  ds.connect().catch(() => {});
  app.currentId = layoutId;
  grid.dataset.layoutId = layoutId;
  ds.subscribeLayout(layoutId, {
    onChange(layout) {
      if (app.mode === 'link' && !ds.ended) renderLayout(layout);
    },
    onUnsubscribed({ reason }) {
      // The server closes a revoked link's socket (4003) right after: the client then
      // ends by itself. Should that close not come, stop here anyway.
      linkEnded(reason, { close: false });
      setTimeout(() => ds.ended || ds.close(), 5000);
    },
  })
    .then((handle) => {
      app.handle = handle;
      renderLayout(handle.layout);
    })
    .catch((err) => {
      if (!ds.ended) linkEnded(err.code === 'not_found' ? 'not_found' : err.code || 'revoked');
    });
  window.addEventListener('resize', () => app.handle && !ds.ended && fitKiosk(app.handle.layout));
  setInterval(tick, 1000);
}

/** layoutOfLinkToken reads the layout id a link token names, "" if it names none:
 * "dsl_<layout id>_<link id>_<secret>", the secret 43 characters of base64url. */
function layoutOfLinkToken(token) {
  const rest = token.startsWith('dsl_') ? token.slice(4, -44) : '';
  const i = rest.lastIndexOf('_');
  return i > 0 ? rest.slice(0, i) : '';
}

const LINK_ENDED = {
  revoked: 'The owner revoked this link, or it has expired: ask them for a new one.',
  expired: 'This link has expired: ask the layout’s owner for a new one.',
  unauthorized: 'This link no longer works: it was revoked or has expired.',
  deleted: 'The layout this link showed was deleted.',
  not_found: 'The layout this link names does not exist (any more).',
};

/** linkEnded replaces the link page's layout with a notice saying why it stopped. */
function linkEnded(reason, { close = true } = {}) {
  const box = $('#link-ended');
  if (!box.hidden && box.dataset.reason) return;
  box.dataset.reason = reason;
  $('#link-ended-text').textContent = LINK_ENDED[reason] || LINK_ENDED.revoked;
  box.hidden = false;
  for (const id of [...app.tiles.keys()]) removeTile(id);
  $('#grid').hidden = true;
  $('#grid').dataset.ready = 'false';
  $('#empty').hidden = true;
  $('#kiosk-badge').hidden = true;
  setConnection('closed', 'Ended');
  if (close && app.ds && !app.ds.ended) app.ds.close();
}

/** fitKiosk sizes the rows so that the whole layout fits the window's height. */
function fitKiosk(layout) {
  const rows = Math.max(1, ...Object.values(layout.items || {}).map((it) => it.y + it.h));
  const grid = $('#grid');
  const cs = getComputedStyle(grid);
  const gap = parseFloat(cs.rowGap) || 0;
  const main = document.querySelector('main');
  const ms = getComputedStyle(main);
  const avail = window.innerHeight - (parseFloat(ms.paddingTop) || 0) - (parseFloat(ms.paddingBottom) || 0);
  const rowH = Math.floor((avail - gap * (rows - 1)) / rows);
  grid.style.setProperty('--row-h', `${clamp(rowH, 40, 240)}px`);
}

$('#kiosk-fullscreen').addEventListener('click', () => toggleFullscreen());
document.addEventListener('keydown', (ev) => {
  if (app.mode === 'link' && (ev.key === 'f' || ev.key === 'F') && !ev.ctrlKey && !ev.metaKey && !ev.altKey) toggleFullscreen();
});

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen?.().catch(() => {});
  else document.documentElement.requestFullscreen?.().catch(() => {});
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
    if (!FETCHED(w) || app.ds.state !== 'open' || !mayRefresh()) continue;
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

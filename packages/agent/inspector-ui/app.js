// burrow inspector: the page the agent serves on its inspector port (docs/inspector.md).
//
// Everything on it comes from the agent's JSON API on the same origin: the header from
// GET /api/status, the list from GET /api/exchanges and then the Server-Sent Events of
// /api/events, the detail pane from GET /api/exchanges/ID and its bodies. Plain DOM, no framework,
// no build step. Captured traffic is untrusted: it only ever reaches the page as text nodes
// (textContent) or as attribute values, never as HTML.

/** Bytes of a binary body shown as a hex dump. */
const HEX_DUMP_BYTES = 4096;
/** Characters of a text body shown (bodies are kept up to 1 MiB; a <pre> that big is slow). */
const TEXT_SHOW_CHARS = 200_000;
/** While an open WebSocket is selected its messages are fetched again this often. */
const OPEN_SOCKET_REFRESH_MS = 1000;
/** The capture stats in the header are fetched again at most this often. */
const STATUS_REFRESH_MS = 300;

const state = {
  /** id -> SUMMARY, for every exchange in the list. */
  exchanges: new Map(),
  /** id -> the list's row element. */
  rows: new Map(),
  selectedId: null,
  /** The ring buffer's size (from /api/status): the list keeps no more than the agent does. */
  maxExchanges: Infinity,
  filter: '',
};

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const listEl = $('exchange-list');
const detailEl = $('detail');

// ---------------------------------------------------------------------------------------------
// Small helpers: DOM building, formatting, fetching
// ---------------------------------------------------------------------------------------------

/**
 * Creates an element. `props`: class, testid, dataset, on<event> handlers, any attribute.
 * Children are nodes or strings (strings become text nodes, so data is never parsed as HTML).
 */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'dataset') for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function formatBytes(n) {
  if (n === null || n === undefined) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function formatDuration(ms) {
  if (ms === null || ms === undefined) return '…';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** 14:03:22.481 in local time. */
function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const two = (n) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** The CSS class that colours a status: status-2xx, status-4xx, status-error, status-pending. */
function statusClass(summary) {
  if (summary.status === null || summary.status === undefined) {
    return summary.state === 'open' ? 'status-pending' : 'status-error';
  }
  return `status-${String(summary.status)[0]}xx`;
}

function statusText(summary) {
  if (summary.status !== null && summary.status !== undefined) return String(summary.status);
  return summary.state === 'open' ? '…' : 'ERR';
}

/** fetch() that throws an Error naming the route and the API's error code on a non-2xx answer. */
async function request(url, init) {
  const res = await fetch(url, init);
  if (!res.ok) {
    let detail = '';
    try {
      const body = await res.json();
      detail = body.error ? `: ${body.error}${body.message ? ` (${body.message})` : ''}` : '';
    } catch {
      // not JSON: the status says enough
    }
    const error = new Error(`${init?.method ?? 'GET'} ${url} answered ${res.status}${detail}`);
    error.status = res.status;
    throw error;
  }
  return res;
}

async function getJson(url, init) {
  return (await request(url, init)).json();
}

/** The SUMMARY fields of a DETAIL (a DETAIL is a SUMMARY plus more). */
function summaryOf(detail) {
  const { publicUrl: _u, target: _t, request: _q, response: _r, timing: _i, websocket, ...summary } = detail;
  if (websocket && summary.messages === undefined) summary.messages = websocket.messages.length;
  return summary;
}

// ---------------------------------------------------------------------------------------------
// Header: tunnels and capture stats
// ---------------------------------------------------------------------------------------------

let statusTimer = null;

async function refreshStatus() {
  statusTimer = null;
  let status;
  try {
    status = await getJson('/api/status');
  } catch {
    return; // the live indicator already says when the agent is gone
  }
  renderTunnels(status.tunnels ?? []);
  const capture = status.capture ?? {};
  if (typeof capture.maxExchanges === 'number') state.maxExchanges = capture.maxExchanges;
  // Fewer than listed: the agent dropped some to stay within its byte limit. Catch up.
  if (typeof capture.exchanges === 'number' && capture.exchanges < state.exchanges.size) void reloadList();
  const stats = $('capture-stats');
  stats.textContent = `${capture.exchanges ?? 0} captured · ${formatBytes(capture.bytes ?? 0)} of ${formatBytes(capture.maxBytes)}`;
  stats.title =
    `The agent keeps at most ${capture.maxExchanges} exchanges and ${formatBytes(capture.maxBytes)}, ` +
    `and the first ${formatBytes(capture.bodyLimit)} of each body.`;
}

/** Fetches the status again soon, at most once per STATUS_REFRESH_MS. */
function scheduleStatusRefresh() {
  if (statusTimer === null) statusTimer = setTimeout(refreshStatus, STATUS_REFRESH_MS);
}

function renderTunnels(tunnels) {
  const items = tunnels.map((t) => {
    // Only http(s) URLs become links: anything else is shown as text.
    const link = /^https?:\/\//i.test(t.url)
      ? h('a', { href: t.url, target: '_blank', rel: 'noopener noreferrer', testid: 'tunnel-url' }, t.url)
      : h('span', { testid: 'tunnel-url' }, t.url);
    return h(
      'li',
      { title: `tunnel ${t.subdomain}` },
      link,
      h('span', { class: 'target' }, ` → ${t.target}`),
    );
  });
  $('tunnels').replaceChildren(...items);
}

// ---------------------------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------------------------

/** How far an exchange got: a copy that got less far than the one we have is stale. */
function progress(summary) {
  if (summary.state !== 'open') return 2;
  return summary.status === null || summary.status === undefined ? 0 : 1;
}

/** Adds or updates one exchange in the list. */
function upsert(summary) {
  const known = state.exchanges.get(summary.id);
  // An answer of GET /api/exchanges may be older than an event already applied.
  if (known && progress(known) > progress(summary)) return;
  state.exchanges.set(summary.id, summary);
  const row = renderRow(summary);
  const old = state.rows.get(summary.id);
  if (old) old.replaceWith(row);
  else insertRow(row, summary.id);
  state.rows.set(summary.id, row);
  trimList();
  updateCounts();
}

/** Newest first: almost every new row goes to the top, so the scan is short. */
function insertRow(row, id) {
  for (const child of listEl.children) {
    if (Number(child.dataset.id) < id) {
      child.before(row);
      return;
    }
  }
  listEl.append(row);
}

/** Drops the oldest rows beyond the agent's own limit (it forgot them already). */
function trimList() {
  while (state.exchanges.size > state.maxExchanges) {
    const oldest = Math.min(...state.exchanges.keys());
    removeExchange(oldest);
  }
}

function removeExchange(id) {
  state.exchanges.delete(id);
  state.rows.get(id)?.remove();
  state.rows.delete(id);
}

function renderRow(s) {
  const selected = s.id === state.selectedId;
  const markers = [
    s.kind === 'websocket' && h('span', { class: 'badge ws', testid: 'ws-marker', title: 'WebSocket' }, 'WS'),
    s.replayOf !== null &&
      s.replayOf !== undefined &&
      h('span', { class: 'badge replay', testid: 'replay-marker', title: `replay of #${s.replayOf}` }, '↻'),
    s.hint &&
      h('span', { class: 'hint-icon', testid: 'hint-marker', title: s.hint, 'aria-label': 'diagnosis' }, '⚠'),
  ];
  const size =
    s.kind === 'websocket'
      ? `${s.messages ?? 0} msg${s.messages === 1 ? '' : 's'}`
      : `↑${formatBytes(s.requestBytes)} ↓${formatBytes(s.responseBytes)}`;
  const row = h(
    'button',
    {
      type: 'button',
      class: 'row row-grid',
      role: 'option',
      'aria-selected': selected ? 'true' : 'false',
      tabindex: selected || state.selectedId === null ? '0' : '-1',
      testid: 'exchange-row',
      title: s.error ? `${s.method} ${s.path}: ${s.error}` : `${s.method} ${s.path}`,
      dataset: {
        id: s.id,
        kind: s.kind,
        method: s.method,
        path: s.path,
        status: s.status ?? '',
        state: s.state,
        replayOf: s.replayOf ?? '',
      },
      onclick: () => select(s.id),
    },
    h('span', { class: 'time' }, formatTime(s.startedAt)),
    h('span', { class: 'method' }, s.method),
    h('span', { class: 'path' }, markers, s.path),
    h('span', { class: `status num ${statusClass(s)}`, testid: 'row-status' }, statusText(s)),
    h('span', { class: 'duration num' }, formatDuration(s.durationMs)),
    h('span', { class: 'size num' }, size),
  );
  row.hidden = !matchesFilter(s);
  return row;
}

function matchesFilter(s) {
  if (state.filter === '') return true;
  const haystack = `${s.method} ${s.path} ${s.status ?? ''} ${s.kind} ${s.error ?? ''}`.toLowerCase();
  return state.filter
    .toLowerCase()
    .split(/\s+/)
    .every((word) => haystack.includes(word));
}

function applyFilter() {
  for (const [id, row] of state.rows) row.hidden = !matchesFilter(state.exchanges.get(id));
  updateCounts();
}

function updateCounts() {
  const total = state.exchanges.size;
  const shown = [...state.rows.values()].filter((r) => !r.hidden).length;
  $('count').textContent = shown === total ? `${total}` : `${shown} of ${total}`;
  $('empty-list').hidden = total > 0;
}

/** Loads the whole list (on start and after the event stream reconnected) and merges it. */
async function reloadList() {
  let body;
  try {
    body = await getJson('/api/exchanges');
  } catch {
    return;
  }
  const ids = new Set(body.exchanges.map((s) => s.id));
  // Exchanges the agent no longer has (dropped by its ring buffer, or cleared elsewhere).
  for (const id of [...state.exchanges.keys()]) if (!ids.has(id)) removeExchange(id);
  for (const summary of body.exchanges) upsert(summary);
  updateCounts();
  const fromHash = Number(location.hash.slice(1));
  if (state.selectedId === null && Number.isInteger(fromHash) && state.exchanges.has(fromHash)) {
    void select(fromHash);
  }
}

/** Arrow keys move the selection in the list. */
function onListKey(event) {
  if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
  const visible = [...listEl.children].filter((r) => !r.hidden);
  const at = visible.findIndex((r) => Number(r.dataset.id) === state.selectedId);
  const next = visible[at + (event.key === 'ArrowDown' ? 1 : -1)] ?? (at < 0 ? visible[0] : undefined);
  if (!next) return;
  event.preventDefault();
  void select(Number(next.dataset.id), { focus: true });
}

// ---------------------------------------------------------------------------------------------
// Live updates: Server-Sent Events
// ---------------------------------------------------------------------------------------------

function setLive(stateName, text) {
  const el = $('live-status');
  el.dataset.state = stateName;
  el.textContent = text;
}

function connectEvents() {
  const events = new EventSource('/api/events');
  events.addEventListener('open', () => {
    setLive('live', 'live');
    // Events are only sent from now on: what happened before (or while disconnected) comes
    // from the list, merged with the events that arrive meanwhile.
    void reloadList();
    void refreshStatus();
  });
  events.addEventListener('exchange', (event) => {
    let summary;
    try {
      summary = JSON.parse(event.data);
    } catch {
      return;
    }
    upsert(summary);
    if (summary.id === state.selectedId) void refreshDetail();
    scheduleStatusRefresh();
  });
  // The ring buffer was emptied (by this page or another client of the API).
  events.addEventListener('cleared', () => forgetAll());
  events.addEventListener('error', () => {
    if (events.readyState === EventSource.CLOSED) {
      // The browser gave up (the agent answered with an error): try again a little later.
      setLive('closed', 'disconnected');
      events.close();
      setTimeout(connectEvents, 3000);
    } else {
      setLive('reconnecting', 'agent unreachable, reconnecting…');
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The detail pane
// ---------------------------------------------------------------------------------------------

/** The parts of the pane that survive a refresh of the same exchange (the form, the curl box). */
const pane = { id: null, head: null, tools: null, content: null };
let detailBusy = false;
let detailAgain = false;
let socketTimer = null;

async function select(id, { focus = false } = {}) {
  if (state.selectedId !== id) {
    const before = state.rows.get(state.selectedId);
    if (before) {
      before.setAttribute('aria-selected', 'false');
      before.tabIndex = -1;
    }
    state.selectedId = id;
    history.replaceState(null, '', `#${id}`);
  }
  const row = state.rows.get(id);
  if (row) {
    row.setAttribute('aria-selected', 'true');
    row.tabIndex = 0;
    row.scrollIntoView({ block: 'nearest' });
    if (focus) row.focus();
  }
  await refreshDetail();
}

/** Fetches the selected exchange and renders it; one fetch at a time, the latest wins. */
async function refreshDetail() {
  if (detailBusy) {
    detailAgain = true;
    return;
  }
  detailBusy = true;
  try {
    do {
      detailAgain = false;
      const id = state.selectedId;
      if (id === null) break;
      let detail;
      try {
        detail = await getJson(`/api/exchanges/${id}`);
      } catch (error) {
        if (id === state.selectedId) renderMissing(id, error);
        continue;
      }
      if (id !== state.selectedId) continue;
      upsert(summaryOf(detail));
      renderDetail(detail);
    } while (detailAgain);
  } finally {
    detailBusy = false;
  }
}

function renderMissing(id, error) {
  pane.id = null;
  const text =
    error.status === 404
      ? `Exchange #${id} is no longer captured (the agent keeps the most recent ones only).`
      : `Could not load exchange #${id}: ${error.message}`;
  detailEl.replaceChildren(h('p', { class: 'placeholder', testid: 'detail-missing' }, text));
}

function renderDetail(d) {
  if (pane.id !== d.id) {
    // Another exchange: a fresh pane (the form and the curl box belong to the previous one).
    pane.id = d.id;
    pane.head = h('div');
    pane.tools = h('div');
    pane.content = h('div');
    detailEl.replaceChildren(pane.head, pane.tools, pane.content);
  }
  detailEl.dataset.id = String(d.id);
  detailEl.dataset.kind = d.kind;
  pane.head.replaceChildren(...renderHead(d));
  pane.content.replaceChildren(...renderContent(d));

  // An open WebSocket is also looked at again now and then while selected, so that its messages
  // keep coming even if an event was missed (the stream reconnecting, say).
  clearTimeout(socketTimer);
  if (d.kind === 'websocket' && d.state === 'open') {
    socketTimer = setTimeout(() => void refreshDetail(), OPEN_SOCKET_REFRESH_MS);
  }
}

function renderHead(d) {
  const url = (d.publicUrl ?? '') + d.path;
  const status = d.response ? `${d.response.status} ${d.response.statusText ?? ''}`.trim() : statusText(d);
  const meta = [
    h('span', {}, `#${d.id}`),
    h('span', {}, d.kind === 'websocket' ? 'WebSocket' : 'HTTP'),
    h('span', {}, formatTime(d.startedAt)),
    h('span', {}, d.state === 'open' ? 'in progress' : formatDuration(d.durationMs)),
    d.target && h('span', { title: 'the local service' }, `→ ${d.target}`),
  ];
  if (d.replayOf !== null && d.replayOf !== undefined) {
    meta.push(
      h(
        'span',
        { testid: 'detail-replay-of' },
        'replay of ',
        h(
          'a',
          { href: `#${d.replayOf}`, onclick: (e) => (e.preventDefault(), void select(d.replayOf)) },
          `#${d.replayOf}`,
        ),
      ),
    );
  }
  const title = h(
    'h2',
    { class: 'detail-title', testid: 'detail-title' },
    h('span', { class: 'method' }, d.method),
    h('span', { class: 'url' }, url),
    h('span', { class: `status ${statusClass(d)}`, testid: 'detail-status' }, status),
  );
  const boxes = [];
  if (d.hint) {
    boxes.push(
      h(
        'div',
        { class: 'box hint', testid: 'hint', role: 'note' },
        h('strong', {}, 'Diagnosis'),
        h('p', {}, d.hint),
      ),
    );
  }
  if (d.error) {
    boxes.push(
      h(
        'div',
        { class: 'box error', testid: 'error', role: 'alert' },
        h('strong', {}, 'Error'),
        h('p', {}, d.error),
      ),
    );
  }
  return [title, h('div', { class: 'detail-meta' }, meta), renderActions(d), ...boxes];
}

function renderContent(d) {
  const ws = d.kind === 'websocket';
  const sections = [
    h(
      'section',
      { testid: 'request' },
      h('h3', {}, ws ? 'Handshake request' : 'Request'),
      headersTable(d.request?.headers ?? [], 'request-headers'),
      !ws && bodySection(d.id, 'request', d.request?.body),
    ),
    h(
      'section',
      { testid: 'response' },
      h('h3', {}, ws ? 'Handshake response' : 'Response'),
      d.response
        ? [
            headersTable(d.response.headers, 'response-headers'),
            !ws && bodySection(d.id, 'response', d.response.body),
          ]
        : h('p', { class: 'muted' }, d.state === 'open' ? 'Waiting for the response…' : 'No response.'),
    ),
  ];
  if (ws && d.websocket) sections.push(renderWebSocket(d.websocket));
  sections.push(renderTiming(d));
  return sections;
}

function headersTable(headers, testid) {
  if (headers.length === 0) return h('p', { class: 'muted', testid }, 'No headers.');
  return h(
    'table',
    { class: 'kv', testid },
    h(
      'tbody',
      {},
      headers.map(([name, value]) => h('tr', {}, h('th', { scope: 'row' }, name), h('td', {}, value))),
    ),
  );
}

function renderTiming(d) {
  const start = d.timing?.responseStartMs;
  const total = d.timing?.durationMs ?? d.durationMs;
  const rows = [['started', new Date(d.startedAt).toLocaleString()]];
  if (start !== null && start !== undefined) rows.push(['response head after', formatDuration(start)]);
  rows.push(['total', d.state === 'open' ? 'still open' : formatDuration(total)]);
  let bar = null;
  if (typeof start === 'number' && typeof total === 'number' && total > 0) {
    const waitPct = Math.min(100, (start / total) * 100);
    const waitEl = h('span', { class: 'wait', title: `waiting ${formatDuration(start)}` });
    const transferEl = h('span', { class: 'transfer', title: `body ${formatDuration(total - start)}` });
    // CSSOM, not a style attribute: allowed by the page's Content-Security-Policy.
    waitEl.style.width = `${Math.max(waitPct, 0.5)}%`;
    transferEl.style.width = `${Math.max(100 - waitPct, 0.5)}%`;
    bar = h('div', { class: 'timing-bar', 'aria-hidden': 'true' }, waitEl, transferEl);
  }
  return h(
    'section',
    { testid: 'timing' },
    h('h3', {}, 'Timing'),
    bar,
    h(
      'table',
      { class: 'kv' },
      h(
        'tbody',
        {},
        rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Bodies: JSON pretty-printed, text, images, a hex dump for the rest
// ---------------------------------------------------------------------------------------------

/** Rendered bodies by id/side/captured size, so that a refresh does not fetch them again. */
const bodyCache = new Map();

function bodySection(id, side, body) {
  if (!body) return null;
  if (body.size === 0 && body.captured === 0) {
    return h('p', { class: 'body-note', testid: `${side}-body`, dataset: { render: 'empty' } }, 'No body.');
  }
  const note = [`${formatBytes(body.size)}`];
  if (body.contentType) note.push(body.contentType);
  const children = [h('h4', {}, 'Body'), h('p', { class: 'body-note' }, note.join(' · '))];
  if (body.truncated) {
    children.push(
      h(
        'p',
        { class: 'body-note truncated', testid: `${side}-body-truncated` },
        `truncated: the inspector kept the first ${formatBytes(body.captured)} of ${formatBytes(body.size)}`,
      ),
    );
  }
  children.push(cachedBodyView(id, side, body));
  return h('div', {}, children);
}

function cachedBodyView(id, side, body) {
  const key = `${id}/${side}/${body.captured}/${body.contentType}`;
  let view = bodyCache.get(key);
  if (!view) {
    view = h(
      'div',
      { testid: `${side}-body`, dataset: { render: 'loading' } },
      h('p', { class: 'muted' }, 'Loading…'),
    );
    void fillBodyView(view, `/api/exchanges/${id}/${side}/body`, body);
    bodyCache.set(key, view);
    // A small cache: the views of the last few exchanges looked at.
    if (bodyCache.size > 24) bodyCache.delete(bodyCache.keys().next().value);
  }
  return view;
}

/** How to show a body of this Content-Type ('sniff': text if it decodes as text, else hex). */
function bodyKind(contentType) {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type.startsWith('image/')) return 'image';
  if (type === 'application/json' || type.endsWith('+json')) return 'json';
  if (
    type.startsWith('text/') ||
    /xml|javascript|ecmascript|x-www-form-urlencoded|yaml|toml|csv|graphql/.test(type)
  ) {
    return 'text';
  }
  if (
    type === 'application/octet-stream' ||
    /^(audio|video|font)\//.test(type) ||
    /zip|gzip|pdf|protobuf|wasm/.test(type)
  ) {
    return 'binary';
  }
  return 'sniff';
}

async function fillBodyView(view, url, body) {
  const kind = bodyKind(body.contentType);
  try {
    if (kind === 'image') {
      showImage(view, url, body);
      return;
    }
    const bytes = new Uint8Array(await (await request(url)).arrayBuffer());
    const text = kind === 'binary' ? null : decodeText(bytes, kind === 'sniff');
    if (text === null) showHex(view, bytes);
    else if (kind === 'json') showJson(view, text, body.truncated);
    else showText(view, text);
  } catch (error) {
    view.dataset.render = 'failed';
    view.replaceChildren(h('p', { class: 'muted' }, `Could not load the body: ${error.message}`));
  }
}

/** UTF-8 text, or null when `strict` and the bytes do not look like text. */
function decodeText(bytes, strict) {
  if (!strict) return new TextDecoder().decode(bytes);
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    // Control characters other than tab, newline and carriage return: binary after all.
    return /[\u0000-\u0008\u000e-\u001f\u007f]/.test(text) ? null : text;
  } catch {
    return null; // not UTF-8 (a truncated body may also cut a character: then a hex dump)
  }
}

function showImage(view, url, body) {
  const caption = h('p', { class: 'body-note' }, 'Loading image…');
  const img = h('img', { src: url, alt: `${body.contentType} body`, testid: 'body-image' });
  img.addEventListener('load', () => {
    view.dataset.render = 'image';
    caption.textContent = `${img.naturalWidth} × ${img.naturalHeight} px`;
  });
  img.addEventListener('error', () => {
    view.dataset.render = 'failed';
    caption.textContent = body.truncated
      ? 'The image cannot be shown: only its beginning was captured.'
      : 'The browser could not decode this image.';
  });
  view.replaceChildren(h('div', { class: 'image-view' }, img), caption);
}

function showText(view, text) {
  const shown = text.length > TEXT_SHOW_CHARS ? text.slice(0, TEXT_SHOW_CHARS) : text;
  view.dataset.render = 'text';
  view.replaceChildren(h('pre', { class: 'body-view', testid: 'body-text' }, shown));
  if (shown !== text)
    view.append(h('p', { class: 'body-note' }, `Showing the first ${TEXT_SHOW_CHARS} characters.`));
}

function showJson(view, text, truncated) {
  let pretty;
  try {
    pretty = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    showText(view, text);
    view.prepend(
      h(
        'p',
        { class: 'body-note' },
        truncated ? 'Truncated JSON, shown as text.' : 'Not valid JSON, shown as text.',
      ),
    );
    return;
  }
  view.dataset.render = 'json';
  const pre = h('pre', { class: 'body-view', testid: 'body-json' });
  if (pretty.length > TEXT_SHOW_CHARS) pre.textContent = pretty;
  else pre.append(...highlightJson(pretty));
  view.replaceChildren(pre);
}

/** Pretty-printed JSON as text nodes and coloured spans (keys, strings, numbers, literals). */
function highlightJson(pretty) {
  const token = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  const nodes = [];
  let last = 0;
  for (const match of pretty.matchAll(token)) {
    if (match.index > last) nodes.push(pretty.slice(last, match.index));
    const [all, string, colon, literal] = match;
    if (string !== undefined) {
      nodes.push(h('span', { class: colon ? 'json-key' : 'json-string' }, string));
      if (colon) nodes.push(colon);
    } else if (literal !== undefined) {
      nodes.push(h('span', { class: 'json-literal' }, all));
    } else {
      nodes.push(h('span', { class: 'json-number' }, all));
    }
    last = match.index + all.length;
  }
  nodes.push(pretty.slice(last));
  return nodes;
}

/** `00000000  89 50 4e 47 0d 0a 1a 0a  00 00 00 0d 49 48 44 52  |.PNG........IHDR|` */
function hexDump(bytes) {
  const lines = [];
  for (let offset = 0; offset < bytes.length; offset += 16) {
    const chunk = bytes.subarray(offset, offset + 16);
    const hex = [...chunk].map((b) => b.toString(16).padStart(2, '0'));
    const left = hex.slice(0, 8).join(' ');
    const right = hex.slice(8).join(' ');
    const ascii = [...chunk].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(
      `${offset.toString(16).padStart(8, '0')}  ${left.padEnd(23)}  ${right.padEnd(23)}  |${ascii}|`,
    );
  }
  return lines.join('\n');
}

function showHex(view, bytes) {
  const shown = bytes.subarray(0, HEX_DUMP_BYTES);
  view.dataset.render = 'hex';
  view.replaceChildren(h('pre', { class: 'body-view hex', testid: 'body-hex' }, hexDump(shown)));
  if (shown.length < bytes.length) {
    view.append(
      h(
        'p',
        { class: 'body-note' },
        `Binary: showing the first ${formatBytes(shown.length)} of ${formatBytes(bytes.length)} captured.`,
      ),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// WebSockets: messages and close frames
// ---------------------------------------------------------------------------------------------

function renderWebSocket(ws) {
  const rows = ws.messages.map((m) =>
    h(
      'tr',
      { testid: 'ws-message', dataset: { direction: m.direction, binary: m.binary } },
      h('td', { class: 'muted' }, `+${formatDuration(m.atMs)}`),
      h(
        'td',
        {
          class: 'arrow',
          title:
            m.direction === 'client'
              ? 'from the public client to your service'
              : 'from your service to the public client',
        },
        m.direction === 'client' ? '→' : '←',
      ),
      h('td', {}, m.binary ? 'binary' : 'text'),
      h('td', { class: 'muted' }, formatBytes(m.size)),
      h(
        'td',
        { class: 'preview', testid: 'ws-preview' },
        m.preview,
        m.truncated ? h('span', { class: 'muted' }, ' …') : null,
      ),
    ),
  );
  return h(
    'section',
    { testid: 'websocket' },
    h('h3', {}, `Messages (${ws.messages.length + (ws.messagesDropped ?? 0)})`),
    h(
      'p',
      { class: 'body-note' },
      '→ from the public client to your service · ← from your service to the client',
    ),
    rows.length > 0
      ? h(
          'table',
          { class: 'messages', testid: 'ws-messages' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['time', '', 'type', 'size', 'preview'].map((t) => h('th', {}, t)),
            ),
          ),
          h('tbody', {}, rows),
        )
      : h('p', { class: 'muted', testid: 'ws-messages' }, 'No messages yet.'),
    ws.messagesDropped > 0 &&
      h('p', { class: 'body-note truncated' }, `${ws.messagesDropped} more messages were not kept.`),
    h('h4', {}, 'Close'),
    h(
      'table',
      { class: 'kv' },
      h(
        'tbody',
        {},
        closeRow('public client', ws.close?.public, 'ws-close-public'),
        closeRow('local service', ws.close?.local, 'ws-close-local'),
      ),
    ),
  );
}

function closeRow(label, frame, testid) {
  const text = frame
    ? `${frame.code ?? '(no code)'}${frame.reason ? ` “${frame.reason}”` : ''}`
    : 'no close frame';
  return h('tr', {}, h('th', {}, label), h('td', { testid, dataset: { code: frame?.code ?? '' } }, text));
}

// ---------------------------------------------------------------------------------------------
// Actions: replay, edit and replay, copy as curl, clear
// ---------------------------------------------------------------------------------------------

function renderActions(d) {
  const status = h('span', { class: 'action-status', testid: 'action-status', role: 'status' });
  const http = d.kind === 'http';
  return h(
    'div',
    { class: 'actions' },
    http &&
      h(
        'button',
        { type: 'button', testid: 'replay', onclick: () => void replay(d.id, {}, status) },
        'Replay',
      ),
    http &&
      h(
        'button',
        { type: 'button', testid: 'edit-replay', onclick: () => void toggleReplayForm(d) },
        'Edit and replay',
      ),
    http &&
      h(
        'button',
        { type: 'button', testid: 'copy-curl', onclick: () => void copyCurl(d.id, status) },
        'Copy as curl',
      ),
    status,
  );
}

function showActionStatus(el, text, failed = false) {
  el.textContent = text;
  el.classList.toggle('failed', failed);
}

/** POSTs a replay (edited by `changes`) and selects the new exchange once it is recorded. */
async function replay(id, changes, statusEl) {
  showActionStatus(statusEl, 'Replaying…');
  try {
    const { id: newId } = await getJson(`/api/exchanges/${id}/replay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(changes),
    });
    await select(newId);
    return true;
  } catch (error) {
    showActionStatus(statusEl, `Replay failed: ${error.message}`, true);
    return false;
  }
}

/** Opens (or closes) the edit-and-replay form under the actions, prefilled from the exchange. */
async function toggleReplayForm(d) {
  const open = pane.tools.querySelector('[data-testid="replay-form"]');
  if (open) {
    open.remove();
    return;
  }
  const form = buildReplayForm(d);
  pane.tools.prepend(form);
  form.querySelector('input[name="path"]').focus();
  await prefillBody(d, form.querySelector('textarea[name="body"]'));
}

function buildReplayForm(d) {
  const headersText = (d.request?.headers ?? []).map(([name, value]) => `${name}: ${value}`).join('\n');
  const edited = { headers: false, body: false };
  const note = h('span', { class: 'action-status', testid: 'replay-form-status', role: 'status' });
  const form = h(
    'form',
    { class: 'replay-form', testid: 'replay-form' },
    h(
      'div',
      { class: 'line' },
      h('input', {
        name: 'method',
        class: 'method-input',
        value: d.method,
        testid: 'replay-method',
        'aria-label': 'Method',
        spellcheck: 'false',
      }),
      h('input', {
        name: 'path',
        value: d.path,
        testid: 'replay-path',
        'aria-label': 'Path',
        spellcheck: 'false',
      }),
    ),
    h(
      'label',
      {},
      'Headers, one per line (Name: value)',
      h(
        'textarea',
        {
          name: 'headers',
          rows: 7,
          testid: 'replay-headers',
          spellcheck: 'false',
          oninput: () => (edited.headers = true),
        },
        headersText,
      ),
    ),
    h(
      'label',
      {},
      'Body',
      h('textarea', {
        name: 'body',
        rows: 5,
        testid: 'replay-body',
        spellcheck: 'false',
        oninput: () => (edited.body = true),
      }),
    ),
    h(
      'div',
      { class: 'line' },
      h('button', { type: 'submit', class: 'primary', testid: 'replay-send' }, 'Send'),
      h('button', { type: 'button', onclick: () => form.remove() }, 'Cancel'),
      note,
    ),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void submitReplayForm(d, form, edited, note);
  });
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') form.remove();
  });
  return form;
}

/** Puts the captured request body in the form when it is text and complete. */
async function prefillBody(d, textarea) {
  const body = d.request?.body;
  if (!body || body.size === 0) return;
  const kind = bodyKind(body.contentType);
  if (body.truncated) {
    textarea.placeholder = `Only the first ${formatBytes(body.captured)} of this ${formatBytes(body.size)} body were kept: type the body to send.`;
    return;
  }
  if (kind === 'image' || kind === 'binary') {
    textarea.placeholder = `The captured body (${formatBytes(body.size)}) is sent as it was unless you type a new one here.`;
    return;
  }
  try {
    const bytes = new Uint8Array(await (await request(`/api/exchanges/${d.id}/request/body`)).arrayBuffer());
    const text = decodeText(bytes, true);
    if (text === null) {
      textarea.placeholder = `The captured body (${formatBytes(body.size)}, binary) is sent as it was unless you type a new one here.`;
    } else if (textarea.value === '') {
      textarea.value = text;
    }
  } catch {
    textarea.placeholder = 'The captured body is sent as it was unless you type a new one here.';
  }
}

/** "Name: value" lines to [name, value] pairs; throws naming the first bad line. */
function parseHeaderLines(text) {
  const pairs = [];
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim() === '') return;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`header line ${index + 1} is not "Name: value"`);
    pairs.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  });
  return pairs;
}

async function submitReplayForm(d, form, edited, note) {
  const method = form.elements.method.value.trim();
  const path = form.elements.path.value.trim();
  if (method === '' || !path.startsWith('/')) {
    showActionStatus(note, 'A method and a path starting with / are needed.', true);
    return;
  }
  // Only what was changed is sent: the agent keeps the rest as captured (binary bodies too).
  const changes = { method, path };
  try {
    if (edited.headers) changes.headers = parseHeaderLines(form.elements.headers.value);
  } catch (error) {
    showActionStatus(note, error.message, true);
    return;
  }
  if (edited.body) changes.body = form.elements.body.value;
  form.querySelector('[data-testid="replay-send"]').disabled = true;
  const ok = await replay(d.id, changes, note);
  // On success the new exchange is selected and the form went with the old pane.
  if (!ok) form.querySelector('[data-testid="replay-send"]').disabled = false;
}

/** Shows the curl command and copies it; where the clipboard is refused, selects it instead. */
async function copyCurl(id, statusEl) {
  let command;
  let note;
  try {
    ({ command, note } = await getJson(`/api/exchanges/${id}/curl`));
  } catch (error) {
    showActionStatus(statusEl, `No curl command: ${error.message}`, true);
    return;
  }
  const box = h('textarea', {
    readonly: true,
    rows: Math.min(8, 2 + Math.ceil(command.length / 90)),
    testid: 'curl-command',
    'aria-label': 'curl command',
  });
  box.value = command;
  pane.tools.querySelector('.curl')?.remove();
  // The note says how to get a body the command cannot carry (truncated, or holding NUL bytes).
  pane.tools.append(
    h('div', { class: 'curl' }, box, note && h('p', { class: 'body-note', testid: 'curl-note' }, note)),
  );
  try {
    await navigator.clipboard.writeText(command);
    showActionStatus(statusEl, 'Copied to the clipboard.');
  } catch {
    box.focus();
    box.select();
    let copied = false;
    try {
      copied = document.execCommand('copy');
    } catch {
      copied = false;
    }
    showActionStatus(statusEl, copied ? 'Copied to the clipboard.' : 'Selected: press Ctrl+C (⌘C) to copy.');
  }
}

async function clearAll() {
  try {
    await request('/api/exchanges', { method: 'DELETE' });
  } catch (error) {
    setLive($('live-status').dataset.state, `clear failed: ${error.message}`);
    return;
  }
  forgetAll();
}

/** Empties the list and the detail pane (after Clear here, or the agent's "cleared" event). */
function forgetAll() {
  for (const id of [...state.exchanges.keys()]) removeExchange(id);
  bodyCache.clear();
  state.selectedId = null;
  pane.id = null;
  clearTimeout(socketTimer);
  history.replaceState(null, '', location.pathname);
  detailEl.removeAttribute('data-id');
  detailEl.replaceChildren(
    h('p', { class: 'placeholder' }, 'Cleared. New exchanges show up as they happen.'),
  );
  updateCounts();
  void refreshStatus();
}

// ---------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------

$('clear').addEventListener('click', () => void clearAll());
$('filter').addEventListener('input', (event) => {
  state.filter = event.target.value.trim();
  applyFilter();
});
listEl.addEventListener('keydown', onListKey);
updateCounts();
void refreshStatus();
connectEvents();

// The public API, as the UI uses it: JSON fetches, problem documents turned
// into errors, the session (login, who, logout) and a Server-Sent Events tail
// read with fetch so that it can resume by Last-Event-ID.
//
// The page never holds a token: on a server with tokens the user logs in
// once (POST /api/v1/session), and the HttpOnly session cookie that answer
// sets rides along with every same-origin request — fetches, the tail and
// the export links alike. A 401 anywhere fires "cs-unauthorized", on which
// the shell shows its login form.

function unauthorized() { document.dispatchEvent(new CustomEvent('cs-unauthorized')); }

export class APIError extends Error {
  constructor(status, detail) { super(detail || ('HTTP ' + status)); this.status = status; }
}

// apiURL builds a URL relative to the page's base (the server's URL prefix).
export function apiURL(path, params) {
  const qs = params ? new URLSearchParams(params).toString() : '';
  return 'api/v1/' + path + (qs ? '?' + qs : '');
}

// seg percent-encodes a chronicle or story name as one path segment.
export const seg = (s) => (s === '.' ? '%2E' : s === '..' ? '%2E%2E' : encodeURIComponent(s));

// call sends one request and returns its JSON (null for 204); an answer
// other than 2xx throws an APIError with the problem document's detail.
async function call(method, path, params, body, signal) {
  const init = { method, headers: { Accept: 'application/json' }, signal, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(apiURL(path, params), init);
  if (!resp.ok) {
    let detail = '';
    try { detail = (await resp.json()).detail; } catch { /* not a problem document */ }
    throw new APIError(resp.status, detail);
  }
  return resp.status === 204 ? null : resp.json();
}

export async function get(path, params, signal) {
  try {
    return await call('GET', path, params, undefined, signal);
  } catch (err) {
    if (err instanceof APIError && err.status === 401) unauthorized();
    throw err;
  }
}

// session is who the page reads as: {name, scopes, chronicles}; "anonymous"
// on a server without tokens. A 401 means no session (the login shows).
export const session = () => get('session');

// login trades a token with the read scope for the session cookie. The
// token goes in the body of this one POST, never in a URL or in storage.
export async function login(token) {
  try {
    return await call('POST', 'session', null, { token });
  } catch (err) {
    if (!(err instanceof APIError)) throw err;
    if (err.status === 401) throw new APIError(401, 'This token is not known to the server (mistyped, or revoked).');
    if (err.status === 403) throw new APIError(403, 'This token cannot read (it lacks the read scope): the UI needs a read token.');
    throw err;
  }
}

// logout ends the session: the server clears the cookie.
export const logout = () => call('DELETE', 'session');

// tail follows an SSE tail from cursor `after` and calls onEvent(ev) for
// each event. It reconnects on errors and silences (heartbeats come every
// 15 s; nothing for 40 s means a dead connection) with Last-Event-ID, so it
// loses and repeats nothing. Returns a stop function.
export function tail(path, params, after, { onEvent, onGap, onState }) {
  let cursor = after;
  let stopped = false;
  let ctrl = null;
  let backoff = 500;
  const run = async () => {
    while (!stopped) {
      ctrl = new AbortController();
      let watchdog;
      const arm = () => { clearTimeout(watchdog); watchdog = setTimeout(() => ctrl.abort(), 40000); };
      try {
        const h = { Accept: 'text/event-stream' };
        if (cursor != null) h['Last-Event-ID'] = String(cursor);
        arm();
        const resp = await fetch(apiURL(path, params), { headers: h, signal: ctrl.signal, cache: 'no-store', credentials: 'same-origin' });
        if (!resp.ok) {
          if (resp.status === 401) unauthorized();
          throw new APIError(resp.status, 'tail: HTTP ' + resp.status);
        }
        onState('live');
        backoff = 500;
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          arm();
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let type = 'message', data = '', id = null;
            for (const line of block.split('\n')) {
              const c = line.indexOf(':');
              const k = c < 0 ? line : line.slice(0, c);
              const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
              if (k === 'event') type = v; else if (k === 'data') data += (data ? '\n' : '') + v; else if (k === 'id') id = v;
            }
            if (id !== null && id !== '') cursor = id;
            if (type === 'event') onEvent(JSON.parse(data));
            else if (type === 'gap' && onGap) onGap(JSON.parse(data));
            else if (type === 'error') throw new Error(JSON.parse(data).reason);
          }
        }
        // The server ended the stream (it shuts down on restarts): resume.
        if (!stopped) onState('reconnecting', new Error('the server ended the stream'));
      } catch (err) {
        if (stopped) break;
        onState('reconnecting', err);
      } finally {
        clearTimeout(watchdog);
      }
      if (stopped) break;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 10000);
    }
  };
  run();
  return () => { stopped = true; if (ctrl) ctrl.abort(); };
}

// Formatting shared by the pages.
const nf = new Intl.NumberFormat();
export const fmtInt = (n) => nf.format(n);
export function fmtBytes(b) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (i ? b.toFixed(b < 10 ? 1 : 0) : b) + ' ' + u[i];
}
export function fmtRate(r) {
  if (r == null) return '—';
  if (r === 0) return '0/s';
  if (r >= 1000) return (r / 1000).toFixed(r >= 10000 ? 0 : 1) + 'k/s';
  return (r >= 10 ? r.toFixed(0) : r.toFixed(1)) + '/s';
}
export function fmtAgo(t) {
  if (!t) return '—';
  const ms = typeof t === 'number' ? t : Date.parse(t);
  if (!ms || ms < 86400000) return '—';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 2) return 'now';
  if (s < 60) return s + 's ago';
  if (s < 3600) return Math.floor(s / 60) + 'm ago';
  if (s < 86400) return Math.floor(s / 3600) + 'h ago';
  return Math.floor(s / 86400) + 'd ago';
}
export function fmtDur(ms) {
  if (ms == null || isNaN(ms)) return '—';
  if (ms < 1) return (ms * 1000).toFixed(0) + ' µs';
  if (ms < 1000) return ms.toFixed(ms < 10 ? 2 : 0) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(2) + ' s';
  return (ms / 60000).toFixed(1) + ' min';
}
// fmtTime shows an RFC 3339 time (nanoseconds kept) in local time, to ms.
export function fmtTime(t, withDate = true) {
  const d = typeof t === 'number' ? new Date(t) : new Date(String(t).replace(/(\.\d{3})\d+/, '$1'));
  if (isNaN(d)) return String(t);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  const hms = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  return withDate ? `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${hms}` : hms;
}
export const timeMS = (t) => Date.parse(String(t).replace(/(\.\d{3})\d+/, '$1'));

// h builds an element: h('div.cls', {attrs}, ...children). Text is always
// set as text, never parsed as HTML.
export function h(tag, attrs, ...kids) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'text') el.textContent = v;
      // Through the CSSOM, which a CSP without 'unsafe-inline' allows.
      else if (k === 'style') el.style.cssText = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
  }
  for (const kid of kids.flat()) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

// prettyJSON renders a value as indented, coloured JSON (as text nodes).
export function prettyJSON(v) {
  const pre = h('pre.json');
  const walk = (v, ind) => {
    if (v === null) return pre.append(h('span.b', null, 'null'));
    if (Array.isArray(v)) {
      if (!v.length) return pre.append('[]');
      pre.append('[\n');
      v.forEach((x, i) => { pre.append(ind + '  '); walk(x, ind + '  '); pre.append(i < v.length - 1 ? ',\n' : '\n'); });
      return pre.append(ind + ']');
    }
    if (typeof v === 'object') {
      const ks = Object.keys(v);
      if (!ks.length) return pre.append('{}');
      pre.append('{\n');
      ks.forEach((k, i) => {
        pre.append(ind + '  ', h('span.k', null, JSON.stringify(k)), ': ');
        walk(v[k], ind + '  ');
        pre.append(i < ks.length - 1 ? ',\n' : '\n');
      });
      return pre.append(ind + '}');
    }
    const cls = typeof v === 'string' ? 's' : typeof v === 'number' ? 'n' : 'b';
    pre.append(h('span.' + cls, null, JSON.stringify(v)));
  };
  walk(v, '');
  return pre;
}

// The UI's shell: hash routes (the URL holds what is shown, so every view
// is a deep link), the theme, the login, keyboard shortcuts and the status
// line. Each page is a module whose render(root, params, ctx) returns a
// function that stops its timers and streams.
import { h, login, logout, session } from './api.js';
import * as overview from './overview.js';
import * as metrics from './metrics.js';
import * as logs from './logs.js';
import * as traces from './traces.js';

const pages = { overview, metrics, logs, traces };
const main = document.getElementById('main');
const statusEl = document.getElementById('status');
let stop = null;
let current = '';
// gen counts renders: a stopped page's late answers (a 401 that brought up
// the login, say) must not write to the status line any more.
let gen = 0;
let loginShown = false;

// route reads "#/page?k=v" into a page name and its parameters.
function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, qs] = hash.split('?');
  const name = path.split('/')[0] || 'overview';
  return { name: pages[name] ? name : 'overview', params: new URLSearchParams(qs || '') };
}

// setParams records a page's state in the URL without re-rendering it.
function setParams(params) {
  const { name } = route();
  const qs = params.toString();
  const hash = '#/' + (name === 'overview' ? '' : name) + (qs ? '?' + qs : '');
  if (hash !== location.hash) history.replaceState(null, '', hash);
}

function status(text, isErr = false) {
  statusEl.textContent = text || '';
  statusEl.classList.toggle('err', !!isErr);
}

function markNav(name) {
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

function stopPage() {
  if (stop) stop();
  stop = null;
  gen++;
}

function render() {
  const { name, params } = route();
  // Until the login succeeds, the page asked for waits behind it.
  if (loginShown) return markNav(name);
  const key = name + '?' + params.toString();
  if (key === current) return;
  current = key;
  stopPage();
  main.replaceChildren();
  status('');
  markNav(name);
  document.body.dataset.page = name;
  const g = gen;
  const ctx = {
    status: (text, isErr) => { if (g === gen) status(text, isErr); },
    setParams: (p) => { setParams(p); current = route().name + '?' + p.toString(); },
  };
  stop = pages[name].render(main, params, ctx) || null;
}

// Theme: the system's unless chosen; the choice is kept in this browser.
const THEME_KEY = 'chronostream.theme';
function applyTheme(t) {
  if (t) document.documentElement.dataset.theme = t; else delete document.documentElement.dataset.theme;
  document.dispatchEvent(new CustomEvent('cs-theme'));
}
function toggleTheme() {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === 'dark'
    : matchMedia('(prefers-color-scheme: dark)').matches;
  const t = dark ? 'light' : 'dark';
  localStorage.setItem(THEME_KEY, t);
  applyTheme(t);
}
applyTheme(localStorage.getItem(THEME_KEY));
// Charts draw in the theme's colours: tell them when the system's changes.
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => document.dispatchEvent(new CustomEvent('cs-theme')));
document.getElementById('theme').addEventListener('click', toggleTheme);

// Login: a server with tokens answers 401 until the page has a session.
// The form trades a read token for the HttpOnly session cookie (one POST);
// the token is then dropped — the page keeps it nowhere, puts it in no URL.
// Earlier versions kept the token in localStorage: forget it.
localStorage.removeItem('chronostream.token');
const sessionBtn = document.getElementById('session');

function showSession(who) {
  const named = who && who.name !== 'anonymous';
  sessionBtn.hidden = !named;
  sessionBtn.title = named ? `Logged in as ${who.name}: end the session` : '';
}

function refreshSession() { session().then(showSession, () => {}); }

function showLogin(note = '') {
  if (loginShown) return;
  loginShown = true;
  stopPage();
  current = '';
  sessionBtn.hidden = true;
  status('');
  document.body.dataset.page = 'login';
  // The input has no name, so even a native submission of the form (were
  // the script to fail) would carry nothing.
  const input = h('input', { id: 'login-token', type: 'password', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'read token', 'aria-label': 'Token', required: true });
  const error = h('div.problem', { id: 'login-error', role: 'alert', hidden: true });
  const submit = h('button.primary', { type: 'submit' }, 'Log in');
  const form = h('form.card.login', { id: 'login' },
    h('h2', null, 'Log in'),
    note ? h('p.muted', { id: 'login-note' }, note) : null,
    h('p', null, 'This server needs a token with the ', h('b', null, 'read'), ' scope. It is exchanged for a session cookie ',
      'that scripts cannot read and other sites cannot send; this page keeps no copy.'),
    input, error, h('div.row', null, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    submit.disabled = true;
    error.hidden = true;
    try {
      const who = await login(t);
      input.value = '';
      loginShown = false;
      showSession(who);
      render();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      input.select();
    } finally {
      submit.disabled = false;
    }
  });
  main.replaceChildren(form);
  input.focus();
}
document.addEventListener('cs-unauthorized', () => showLogin());
sessionBtn.addEventListener('click', async () => {
  try {
    await logout();
  } catch (err) {
    status('log out: ' + err.message, true);
    return;
  }
  showLogin('Logged out.');
});

// Keyboard: page keys and help here; pages add their own (j/k, /, x, space).
const help = document.getElementById('help');
document.addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName);
  if (e.key === 'Escape') {
    help.hidden = true;
    if (typing) e.target.blur();
    return;
  }
  if (typing) return;
  const go = { 1: '#/', 2: '#/metrics', 3: '#/logs', 4: '#/traces' }[e.key];
  if (go) { location.hash = go; e.preventDefault(); return; }
  if (e.key === 't') toggleTheme();
  else if (e.key === '?') help.hidden = !help.hidden;
  else if (e.key === '/') {
    const f = main.querySelector('[data-search]');
    if (f) { f.focus(); e.preventDefault(); }
  } else return;
});

window.addEventListener('hashchange', render);
render();
refreshSession();

// The UI's shell: hash routes (the URL holds what is shown, so every view
// is a deep link), the theme, the token, keyboard shortcuts and the status
// line. Each page is a module whose render(root, params, ctx) returns a
// function that stops its timers and streams.
import { setToken, token } from './api.js';
import * as overview from './overview.js';
import * as metrics from './metrics.js';
import * as logs from './logs.js';
import * as traces from './traces.js';

const pages = { overview, metrics, logs, traces };
const main = document.getElementById('main');
const statusEl = document.getElementById('status');
let stop = null;
let current = '';

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

function render() {
  const { name, params } = route();
  const key = name + '?' + params.toString();
  if (key === current) return;
  current = key;
  if (stop) stop();
  stop = null;
  main.replaceChildren();
  status('');
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  document.body.dataset.page = name;
  const ctx = {
    status,
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

// Token: asked for only when the API says one is needed (401).
const tokenBtn = document.getElementById('token');
tokenBtn.hidden = !token();
tokenBtn.addEventListener('click', () => {
  const t = prompt('API token (sent as Authorization: Bearer; kept in this browser). Empty to forget it.', token());
  if (t === null) return;
  setToken(t.trim());
  current = '';
  render();
});
document.addEventListener('cs-unauthorized', () => {
  tokenBtn.hidden = false;
  tokenBtn.classList.add('on');
  status('This server needs an API token: press Token.', true);
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

// Logs: a live tail of a chronicle, some of its stories or one, newest on
// top, with filters, pause/resume and history further down. The tail starts
// at the chronicle's last seq as read when the view opened, so the first
// record sent after that appears (Vivo lost it), and it resumes by
// Last-Event-ID after errors and silences (Vivo stopped pulling).
import { get, tail, h, seg, fmtTime, prettyJSON, APIError } from './api.js';

const PAGE = 100;
const MAX_ROWS = 3000;
const LEVELS = ['', 'error', 'warn', 'info', 'debug'];

// levelOf reads an event's level from the usual places.
function levelOf(e) {
  const f = e.fields || {}, t = e.tags || {};
  const v = f.level ?? f.severity ?? f.severity_text ?? f.lvl ?? t.level ?? t.severity ?? '';
  const s = String(v).toLowerCase();
  if (s.startsWith('warn')) return 'warn';
  if (s.startsWith('err') || s === 'fatal' || s === 'critical' || s === 'crit') return 'error';
  if (s.startsWith('info') || s === 'notice') return 'info';
  if (s.startsWith('debug') || s === 'trace') return 'debug';
  return s;
}

function messageOf(e) {
  const f = e.fields || {};
  const m = f.msg ?? f.message ?? f.log ?? f.body ?? f.text ?? f.name;
  if (m != null) return String(m);
  return typeof e.body === 'string' ? e.body : JSON.stringify(e.body ?? e.body_base64 ?? '');
}

// mark returns text with the occurrences of q highlighted (as text nodes).
function mark(text, q) {
  if (!q) return text;
  const out = [];
  let i = 0, j;
  while ((j = text.indexOf(q, i)) >= 0) {
    out.push(text.slice(i, j), h('mark', null, q));
    i = j + q.length;
  }
  out.push(text.slice(i));
  return out;
}

export function render(root, params, ctx) {
  const state = {
    c: params.get('c') || '',
    stories: params.getAll('s'),
    level: params.get('level') || '',
    q: params.get('q') || '',
    tags: params.getAll('tag'),
    paused: false,
  };
  let stopTail = null;
  let older = null; // the before cursor of the next history page, null: none
  let held = []; // events received while paused
  let seen = new Set();
  let stopped = false;
  let cursorRow = -1;
  let startGen = 0; // the newest start(): an older one still waiting gives up
  let forceFromStart = false;

  const save = () => {
    const p = new URLSearchParams();
    if (state.c) p.set('c', state.c);
    for (const s of state.stories) p.append('s', s);
    if (state.level) p.set('level', state.level);
    if (state.q) p.set('q', state.q);
    for (const t of state.tags) p.append('tag', t);
    ctx.setParams(p);
  };

  const chronSel = h('select', { 'aria-label': 'chronicle', id: 'log-chronicle' });
  const storyList = h('datalist', { id: 'log-story-names' });
  const storyIn = h('input', { placeholder: 'stories (comma-separated, empty: all)', 'aria-label': 'stories', id: 'log-stories',
    list: 'log-story-names', value: state.stories.join(', ') });
  const levelSel = h('select', { 'aria-label': 'level', id: 'log-level' }, LEVELS.map((l) => h('option', { value: l, selected: l === state.level }, l ? l + '+' : 'any level')));
  const textIn = h('input', { type: 'search', placeholder: 'text  (/)', 'data-search': true, 'aria-label': 'text', id: 'log-text', value: state.q });
  const tagIn = h('input', { placeholder: 'tag key=value', 'aria-label': 'tag filter', id: 'log-tag', value: state.tags.join(', ') });
  const pauseBtn = h('button', { type: 'button', id: 'log-pause', title: 'Pause or resume (space)' });
  const live = h('span.live', { id: 'log-state' });
  const list = h('div.loglist', { id: 'log-list' });
  const moreBtn = h('button.more', { type: 'button', id: 'log-more', hidden: true }, 'Older…');
  root.append(storyList, h('div.logbar', null, h('div.toolbar', null, chronSel, storyIn, levelSel, textIn, tagIn, pauseBtn, live)),
    h('section.card', null, list, moreBtn));

  const rank = { error: 4, warn: 3, info: 2, debug: 1 };
  const passLevel = (e) => !state.level || (rank[levelOf(e)] || 0) >= rank[state.level];

  function filterParams() {
    const p = new URLSearchParams();
    for (const s of state.stories) p.append('story', s);
    if (state.q) p.append('q', state.q);
    for (const t of state.tags) {
      const i = t.indexOf('=');
      if (i > 0) p.append('tag.' + t.slice(0, i).trim(), t.slice(i + 1).trim());
    }
    return p;
  }

  function row(e, fresh) {
    const lvl = levelOf(e);
    const r = h('div.logrow' + (fresh ? '.new' : ''), { dataset: { seq: e.seq }, tabindex: -1 },
      h('span.ts', { title: e.time }, h('span.d', null, fmtTime(e.time).slice(0, 11)), fmtTime(e.time, false)),
      h('span.sty', { title: e.story }, e.story),
      h('span.lvl.' + (lvl || 'none'), null, lvl || e.kind),
      h('span.msg', null, mark(messageOf(e), state.q), h('span.tg', null, Object.entries(e.tags || {}).map(([k, v]) => `${k}=${v}`).join(' '))));
    r.addEventListener('click', () => {
      const next = r.nextElementSibling;
      if (next && next.classList.contains('json')) { next.remove(); return; }
      r.after(prettyJSON(e));
    });
    return r;
  }

  function addLive(evs) {
    const frag = document.createDocumentFragment();
    for (let i = evs.length - 1; i >= 0; i--) {
      const e = evs[i];
      if (seen.has(e.seq) || !passLevel(e)) continue;
      seen.add(e.seq);
      frag.append(row(e, true));
    }
    list.querySelector('.empty')?.remove();
    list.prepend(frag);
    // A bounded view: the oldest rows go (and with them the paging back,
    // which would leave a hole).
    while (list.childElementCount > MAX_ROWS) {
      const gone = list.lastElementChild;
      if (gone.dataset.seq) seen.delete(+gone.dataset.seq);
      gone.remove();
      older = null;
      moreBtn.hidden = true;
    }
  }

  function setPaused(p) {
    state.paused = p;
    pauseBtn.textContent = p ? `Resume${held.length ? ` (${held.length} new)` : ''}` : 'Pause';
    pauseBtn.classList.toggle('on', p);
    if (!p && held.length) { addLive(held); held = []; }
  }
  pauseBtn.addEventListener('click', () => setPaused(!state.paused));

  function setLive(s, err) {
    live.replaceChildren(h('span.dot.' + (s === 'live' ? 'ok' : 'warn')), s === 'live' ? 'live' : 'reconnecting…');
    live.dataset.state = s;
    if (s !== 'live') live.dataset.reconnects = +(live.dataset.reconnects || 0) + 1;
    if (err) live.title = String(err.message || err);
  }

  async function loadOlder() {
    if (older === null) return;
    moreBtn.disabled = true;
    const p = filterParams();
    p.set('order', 'desc');
    p.set('limit', PAGE);
    if (older) p.set('before', older);
    try {
      const r = await get('chronicles/' + seg(state.c) + '/events', p);
      if (stopped) return;
      const frag = document.createDocumentFragment();
      for (const e of r.events) {
        if (seen.has(e.seq) || !passLevel(e)) continue;
        seen.add(e.seq);
        frag.append(row(e, false));
      }
      list.append(frag);
      older = r.next || null;
      moreBtn.hidden = older === null;
      if (!list.childElementCount) list.append(h('div.empty', null, 'No events yet. Waiting for new ones…'));
    } catch (err) {
      ctx.status('history: ' + err.message, true);
    }
    moreBtn.disabled = false;
  }
  moreBtn.addEventListener('click', loadOlder);
  // Reaching the bottom loads the next page of history.
  const io = new IntersectionObserver((es) => { if (es.some((x) => x.isIntersecting) && !moreBtn.disabled) loadOlder(); });
  io.observe(moreBtn);

  async function start() {
    if (stopTail) stopTail();
    stopTail = null;
    list.replaceChildren();
    seen = new Set();
    held = [];
    setPaused(false);
    if (!state.c) return waitForChronicles();
    const gen = ++startGen;
    let info = null;
    let waited = false;
    // A chronicle that does not exist yet is waited for: its first record
    // (Vivo lost a lone first record) is then live, from the very start.
    while (!info) {
      try {
        info = await get('chronicles/' + seg(state.c));
      } catch (err) {
        if (!(err instanceof APIError && err.status === 404)) {
          list.replaceChildren(h('div.problem', null, `Chronicle ${state.c}: ${err.message}`));
          return;
        }
        if (!waited) list.replaceChildren(h('div.empty', { id: 'log-waiting' }, `Waiting for the first event of chronicle ${state.c}…`));
        waited = true;
        await new Promise((r) => setTimeout(r, 1000));
      }
      if (stopped || gen !== startGen) return;
    }
    list.querySelector('#log-waiting')?.remove();
    get('chronicles/' + seg(state.c) + '/stories').then((r) => {
      if (gen === startGen) storyList.replaceChildren(...r.stories.map((st) => h('option', { value: st.name })));
    }).catch(() => {});
    // The cursor at page load: everything after it is live, everything up
    // to it is history.
    const cursor = waited || forceFromStart ? 0 : info.last_seq;
    forceFromStart = false;
    list.dataset.cursor = cursor;
    stopTail = tail('chronicles/' + seg(state.c) + '/tail', filterParams(), cursor, {
      onEvent: (e) => {
        if (state.paused) {
          held.push(e);
          if (held.length > MAX_ROWS) held.shift(); // the view keeps no more anyway
          setPaused(true);
          return;
        }
        addLive([e]);
      },
      onGap: (g) => list.prepend(h('div.notice', null, `Events ${g.after}…${g.next} were removed by retention before they were shown.`)),
      onState: setLive,
    });
    older = '';
    await loadOlder();
  }

  const apply = () => {
    state.stories = storyIn.value.split(',').map((s) => s.trim()).filter(Boolean);
    state.q = textIn.value;
    state.tags = tagIn.value.split(',').map((s) => s.trim()).filter(Boolean);
    state.level = levelSel.value;
    save();
    start();
  };
  for (const el of [storyIn, textIn, tagIn]) el.addEventListener('keydown', (e) => { if (e.key === 'Enter') apply(); });
  for (const el of [storyIn, textIn, tagIn]) el.addEventListener('change', apply);
  levelSel.addEventListener('change', apply);
  chronSel.addEventListener('change', () => { state.c = chronSel.value; state.stories = []; storyIn.value = ''; save(); start(); });

  const onKey = (e) => {
    if (/^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === ' ') { setPaused(!state.paused); e.preventDefault(); }
    else if (e.key === 'j' || e.key === 'k') {
      const rows = [...list.querySelectorAll('.logrow')];
      if (!rows.length) return;
      rows[cursorRow]?.classList.remove('cursor');
      cursorRow = Math.max(0, Math.min(rows.length - 1, cursorRow + (e.key === 'j' ? 1 : -1)));
      rows[cursorRow].classList.add('cursor');
      rows[cursorRow].scrollIntoView({ block: 'nearest' });
    } else if (e.key === 'Enter' && cursorRow >= 0) list.querySelectorAll('.logrow')[cursorRow]?.click();
  };
  document.addEventListener('keydown', onKey);

  // waitForChronicles lists the chronicles until there is one to show;
  // on a new server the first arrives with the first event, which shows.
  async function waitForChronicles() {
    let first = true;
    for (;;) {
      try {
        const { chronicles } = await get('chronicles');
        if (stopped) return;
        const names = chronicles.map((c) => c.name);
        if (state.c && !names.includes(state.c)) names.push(state.c);
        chronSel.replaceChildren(...names.map((n) => h('option', { value: n, selected: n === state.c }, n)));
        if (!state.c && names.length) {
          state.c = names.includes('logs') ? 'logs' : names[0];
          chronSel.value = state.c;
          save();
          if (!first) { // it appeared while the page was open: all of it is new
            list.replaceChildren(h('div.empty', { id: 'log-waiting' }));
            return startNew();
          }
        }
        if (state.c) return start();
        if (first) list.replaceChildren(h('div.empty', null, 'No chronicles yet. Waiting for the first event…'));
      } catch (err) {
        list.replaceChildren(h('div.problem', null, err.message));
      }
      first = false;
      await new Promise((r) => setTimeout(r, 1000));
      if (stopped) return;
    }
  }

  // startNew tails a chronicle created after the page opened from its start.
  async function startNew() {
    forceFromStart = true;
    await start();
  }

  waitForChronicles();

  return () => {
    stopped = true;
    if (stopTail) stopTail();
    io.disconnect();
    document.removeEventListener('keydown', onKey);
  };
}

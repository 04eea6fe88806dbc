// Traces: the newest traces of a chronicle (OTLP spans, or events carrying
// traceId/spanId/parentSpanId) and, for one trace, its waterfall: spans in
// tree order, each bar placed by start and end, attributes on click.
import { get, h, seg, fmtDur, fmtTime, fmtAgo, fmtInt, APIError } from './api.js';

const REFRESH_MS = 5000;

// spanTimes returns a span event's start and end in Unix ms.
function spanTimes(s) {
  const f = s.fields || {};
  const start = f.start_time_unix_nano ? f.start_time_unix_nano / 1e6 : Date.parse(String(s.time).replace(/(\.\d{3})\d+/, '$1'));
  let end = f.end_time_unix_nano ? f.end_time_unix_nano / 1e6 : 0;
  if (!end) end = start + (f.duration_ns ? f.duration_ns / 1e6 : +(f.duration_ms ?? f.durationMs ?? 0));
  return [start, end];
}

export function render(root, params, ctx) {
  const state = { c: params.get('c') || '', id: params.get('id') || '', q: params.get('q') || '', errors: params.get('errors') === '1' };
  let timer = 0;
  let stopped = false;
  const save = () => {
    const p = new URLSearchParams();
    if (state.c) p.set('c', state.c);
    if (state.id) p.set('id', state.id);
    if (state.q) p.set('q', state.q);
    if (state.errors) p.set('errors', '1');
    ctx.setParams(p);
  };

  const chronSel = h('select', { 'aria-label': 'chronicle', id: 'trace-chronicle' });
  const idIn = h('input', { placeholder: 'trace id  (/)', 'data-search': true, 'aria-label': 'trace id', id: 'trace-id', size: 34, value: state.id });
  const body = h('div');
  const filterIn = h('input', { type: 'search', placeholder: 'filter: span, service', 'aria-label': 'filter traces', id: 'trace-filter', value: state.q });
  const errBtn = h('button', { type: 'button', id: 'trace-errors', 'aria-pressed': String(state.errors), class: state.errors ? 'on' : '' }, 'errors only');
  filterIn.addEventListener('input', () => { state.q = filterIn.value; save(); if (!state.id) list(); });
  errBtn.addEventListener('click', () => {
    state.errors = !state.errors;
    errBtn.setAttribute('aria-pressed', String(state.errors));
    errBtn.classList.toggle('on', state.errors);
    save();
    if (!state.id) list();
  });
  root.append(h('div.toolbar', null, chronSel, idIn, h('button', { type: 'button', onclick: () => open(idIn.value.trim()) }, 'Open'),
    filterIn, errBtn), body);
  idIn.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(idIn.value.trim()); });
  chronSel.addEventListener('change', () => { state.c = chronSel.value; state.id = ''; save(); show(); });

  function open(id) { state.id = id; idIn.value = id; save(); show(); }

  async function show() {
    clearTimeout(timer);
    if (!state.c) return;
    if (state.id) return waterfall();
    await list();
  }

  async function list() {
    clearTimeout(timer);
    try {
      let { traces } = await get('chronicles/' + seg(state.c) + '/traces', { limit: 100 });
      if (stopped || state.id) return;
      const terms = state.q.toLowerCase().split(/\s+/).filter(Boolean);
      const all = traces.length;
      traces = traces.filter((t) => (!state.errors || t.errors > 0) &&
        terms.every((w) => (t.root + ' ' + t.service + ' ' + t.trace_id).toLowerCase().includes(w)));
      const longest = Math.max(1e-3, ...traces.map((t) => t.duration_ms));
      const rows = traces.map((t) => h('tr', { dataset: { trace: t.trace_id }, style: 'cursor:pointer', onclick: () => open(t.trace_id) },
        h('td', { title: fmtTime(t.start_ms) }, fmtTime(t.start_ms, false), h('span.muted.hide-sm', null, ' · ' + fmtAgo(t.start_ms))),
        h('td', null, h('b', null, t.root || h('span.muted', null, '(root not seen)')), ' ', h('span.muted', null, t.service)),
        h('td.num', null, fmtDur(t.duration_ms)),
        h('td.hide-sm', { style: 'width:22%' }, h('div.tr-bar', null, h('i' + (t.errors ? '.err' : ''), { style: `left:0;width:${(100 * t.duration_ms / longest).toFixed(2)}%` }))),
        h('td.num', null, fmtInt(t.spans)),
        h('td.num', null, t.errors ? h('span', { style: 'color:var(--err)' }, t.errors) : h('span.muted', null, '0')),
        h('td.mono.muted.hide-sm', null, t.trace_id.slice(0, 16) + '…')));
      body.replaceChildren(h('section.card', null,
        h('header', null, h('h2', null, 'Recent traces'), h('span.muted', null, `${traces.length}${traces.length < all ? ' of ' + all : ''} · live`)),
        h('div.tablewrap', null, h('table', { id: 'trace-list' },
          h('thead', null, h('tr', null, h('th', null, 'Start'), h('th', null, 'Root span · service'), h('th.num', null, 'Duration'),
            h('th.hide-sm', null, ''), h('th.num', null, 'Spans'), h('th.num', null, 'Errors'), h('th.hide-sm', null, 'Trace id'))),
          h('tbody', null, rows.length ? rows : h('tr', null, h('td.empty', { colspan: 7 }, 'No traces in this chronicle yet. Point an OpenTelemetry SDK at this server (OTEL_EXPORTER_OTLP_ENDPOINT).')))))));
    } catch (err) {
      body.replaceChildren(h('div.problem', null, err.message));
    }
    if (!stopped && !state.id) timer = setTimeout(() => { if (!document.hidden) list(); else show(); }, REFRESH_MS);
  }

  async function waterfall() {
    let tr;
    try {
      tr = await get('chronicles/' + seg(state.c) + '/traces/' + encodeURIComponent(state.id));
    } catch (err) {
      body.replaceChildren(h('div.problem', null, err instanceof APIError && err.status === 404 ? `No spans of trace ${state.id} in ${state.c}.` : err.message),
        h('a', { href: '#/traces?c=' + encodeURIComponent(state.c) }, '← all traces'));
      return;
    }
    if (stopped) return;
    const times = tr.spans.map(spanTimes);
    const t0 = Math.min(...times.map((t) => t[0]));
    const t1 = Math.max(...times.map((t) => t[1]), t0 + 1e-3);
    const total = t1 - t0;
    let selected = null;
    const rows = tr.spans.map((s, i) => {
      const [a, b] = times[i];
      const f = s.fields || {};
      const err = f.status_code === 'error';
      const r = h('div.wfrow', { dataset: { spanId: s.span_id, depth: s.depth }, tabindex: 0 },
        h('div.nm', { style: `padding-left:${s.depth * 16}px`, title: f.name || '' },
          s.depth ? h('span.muted', null, '└ ') : null, f.name || s.span_id, h('span.svc', null, s.story),
          s.missing_parent ? h('span.pill', null, 'parent missing') : null, s.duplicate ? h('span.pill', null, 'duplicate') : null),
        h('div.tr-bar', null, h('i' + (err ? '.err' : ''), { style: `left:${(100 * (a - t0) / total).toFixed(3)}%;width:${Math.max(0.2, 100 * (b - a) / total).toFixed(3)}%` })),
        h('div.num.dur', null, fmtDur(b - a)));
      const toggle = () => {
        if (selected) { selected.row.classList.remove('sel'); selected.panel.remove(); }
        if (selected && selected.row === r) { selected = null; return; }
        const attrs = { ...(s.body && s.body.attributes), ...Object.fromEntries(Object.entries(s.tags || {}).map(([k, v]) => ['tag ' + k, v])) };
        const facts = { span_id: s.span_id, parent_span_id: s.parent_span_id || '—', service: s.story, kind: f.span_kind, status: f.status_code,
          status_message: f.status_message, start: fmtTime(a), duration: fmtDur(b - a), ...attrs };
        const panel = h('div.attrs', null, h('table', null, Object.entries(facts).filter(([, v]) => v != null && v !== '').map(([k, v]) =>
          h('tr', null, h('td', null, k), h('td', null, typeof v === 'object' ? JSON.stringify(v) : String(v))))));
        if (s.body && s.body.events && s.body.events.length) {
          panel.append(h('div.muted', null, 'events'), ...s.body.events.map((ev) => h('div.mono', null, `+${fmtDur(ev.time_unix_nano / 1e6 - a)} ${ev.name}`)));
        }
        r.after(panel);
        r.classList.add('sel');
        selected = { row: r, panel };
      };
      r.addEventListener('click', toggle);
      r.addEventListener('keydown', (e) => { if (e.key === 'Enter') toggle(); });
      return r;
    });
    const services = new Set(tr.spans.map((s) => s.story));
    body.replaceChildren(h('section.card', null,
      h('header', null, h('a', { href: '#/traces?c=' + encodeURIComponent(state.c) }, '←'), h('h2', null, (tr.spans[0].fields || {}).name || 'trace'),
        h('span.mono.muted', null, tr.trace_id), h('span.spacer'),
        h('span.muted', null, `${fmtDur(total)} · ${tr.spans.length} spans · ${services.size} service${services.size === 1 ? '' : 's'} · ${fmtTime(t0)}`),
        tr.truncated ? h('span.pill', null, 'truncated') : null),
      h('div.wf', null, h('div.wfrow.ruler', null, h('div', null, 'span · service'),
        h('div.ticks', null, [0, 0.25, 0.5, 0.75, 1].map((f) => h('span', { style: `left:${f * 100}%` }, f ? fmtDur(f * total) : '0'))), h('div.num.dur', null, 'duration')),
      h('div', { id: 'waterfall' }, rows))));
  }

  (async () => {
    try {
      const { chronicles } = await get('chronicles');
      if (stopped) return;
      if (!state.c && chronicles.length) { state.c = (chronicles.find((c) => c.name === 'otel') || chronicles[0]).name; save(); }
      chronSel.replaceChildren(...chronicles.map((c) => h('option', { value: c.name, selected: c.name === state.c }, c.name)));
      if (!chronicles.length) body.append(h('div.card.empty', null, 'No chronicles yet.'));
      show();
    } catch (err) {
      body.replaceChildren(h('div.problem', null, err.message));
    }
  })();

  // j/k move through the trace list, Enter opens; Backspace goes back to it.
  let cursorRow = -1;
  const onKey = (e) => {
    if (/^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
    const rows = [...body.querySelectorAll('tr[data-trace]')];
    if ((e.key === 'j' || e.key === 'k') && rows.length) {
      rows[cursorRow]?.classList.remove('cursor');
      cursorRow = Math.max(0, Math.min(rows.length - 1, cursorRow + (e.key === 'j' ? 1 : -1)));
      rows[cursorRow].classList.add('cursor');
      rows[cursorRow].scrollIntoView({ block: 'nearest' });
    } else if (e.key === 'Enter' && rows[cursorRow]) open(rows[cursorRow].dataset.trace);
    else if (e.key === 'Backspace' && state.id) { state.id = ''; idIn.value = ''; save(); show(); }
  };
  document.addEventListener('keydown', onKey);

  return () => { stopped = true; clearTimeout(timer); document.removeEventListener('keydown', onKey); };
}

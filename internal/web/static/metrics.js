// Metrics: a searchable list of every numeric field of every story, and a
// chart per chosen metric on a time or sequential x-axis (Trendlines'
// reason to exist: points evenly spaced by order). The server downsamples
// to the chart's width (min and max kept per pixel column), so a range of
// millions of points draws as fast as a small one. Drag to zoom; on the
// time axis a zoom refetches at full resolution for the new range.
import uPlot from './vendor/uplot/uPlot.esm.js';
import { get, h, apiURL, seg, fmtInt, fmtTime, fmtAgo } from './api.js';

const PRESETS = [['15m', 9e5], ['1h', 36e5], ['6h', 216e5], ['24h', 864e5], ['7d', 6048e5], ['30d', 2592e6], ['all', 0]];
const PALETTE = {
  light: ['#2563eb', '#d9480f', '#0d9488', '#9333ea', '#ca8a04', '#db2777', '#4b5563', '#16a34a', '#0891b2', '#b91c1c'],
  dark: ['#60a5fa', '#fb923c', '#2dd4bf', '#c084fc', '#facc15', '#f472b6', '#9ca3af', '#4ade80', '#22d3ee', '#f87171'],
};
const palette = () => PALETTE[getComputedStyle(document.documentElement).colorScheme === 'dark' ? 'dark' : 'light'];
const LIVE_MS = 5000;

const encM = (m) => [m.chronicle, m.story, m.field].map(encodeURIComponent).join('/');
const decM = (s) => { const [chronicle, story, field] = s.split('/').map(decodeURIComponent); return { chronicle, story, field }; };
const sameM = (a, b) => a.chronicle === b.chronicle && a.story === b.story && a.field === b.field;
const css = (v) => getComputedStyle(document.documentElement).getPropertyValue(v).trim();

export function render(root, params, ctx) {
  const state = {
    selected: params.getAll('m').map(decM),
    x: params.get('x') === 'seq' ? 'seq' : 'time',
    range: params.get('r') || '24h',
    from: +params.get('from') || 0, // custom range, Unix ms
    to: +params.get('to') || 0,
    group: params.get('g') || '',
    live: params.get('live') !== '0',
    q: params.get('q') || '',
  };
  if (state.from && state.to) state.range = 'custom';
  let catalog = [];
  let showCustom = state.range === 'custom';
  let cursor = -1;
  let charts = [];
  let timer = 0;
  let stopped = false;

  const save = () => {
    const p = new URLSearchParams();
    for (const m of state.selected) p.append('m', encM(m));
    if (state.x !== 'time') p.set('x', state.x);
    if (state.range === 'custom') { p.set('from', Math.round(state.from)); p.set('to', Math.round(state.to)); } else if (state.range !== '24h') p.set('r', state.range);
    if (state.group) p.set('g', state.group);
    if (!state.live) p.set('live', '0');
    if (state.q) p.set('q', state.q);
    ctx.setParams(p);
  };

  // The list.
  const search = h('input', { type: 'search', placeholder: 'Search metrics  (/)', value: state.q, 'data-search': true, 'aria-label': 'Search metrics' });
  const list = h('ul', { id: 'metric-list', role: 'listbox' });
  const side = h('aside.card.mlist', null, search, list);
  // The controls.
  const seg2 = (items, cur, on) => h('span.seg', null, items.map(([v, label]) =>
    h('button', { type: 'button', 'aria-pressed': String(v === cur), dataset: { v }, onclick: () => on(v) }, label)));
  const toolbar = h('div.toolbar');
  const chartsEl = h('div.charts');
  root.append(h('div.metrics', null, side, h('section', null, toolbar, chartsEl)));

  function drawToolbar() {
    const fromIn = h('input', { type: 'datetime-local', step: 1, 'aria-label': 'from', value: state.from ? localInput(state.from) : '' });
    const toIn = h('input', { type: 'datetime-local', step: 1, 'aria-label': 'to', value: state.to ? localInput(state.to) : '' });
    const apply = h('button', { type: 'button', onclick: () => {
      const f = Date.parse(fromIn.value), t = Date.parse(toIn.value);
      if (f && t && f < t) setRange('custom', f, t);
    } }, 'Apply');
    const tags = [...new Set(state.selected.flatMap((m) => (catalog.find((c) => sameM(c, m)) || {}).tags || []))].sort();
    const group = h('select', { 'aria-label': 'group by tag', id: 'group-by', onchange: (e) => { state.group = e.target.value; save(); refreshAll(); } },
      h('option', { value: '' }, 'one line'), tags.map((t) => h('option', { value: t, selected: t === state.group }, 'by ' + t)));
    if (state.group && !tags.includes(state.group)) group.append(h('option', { value: state.group, selected: true }, 'by ' + state.group));
    toolbar.replaceChildren(h('div', { style: 'display:contents' },
      h('span', { id: 'axis', title: 'x-axis (x)' }, seg2([['time', 'Time'], ['seq', 'Sequence']], state.x, setAxis)),
      h('span.range', { id: 'presets' }, seg2(PRESETS.map(([p]) => [p, p]).concat([['custom', 'custom…']]), showCustom ? 'custom' : state.range,
        (p) => { if (p === 'custom') { showCustom = true; drawToolbar(); fromIn.focus(); } else { showCustom = false; setRange(p); } })),
      showCustom ? h('span.range', { id: 'custom-range' }, fromIn, '→', toIn, apply) : null,
      group,
      h('button', { type: 'button', id: 'live', 'aria-pressed': String(state.live), class: state.live ? 'on' : '',
        title: 'Refresh every 5 s', onclick: () => { state.live = !state.live; save(); drawToolbar(); schedule(); } },
      h('span.dot.' + (state.live ? 'ok' : 'x')), 'Live')));
  }

  function setAxis(x) { state.x = x; save(); drawToolbar(); refreshAll(); }
  function setRange(r, from = 0, to = 0) {
    state.range = r; state.from = from; state.to = to;
    if (r === 'custom') state.live = false;
    showCustom = r === 'custom';
    save(); drawToolbar(); refreshAll();
  }
  // span returns the range to ask for, in Unix ms (0: open).
  function span() {
    if (state.range === 'custom') return [state.from, state.to];
    const p = PRESETS.find(([k]) => k === state.range);
    if (!p || !p[1]) return [0, 0];
    const now = Date.now();
    return [now - p[1], now];
  }

  function drawList() {
    const terms = state.q.toLowerCase().split(/\s+/).filter(Boolean);
    const shown = catalog.filter((m) => {
      const hay = (m.chronicle + ' ' + m.story + ' ' + m.field).toLowerCase();
      return terms.every((t) => hay.includes(t));
    });
    const items = [];
    let lastC = null;
    shown.forEach((m, i) => {
      if (m.chronicle !== lastC) { items.push(h('li.grp', { role: 'presentation' }, m.chronicle)); lastC = m.chronicle; }
      const active = state.selected.some((s) => sameM(s, m));
      items.push(h('li', {
        role: 'option', 'aria-selected': String(active), class: (active ? 'active ' : '') + (i === cursor ? 'cursor' : ''),
        title: `${m.chronicle} / ${m.story} · ${m.field} — ${fmtInt(m.events)} events, last ${fmtAgo(m.last_time)}\nClick: show; Shift or Ctrl+click: add to the charts`,
        dataset: { idx: i, metric: encM(m) },
        onclick: (e) => choose(m, e.shiftKey || e.ctrlKey || e.metaKey),
      }, h('span.st', null, m.story), h('span.fd', null, m.field)));
    });
    if (!items.length) items.push(h('li.empty', null, catalog.length ? 'No metric matches.' : 'No numeric fields yet.'));
    list.replaceChildren(...items);
    list._shown = shown;
  }

  function choose(m, add) {
    if (add) {
      const i = state.selected.findIndex((s) => sameM(s, m));
      i >= 0 ? state.selected.splice(i, 1) : state.selected.push(m);
    } else state.selected = [m];
    save(); drawList(); drawToolbar(); buildCharts();
  }

  search.addEventListener('input', () => { state.q = search.value; cursor = -1; save(); drawList(); });
  search.addEventListener('keydown', (e) => {
    const shown = list._shown || [];
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      cursor = Math.max(0, Math.min(shown.length - 1, cursor + (e.key === 'ArrowDown' ? 1 : -1)));
      drawList(); e.preventDefault();
    } else if (e.key === 'Enter' && shown.length) choose(shown[Math.max(cursor, 0)], e.shiftKey);
  });
  const onKey = (e) => {
    if (/^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
    const shown = list._shown || [];
    if (e.key === 'x') setAxis(state.x === 'time' ? 'seq' : 'time');
    else if ((e.key === 'j' || e.key === 'k') && shown.length) {
      cursor = Math.max(0, Math.min(shown.length - 1, cursor + (e.key === 'j' ? 1 : -1)));
      choose(shown[cursor], false);
    }
  };
  document.addEventListener('keydown', onKey);

  function buildCharts() {
    for (const c of charts) c.destroy();
    charts = state.selected.map((m) => chart(m));
    chartsEl.replaceChildren(...charts.map((c) => c.el));
    if (!charts.length) chartsEl.append(h('div.card.empty', null, catalog.length ? 'Pick a metric on the left (Shift+click adds more).' : 'No metrics yet: send a number, e.g. ',
      catalog.length ? null : h('code', null, 'echo "demo.temp 21.5 $(date +%s)" | nc -q0 127.0.0.1 2003')));
    refreshAll();
  }
  function refreshAll() { for (const c of charts) c.refresh(); schedule(); }
  function schedule() {
    clearTimeout(timer);
    if (state.live && state.range !== 'custom' && !stopped) timer = setTimeout(() => { if (!document.hidden) refreshAll(); else schedule(); }, LIVE_MS);
  }

  // chart is one metric's card: the plot, its annotations and links.
  function chart(m) {
    const plot = h('div.plot', { dataset: { points: '', x: '' } });
    const meta = h('span.meta');
    const links = h('span');
    const el = h('section.card.chart', { dataset: { metric: encM(m) } },
      h('header', null, h('span.t', null, m.story, ' ', h('span.mono.muted', null, m.field)), h('span.meta', null, m.chronicle), h('span.spacer'), meta),
      plot, h('footer', null, links, h('span.spacer'), h('span', null, 'drag to zoom · double-click to reset')));
    let u = null;
    let annotations = [];
    let seq = 0;
    let ro = null;

    async function refresh() {
      const my = ++seq;
      const [from, to] = span();
      const width = Math.max(100, Math.min(4000, Math.round(plot.clientWidth || 800)));
      const q = { field: m.field, x: state.x, width };
      if (from) q.from = new Date(from).toISOString();
      if (to) q.to = new Date(to).toISOString();
      if (state.group) q.group_by = state.group;
      const base = 'chronicles/' + seg(m.chronicle) + '/stories/' + seg(m.story);
      try {
        const [data, ann] = await Promise.all([
          get(base + '/series', q),
          state.x === 'time' ? get('chronicles/' + seg(m.chronicle) + '/annotations', { ...(q.from ? { from: q.from } : {}), ...(q.to ? { to: q.to } : {}) }).catch(() => ({ annotations: [] })) : { annotations: [] },
        ]);
        if (my !== seq || stopped) return;
        annotations = ann.annotations;
        draw(data);
        const ex = { ...(q.from ? { from: q.from } : {}), ...(q.to ? { to: q.to } : {}) };
        links.replaceChildren('Export ', h('a', { href: apiURL(base + '/events', { ...ex, format: 'csv' }), download: `${m.story}.csv` }, 'CSV'), ' · ',
          h('a', { href: apiURL(base + '/events', { ...ex, format: 'ndjson' }), download: `${m.story}.ndjson` }, 'NDJSON'), ' · ',
          h('a', { href: apiURL(base + '/series', q), target: '_blank' }, 'JSON (as drawn)'));
      } catch (err) {
        if (my !== seq || stopped) return;
        meta.textContent = 'error: ' + err.message;
        meta.classList.add('err');
      }
    }

    function draw(data) {
      const series = data.series;
      const drawn = series.reduce((n, s) => n + s.x.length, 0);
      plot.dataset.points = drawn;
      plot.dataset.x = data.x;
      plot.dataset.series = series.length;
      plot.querySelector('.plot-empty')?.remove();
      if (!drawn) {
        plot.append(h('div.plot-empty', null, state.range === 'all' ? 'No numeric values of this field yet.' :
          [`No points in this range. `, h('button', { type: 'button', onclick: () => setRange('all') }, 'Show all')]));
      }
      const last = series.length === 1 && series[0].y.length ? series[0].y[series[0].y.length - 1] : null;
      const num = (v) => (Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : +v.toFixed(3)).toLocaleString();
      meta.textContent = (last != null ? `last ${num(last)} · min ${num(series[0].min)} · max ${num(series[0].max)} · ` : '') +
        `${fmtInt(data.points)} points` + (data.points > drawn ? ` · ${fmtInt(drawn)} drawn` : '') +
        (data.groups_truncated ? ' · first 100 groups' : '');
      meta.classList.remove('err');
      const aligned = series.length ? (series.length === 1 ? [series[0].x, series[0].y] : uPlot.join(series.map((s) => [s.x, s.y]))) : [[], []];
      const label = (s) => Object.entries(s.tags).map(([k, v]) => `${k}=${v || '∅'}`).join(' ') || m.field;
      const colors = palette();
      const sig = data.x + '|' + series.map(label).join(',') + '|' + colors[0];
      if (u && u._sig === sig) {
        u.setData(aligned, true);
        return;
      }
      if (u) u.destroy();
      const grid = { stroke: css('--line'), width: 1 };
      const axis = { stroke: css('--muted'), grid, ticks: grid, font: '11px ' + css('--sans') };
      const opts = {
        width: plot.clientWidth || 800, height: 300,
        ms: 1,
        scales: { x: { time: data.x === 'time' } },
        cursor: { drag: { x: true, y: false, setScale: false } },
        legend: { live: true },
        axes: [{ ...axis, label: data.x === 'seq' ? 'sequence' : undefined, labelSize: data.x === 'seq' ? 14 : 0 }, { ...axis, size: 60 }],
        series: [{ label: data.x === 'seq' ? '#' : 'time', value: data.x === 'seq' ? (u, v) => v == null ? '—' : fmtInt(v) : (u, v) => v == null ? '—' : fmtTime(v) }]
          .concat(series.map((s, i) => ({
            label: label(s), stroke: colors[i % colors.length], width: 1.5, spanGaps: true,
            points: { show: drawn / Math.max(series.length, 1) < 60 },
          }))),
        hooks: {
          setSelect: [(u) => {
            if (u.select.width < 4) return;
            const lo = u.posToVal(u.select.left, 'x'), hi = u.posToVal(u.select.left + u.select.width, 'x');
            u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
            if (data.x === 'time') setRange('custom', lo, hi);
            else u.setScale('x', { min: lo, max: hi });
          }],
          draw: [drawAnnotations],
        },
      };
      u = new uPlot(opts, aligned, plot);
      u._sig = sig;
      u.over.addEventListener('dblclick', () => {
        if (data.x === 'time' && state.range === 'custom') setRange('24h');
        else u.setData(u.data, true);
      });
      if (!ro) {
        ro = new ResizeObserver(() => { if (u && plot.clientWidth && Math.abs(u.width - plot.clientWidth) > 2) u.setSize({ width: plot.clientWidth, height: 300 }); });
        ro.observe(plot);
      }
    }

    // drawAnnotations draws points as vertical lines and regions as shaded
    // spans, with a flag on top that tells the text on hover.
    function drawAnnotations(u) {
      const layer = u.over.querySelector('.ann-layer') || u.over.appendChild(h('div.ann-layer'));
      layer.replaceChildren();
      if (u.scales.x.time === false) return;
      const c = u.ctx;
      const { left, top, width, height } = u.bbox;
      const [xmin, xmax] = [u.scales.x.min, u.scales.x.max];
      c.save();
      for (const a of annotations) {
        const end = a.end_ms ?? (a.open ? xmax : null);
        if (a.time_ms > xmax || (end ?? a.time_ms) < xmin) continue;
        const x0 = u.valToPos(Math.max(a.time_ms, xmin), 'x', true);
        if (end != null) {
          const x1 = u.valToPos(Math.min(end, xmax), 'x', true);
          c.fillStyle = css('--region');
          c.fillRect(x0, top, Math.max(1, x1 - x0), height);
        }
        c.strokeStyle = css('--ann');
        c.setLineDash([4, 3]);
        c.lineWidth = devicePixelRatio;
        c.beginPath(); c.moveTo(x0, top); c.lineTo(x0, top + height); c.stroke();
        const text = (a.title ? a.title + ': ' : '') + (a.text || a.region || 'annotation');
        const when = fmtTime(a.time_ms) + (a.end_ms ? ' → ' + fmtTime(a.end_ms) : a.open ? ' → (open)' : '');
        const flag = h('div.ann-flag', { style: `left:${u.valToPos(Math.max(a.time_ms, xmin), 'x')}px`, dataset: { annotation: a.seq } });
        flag.addEventListener('mouseenter', (e) => showTip(e, a.title || 'annotation', (a.title ? a.text : text), when));
        flag.addEventListener('mouseleave', hideTip);
        layer.append(flag);
      }
      c.restore();
      void left; void width;
    }

    return { el, refresh, destroy: () => { seq++; if (u) u.destroy(); if (ro) ro.disconnect(); } };
  }

  async function loadCatalog() {
    try {
      catalog = (await get('metrics')).metrics;
      if (stopped) return;
      drawList();
      // The toolbar offers the shown metrics' tags to group by; redrawn
      // only when they change and nobody is typing in it.
      const tags = state.selected.flatMap((m) => (catalog.find((c) => sameM(c, m)) || {}).tags || []).sort().join();
      if (tags !== toolbar.dataset.tags && !toolbar.contains(document.activeElement)) {
        toolbar.dataset.tags = tags;
        drawToolbar();
      }
      if (!state.selected.length && catalog.length && !params.has('m')) { state.selected = [catalog[0]]; save(); drawList(); drawToolbar(); buildCharts(); }
    } catch (err) {
      ctx.status('metrics: ' + err.message, true);
    }
  }

  drawToolbar();
  drawList();
  buildCharts();
  loadCatalog();
  const catTimer = setInterval(() => { if (!document.hidden) loadCatalog(); }, 60000);
  const onTheme = () => buildCharts();
  document.addEventListener('cs-theme', onTheme);
  return () => {
    stopped = true;
    clearTimeout(timer); clearInterval(catTimer);
    document.removeEventListener('keydown', onKey);
    document.removeEventListener('cs-theme', onTheme);
    for (const c of charts) c.destroy();
    hideTip();
  };
}

let tip = null;
function showTip(e, title, text, when) {
  hideTip();
  tip = h('div.tip', null, h('b', null, title), text ? h('div', null, text) : null, h('div.muted', null, when));
  document.body.append(tip);
  tip.style.left = Math.min(e.clientX + 12, innerWidth - tip.offsetWidth - 8) + 'px';
  tip.style.top = (e.clientY + 14) + 'px';
}
function hideTip() { if (tip) tip.remove(); tip = null; }

function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

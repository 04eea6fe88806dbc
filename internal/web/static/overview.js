// Overview: chronicles and their stories with counts, ingest rate, last
// event time, retention and sink status, and on a cluster its members and
// each chronicle's replicas, refreshed every 2 s. The rate is
// the change in events between two refreshes (retention evictions make it
// read low, never negative).
import { get, h, fmtInt, fmtBytes, fmtRate, fmtAgo, seg, APIError } from './api.js';

const REFRESH_MS = 2000;
const SPARK = 60; // rate samples kept: two minutes
const SVG = 'http://www.w3.org/2000/svg';

function retention(r) {
  const parts = [];
  if (r.max_age_seconds) parts.push(r.max_age.replace(/0s$/, '').replace(/0m$/, '') || r.max_age);
  if (r.max_events) parts.push(fmtInt(r.max_events) + ' ev');
  if (r.max_bytes) parts.push(fmtBytes(r.max_bytes));
  return parts.length ? parts.join(' · ') : 'forever';
}

// sinkState classes a sink's status (GET /api/v1/sinks) as ok, warn or
// err: stopped, or failing since its last delivery, is an error; paused,
// waiting for its chronicle, or a minute behind, a warning.
function sinkState(s) {
  const st = String(s.state || '').toLowerCase();
  if (st === 'stopped') return 'err';
  if (s.last_error && (!s.last_delivery || Date.parse(s.last_error_at) >= Date.parse(s.last_delivery))) return 'err';
  if (st === 'paused' || st === 'waiting' || s.lag_seconds > 60) return 'warn';
  return st === 'standby' ? '' : 'ok';
}

// replicaState classes a cluster member or a chronicle's copy (GET
// /api/v1/cluster): offline (down) is an error, behind a warning.
function replicaState(p, up = 'current', down = 'offline') {
  if (p.offline) return { cls: 'err', text: down };
  if (!p.current) return { cls: 'warn', text: p.lag ? `lagging ${fmtInt(p.lag)} ops` : 'lagging' };
  return { cls: 'ok', text: up };
}

function sinkTitle(s) {
  return [`${s.type} sink, ${s.state}`, `delivered ${fmtInt(s.delivered || 0)}`, s.lag_events ? `behind by ${fmtInt(s.lag_events)} events (${s.lag_seconds.toFixed(0)} s)` : 'caught up',
    s.deadlettered ? `${fmtInt(s.deadlettered)} dead-lettered` : '', s.last_error ? `last error: ${s.last_error}` : ''].filter(Boolean).join('\n');
}

export function render(root, params, ctx) {
  const collapsed = new Set(params.getAll('collapse'));
  const prev = new Map(); // key → {events, at}
  const rates = new Map();
  const history = new Map(); // key → recent rates, for the sparklines
  let sinks = null; // null: unknown or not served (column hidden)
  let cluster = null; // null: not clustered, or not readable (section hidden)
  let timer = 0;
  let stopped = false;

  const stats = h('div.stats');
  const tbody = h('tbody');
  const sinkTh = h('th', { hidden: true }, 'Sinks');
  const table = h('table', { id: 'overview-table' },
    h('thead', null, h('tr', null, h('th', null, 'Chronicle / story'), h('th.num', null, 'Events'),
      h('th.num', null, 'Rate'), h('th.num.hide-sm', null, 'Size'), h('th', null, 'Last event'),
      h('th.hide-sm', null, 'Retention'), sinkTh, h('th.hide-sm', null, ''))),
    tbody);
  const problem = h('div.problem', { hidden: true });
  const single = h('span.muted', { id: 'single-node', hidden: true }, 'single node');
  const clusterHead = h('span.muted');
  const members = h('div.members');
  const replicas = h('tbody');
  const clusterCard = h('section.card', { id: 'cluster', hidden: true },
    h('header', null, h('h2', null, 'Cluster'), clusterHead),
    members,
    h('div.tablewrap', null, h('table', { id: 'cluster-table' },
      h('thead', null, h('tr', null, h('th', null, 'Chronicle'), h('th', null, 'Leader'), h('th', null, 'Replicas'))),
      replicas)));
  root.append(problem, stats, h('section.card', null,
    h('header', null, h('h2', null, 'Chronicles'), h('span.muted', null, 'live, every 2 s'), single),
    h('div.tablewrap', null, table)), clusterCard);

  const rate = (key, events) => {
    const now = performance.now();
    const p = prev.get(key);
    prev.set(key, { events, at: now });
    if (p && now > p.at) {
      const r = Math.max(0, (events - p.events) * 1000 / (now - p.at));
      rates.set(key, r);
      const hist = history.get(key) || [];
      hist.push(r);
      if (hist.length > SPARK) hist.shift();
      history.set(key, hist);
    }
    return rates.get(key) ?? null;
  };
  // spark draws the rate's recent history (the last two minutes).
  const spark = (key) => {
    const hist = history.get(key) || [];
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', `0 0 ${SPARK - 1} 20`);
    svg.setAttribute('preserveAspectRatio', 'none');
    if (hist.length > 1) {
      const top = Math.max(...hist) || 1;
      const path = document.createElementNS(SVG, 'path');
      const dx = (SPARK - 1) / (hist.length - 1); // a short history spans the width too
      path.setAttribute('d', hist.map((v, i) => `${i ? 'L' : 'M'}${(i * dx).toFixed(1)},${(19 - 18 * v / top).toFixed(1)}`).join(''));
      svg.append(path);
    }
    return svg;
  };

  const toggle = (name) => {
    collapsed.has(name) ? collapsed.delete(name) : collapsed.add(name);
    const p = new URLSearchParams();
    for (const c of collapsed) p.append('collapse', c);
    ctx.setParams(p);
    refresh();
  };

  async function refresh() {
    clearTimeout(timer);
    try {
      // The cluster's state is optional: a 403 or 404 hides its section.
      const clusterReq = get('cluster').catch((err) => { if (err instanceof APIError) return null; throw err; });
      const { chronicles } = await get('chronicles');
      const stories = await Promise.all(chronicles.map((c) => collapsed.has(c.name)
        ? Promise.resolve(null)
        : get('chronicles/' + seg(c.name) + '/stories').then((r) => r.stories).catch(() => [])));
      try {
        const r = await get('sinks');
        sinks = Array.isArray(r) ? r : (r.sinks || []);
      } catch (err) {
        sinks = null; // 404 until the sinks API exists: hide the column
        if (!(err instanceof APIError)) throw err;
      }
      cluster = await clusterReq;
      if (stopped) return;
      problem.hidden = true;
      draw(chronicles, stories);
      drawCluster();
      ctx.status('updated ' + new Date().toLocaleTimeString());
    } catch (err) {
      if (stopped) return;
      problem.hidden = false;
      problem.textContent = 'Could not read the chronicles: ' + err.message;
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }

  function sinkCell(chronicle) {
    if (!sinks) return null;
    const mine = sinks.filter((s) => s.chronicle === chronicle);
    return h('td', null, mine.length ? mine.map((s) => h('span.pill', { title: sinkTitle(s), dataset: { sink: s.name, state: sinkState(s) } },
      h('span.dot.' + (sinkState(s) || 'x')), s.name)) : h('span.muted', null, '—'));
  }

  function draw(chronicles, stories) {
    let total = 0, totalRate = 0, totalBytes = 0, last = 0, nStories = 0;
    const rows = [];
    chronicles.forEach((c, i) => {
      const r = rate('c/' + c.name, c.events);
      const sts = stories[i];
      const lastT = sts && sts.length ? Math.max(...sts.map((s) => Date.parse(s.last_time) || 0)) : 0;
      total += c.events; totalBytes += c.bytes; totalRate += r || 0; last = Math.max(last, lastT); nStories += c.stories;
      const open = !collapsed.has(c.name);
      rows.push(h('tr.chron', { dataset: { chronicle: c.name } },
        h('td', null, h('button.twisty', { 'aria-label': open ? 'collapse' : 'expand', onclick: () => toggle(c.name) }, open ? '▾' : '▸'),
          c.name, ' ', h('span.muted.hide-sm', null, `(${c.stories} ${c.stories === 1 ? 'story' : 'stories'})`)),
        h('td.num', null, fmtInt(c.events)), h('td.num', null, spark('c/' + c.name), fmtRate(r)), h('td.num.hide-sm', null, fmtBytes(c.bytes)),
        h('td', { title: lastT ? new Date(lastT).toISOString() : '' }, lastT ? fmtAgo(lastT) : '—'),
        h('td.hide-sm', null, retention(c.retention)), sinkCell(c.name),
        h('td.hide-sm', null, h('a', { href: '#/logs?c=' + encodeURIComponent(c.name) }, 'logs'), ' · ',
          h('a', { href: '#/metrics?q=' + encodeURIComponent(c.name + ' ') }, 'metrics'))));
      for (const s of open && sts ? sts : []) {
        const sr = rate('s/' + c.name + '/' + s.name, s.events);
        const lt = Date.parse(s.last_time) || 0;
        rows.push(h('tr.story', { dataset: { story: s.name } },
          h('td', null, s.name), h('td.num', null, fmtInt(s.events)), h('td.num', null, spark('s/' + c.name + '/' + s.name), fmtRate(sr)),
          h('td.num.hide-sm', null, fmtBytes(s.bytes)), h('td', { title: s.last_time }, fmtAgo(lt)),
          h('td.hide-sm'), sinks ? h('td') : null,
          h('td.hide-sm', null, h('a', { href: '#/logs?c=' + encodeURIComponent(c.name) + '&s=' + encodeURIComponent(s.name) }, 'tail'), ' · ',
            h('a', { href: '#/metrics?q=' + encodeURIComponent(c.name + ' ' + s.name) }, 'metrics'))));
      }
    });
    sinkTh.hidden = !sinks;
    tbody.replaceChildren(...(rows.length ? rows : [h('tr', null, h('td.empty', { colspan: 8 },
      'No chronicles yet. Send an event: ', h('code', null, 'curl -d \'{"msg":"hello"}\' ' + location.origin + document.baseURI.replace(location.origin, '').replace(/\/$/, '') + '/?story=demo')))]));
    const stat = (k, v) => h('div.card.stat', null, h('div.v', null, v), h('div.k', null, k));
    stats.replaceChildren(stat('Events kept', fmtInt(total)), stat('Ingest rate', fmtRate(prev.size > chronicles.length ? totalRate : null)),
      stat('Chronicles · stories', `${chronicles.length} · ${nStories}`), stat('Stored', fmtBytes(totalBytes)),
      stat('Last event', last ? fmtAgo(last) : '—'));
    if (sinks) {
      const bad = sinks.filter((s) => sinkState(s) === 'err').length;
      stats.append(stat('Sinks', sinks.length ? `${sinks.length}${bad ? ` · ${bad} failing` : ' · ok'}` : 'none'));
    }
  }

  // drawCluster shows the members (up, lagging or down; the meta leader
  // and this node marked) and, per chronicle, its leader and the state of
  // each copy. A lone node shows only a note by the chronicles' title.
  function drawCluster() {
    const on = !!(cluster && cluster.clustered);
    clusterCard.hidden = !on;
    single.hidden = !cluster || on;
    if (!on) return;
    const down = cluster.members.filter((m) => m.offline).length;
    clusterHead.textContent = [cluster.cluster && `"${cluster.cluster}"`, `${cluster.members.length} members`,
      down ? `${down} down` : 'all up', cluster.leader && `meta leader ${cluster.leader}`].filter(Boolean).join(' · ');
    members.replaceChildren(...cluster.members.map((m) => {
      // Only the meta leader knows whether the others are caught up (a
      // follower answers "not current" with no lag for them), so a member
      // is lagging only when the answer counts the operations it misses.
      const st = replicaState({ offline: m.offline, current: !m.lag, lag: m.lag }, 'up', 'down');
      const ds = { member: m.name, state: st.cls };
      if (m.leader) ds.leader = 'yes';
      if (m.self) ds.self = 'yes';
      return h('span.pill.member', { title: `${m.name}: ${st.text}${m.leader ? ', meta leader' : ''}${m.self ? ', this node' : ''}`, dataset: ds },
      h('span.dot.' + st.cls), m.name, m.leader ? h('b.tag', null, 'meta leader') : null, m.self ? h('b.tag', null, 'this node') : null, ' ', h('span.muted', null, st.text));
    }));
    replicas.replaceChildren(...(cluster.chronicles.length ? cluster.chronicles.map((c) => h('tr', { dataset: { chronicle: c.chronicle, leader: c.leader || '' } },
      h('td', null, c.chronicle, ' ', h('span.muted', null, 'R' + c.replicas)),
      h('td', null, c.leader || h('span.muted', null, 'none')),
      h('td', null, (c.peers || []).map((p) => {
        const st = replicaState(p);
        return h('span.pill', { title: `${p.node}: ${st.text}${p.leader ? ', leader' : ''}`, dataset: { node: p.node, state: st.cls } },
          h('span.dot.' + st.cls), p.node, p.leader ? ' ★' : '', ' ', h('span.muted', null, p.leader ? 'leader' : st.text));
      })))) : [h('tr', null, h('td.empty', { colspan: 3 }, 'No chronicles.'))]));
  }

  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}

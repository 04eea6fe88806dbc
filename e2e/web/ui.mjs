// Drives the web UI in headless Chromium; run by web_test.go, which starts
// the server, stores the data and passes where everything is in UI_*.
// Every check waits for a condition with a deadline; none sleeps.
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const URL_ = env('UI_URL'), SERVER = env('UI_SERVER'), PREFIX = env('UI_PREFIX'), SHOTS = env('UI_SHOTS'), TRACE = env('UI_TRACE');
mkdirSync(SHOTS, { recursive: true });

const laptop = { width: 1366, height: 768 }, phone = { width: 390, height: 844 };
const ctx = await chromium.launchPersistentContext(env('UI_PROFILE'), {
  executablePath: env('UI_CHROMIUM'), headless: true, viewport: laptop,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});
const page = ctx.pages()[0] || await ctx.newPage();
const problems = [];
page.on('pageerror', (e) => problems.push('page error: ' + e.message));
page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
const apiPaths = [];
page.on('request', (r) => { const u = new URL(r.url()); if (u.pathname.includes('/api/')) apiPaths.push(u.pathname); });

let failed = 0;
const step = async (name, fn) => {
  const t0 = Date.now();
  try { await fn(); console.log(`ok   ${name} (${Date.now() - t0} ms)`); } catch (e) { failed++; console.log(`FAIL ${name}: ${e.message}`); }
};
const check = (cond, msg) => { if (!cond) throw new Error(msg); };
const attr = (sel, a) => page.locator(sel).first().getAttribute(a);
// until polls fn in the page (page.evaluate, which the server's CSP allows;
// Playwright's waitForFunction needs eval, which it does not) until it is
// true or the deadline passes.
async function until(fn, arg, timeout = 10000) { return untilIn(page, fn, arg, timeout); }
async function untilIn(pg, fn, arg, timeout = 10000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await pg.evaluate(fn, arg)) return;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + String(fn).slice(0, 120));
    await new Promise((r) => setTimeout(r, 25));
  }
}
const waitAttr = (sel, a, v, timeout = 10000) =>
  until(([sel, a, v]) => document.querySelector(sel)?.getAttribute(a) === v, [sel, a, v], timeout);

// shoot saves the page in both themes at both widths.
async function shoot(name, ready, pg = page) {
  for (const [vw, size] of [['laptop', laptop], ['phone', phone]]) {
    await pg.setViewportSize(size);
    for (const scheme of ['light', 'dark']) {
      await pg.emulateMedia({ colorScheme: scheme });
      await pg.evaluate(() => document.dispatchEvent(new CustomEvent('cs-theme')));
      if (ready) await ready();
      await pg.screenshot({ path: join(SHOTS, `${name}-${vw}-${scheme}.png`) });
    }
  }
  await pg.setViewportSize(laptop);
  await pg.emulateMedia({ colorScheme: 'light' });
}

async function ingest(story, line, chronicle = 'logs') {
  const r = await fetch(`${SERVER}${PREFIX}/api/v1/chronicles/${chronicle}/stories/${story}/events`, { method: 'POST', body: line + '\n' });
  check(r.ok, 'ingest: HTTP ' + r.status);
}

await step('overview lists chronicles and stories', async () => {
  await page.goto(URL_ + '#/');
  for (const c of ['logs', 'metrics', 'otel']) await page.waitForSelector(`tr[data-chronicle="${c}"]`, { timeout: 10000 });
  await page.waitForSelector('tr[data-story="room.temp"]');
  const text = await page.locator('tr[data-story="room.temp"]').innerText();
  check(/300/.test(text), 'room.temp row shows 300 events: ' + text);
  // The sinks column (GET /api/v1/sinks): the webhook of the logs chronicle, delivering.
  await page.waitForSelector('tr[data-chronicle="logs"] .pill[data-sink="audit-hook"][data-state="ok"]', { timeout: 10000 });
  // Ingest rate: events sent while the page polls show as a rate and a sparkline.
  let n = 0;
  const feed = setInterval(() => { ingest('api', JSON.stringify({ level: 'info', msg: `steady ${n++}` })).catch(() => {}); }, 100);
  try {
    await page.waitForSelector('tr[data-chronicle="logs"] .spark path', { timeout: 15000 });
    await until(() => /\d\/s/.test(document.querySelector('tr[data-chronicle="logs"] td:nth-child(3)').textContent) &&
      !/^0\/s$/.test(document.querySelector('tr[data-chronicle="logs"] td:nth-child(3)').textContent), null, 15000);
  } finally {
    clearInterval(feed);
  }
  // A lone node: no cluster section, a "single node" note.
  await until(() => document.querySelector('#single-node') && !document.querySelector('#single-node').hidden, null, 5000);
  check(await page.locator('#cluster').isHidden(), 'a lone node shows no cluster section');
  await shoot('overview');
});

await step('overview: a cluster node lists its members and each chronicle\'s leader and copies', async () => {
  const CLUSTER = env('UI_CLUSTER'), SELF = env('UI_CLUSTER_SELF'), DOWN = env('UI_CLUSTER_DOWN');
  await page.goto(CLUSTER + '#/');
  await page.waitForSelector('#cluster:not([hidden]) .pill.member', { timeout: 15000 });
  // The section shows what the API says: three members up, this node (a
  // meta follower) marked, the meta leader marked, and orders led by its API's leader with
  // three current copies. The DOM is compared with a fresh answer, as a
  // leader may move.
  await until(async ([base, self]) => {
    const st = await (await fetch(base + 'api/v1/cluster')).json();
    const m = [...document.querySelectorAll('#cluster .pill.member')];
    const row = document.querySelector('#cluster-table tr[data-chronicle="orders"]');
    return m.length === 3 && m.every((e) => e.dataset.state === 'ok') &&
      m.filter((e) => e.dataset.self === 'yes').map((e) => e.dataset.member).join() === self &&
      m.filter((e) => e.dataset.leader === 'yes').map((e) => e.dataset.member).join() === st.leader &&
      row && row.dataset.leader === st.chronicles[0].leader && row.cells[1].textContent === st.chronicles[0].leader &&
      row.querySelectorAll('.pill[data-state="ok"]').length === 3 && /current/.test(row.textContent);
  }, [CLUSTER, SELF], 15000).catch(async (e) => {
    throw new Error(e.message + '; the section shows: ' + await page.locator('#cluster').innerText());
  });
  check(await page.locator('#single-node').isHidden(), 'a cluster node has no "single node" note');
  let head = await page.locator('#cluster > header').innerText();
  check(/3 members/.test(head) && /all up/.test(head) && /meta leader n\d/.test(head), 'cluster header: ' + head);
  // At 390 px the section fits the width (no sideways scrolling of the page).
  await page.setViewportSize(phone);
  check(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'the page scrolls sideways at 390 px');
  await page.setViewportSize(laptop);
  await shoot('overview-cluster', null);
  // An outage: the other follower stops; this page shows it down and its
  // copy offline (or behind), while the other two stay up.
  const r = await fetch(env('UI_CLUSTER_STOP'), { method: 'POST' });
  check(r.ok, `stop ${DOWN}: HTTP ` + r.status);
  await until((down) => {
    const m = document.querySelector(`#cluster .pill.member[data-member="${down}"]`);
    const copy = document.querySelector(`#cluster-table tr[data-chronicle="orders"] .pill[data-node="${down}"]`);
    return m && m.dataset.state === 'err' && /down/.test(m.textContent) && copy && copy.dataset.state !== 'ok' &&
      document.querySelectorAll('#cluster .pill.member[data-state="ok"]').length === 2;
  }, DOWN, 45000).catch(async (e) => {
    throw new Error(e.message + '; the section shows: ' + await page.locator('#cluster').innerText());
  });
  head = await page.locator('#cluster > header').innerText();
  check(/1 down/.test(head), 'cluster header after the outage: ' + head);
  await shoot('overview-cluster-outage', null);
});

await step('metrics: chart draws every point on the time axis, with annotations', async () => {
  await page.goto(URL_ + '#/metrics?m=metrics/room.temp/value&r=all');
  await waitAttr('.chart .plot', 'data-points', '300');
  check(await attr('.chart .plot', 'data-x') === 'time', 'time axis');
  await until(() => document.querySelectorAll('.ann-flag').length === 2, null, 5000);
  await page.hover('.ann-flag >> nth=0');
  await page.waitForSelector('.tip:has-text("v2.4.1 rolled out")', { timeout: 10000 });
  check(await page.locator('#metric-list li.active').count() === 1, 'the shown metric is marked in the list');
  // The export links hand over the shown data through the events API.
  const csvURL = await page.locator('.chart footer a', { hasText: 'CSV' }).evaluate((a) => a.href);
  check(csvURL.startsWith(URL_ + 'api/v1/'), 'CSV link under the prefix: ' + csvURL);
  const csv = await (await fetch(csvURL)).text();
  check(csv.startsWith('seq,time,story,kind,tags,fields,body') && csv.trim().split('\r\n').length === 301, 'CSV export of 300 events: ' + csv.slice(0, 80));
});

await step('metrics: switches to the sequential axis and back, in the URL', async () => {
  await page.click('#axis button[data-v="seq"]');
  await waitAttr('.chart .plot', 'data-x', 'seq');
  await waitAttr('.chart .plot', 'data-points', '300');
  check(page.url().includes('x=seq'), 'URL holds x=seq: ' + page.url());
  // uPlot's own data: x is 0..299 on the sequential axis.
  const xs = await page.evaluate(() => [...document.querySelectorAll('.u-legend')].length);
  check(xs === 1, 'one legend');
  await page.keyboard.press('x');
  await waitAttr('.chart .plot', 'data-x', 'time');
  await page.keyboard.press('x');
  await waitAttr('.chart .plot', 'data-x', 'seq');
});

await step('metrics: group by host overlays one line per host; deep link restores the view', async () => {
  await page.selectOption('#group-by', 'host');
  await waitAttr('.chart .plot', 'data-series', '2');
  await waitAttr('.chart .plot', 'data-points', '300');
  check(page.url().includes('g=host'), 'URL holds g=host');
  const deep = page.url();
  await page.goto('about:blank');
  await page.goto(deep);
  await waitAttr('.chart .plot', 'data-series', '2');
  check(await attr('.chart .plot', 'data-x') === 'seq', 'deep link restores the sequential axis');
  check(await page.inputValue('#group-by') === 'host', 'deep link restores group by');
  await shoot('metrics-seq');
  await page.goto(URL_ + '#/metrics?m=metrics/room.temp/value&r=all&g=host');
  await waitAttr('.chart .plot', 'data-series', '2');
  await until(() => document.querySelectorAll('.ann-flag').length === 2);
  await shoot('metrics-time', () => until(() => document.querySelectorAll('.ann-flag').length === 2));
});

await step('metrics: drag to zoom narrows the time range and refetches', async () => {
  await page.goto(URL_ + '#/metrics?m=metrics/room.temp/value&r=all');
  await waitAttr('.chart .plot', 'data-points', '300');
  const box = await page.locator('.chart .u-over').boundingBox();
  await page.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await until(() => location.hash.includes('from=') && location.hash.includes('to='));
  await until(() => { const n = +document.querySelector('.chart .plot').dataset.points; return n > 40 && n < 120; }, null, 5000);
});

await step('metrics: a custom range without points says so and offers all', async () => {
  await page.goto(URL_ + '#/metrics?m=metrics/room.temp/value&from=978307200000&to=978310800000'); // 2001-01-01, one hour
  await page.waitForSelector('#custom-range');
  await page.waitForSelector('.plot-empty button');
  check(await attr('.chart .plot', 'data-points') === '0', 'no points in 2001');
  await page.click('.plot-empty button');
  await waitAttr('.chart .plot', 'data-points', '300');
  check(page.url().includes('r=all'), 'URL holds r=all: ' + page.url());
});

await step('metrics: a live chart picks up a new point', async () => {
  await page.goto(URL_ + '#/metrics?m=metrics/room.temp/value&r=all');
  await waitAttr('.chart .plot', 'data-points', '300');
  const r = await fetch(`${SERVER}/api/v1/chronicles/metrics/stories/room.temp/events`, { method: 'POST', body: '{"value":22.5,"tags":{"host":"web-1"}}\n' });
  check(r.ok, 'ingest: HTTP ' + r.status);
  await waitAttr('.chart .plot', 'data-points', '301', 15000); // refreshed every 5 s
});

// "Within a second" is measured and printed, not asserted: a timed
// assertion fails on a loaded machine (the waits below are generous).
await step('logs: history, the first record after opening, then live (latency printed)', async () => {
  await page.goto(URL_ + '#/logs?c=logs');
  await waitAttr('#log-state', 'data-state', 'live');
  await until(() => document.querySelectorAll('#log-list .logrow').length >= 60, null, 5000);
  // Vivo's bug: a single record sent after the page opened never showed.
  await ingest('api', '{"level":"info","msg":"first single record"}');
  await page.waitForSelector('#log-list .logrow:has-text("first single record")', { timeout: 5000 });
  const t0 = Date.now();
  await ingest('worker', '{"level":"warn","msg":"fresh live event","tags":{"host":"web-9"}}');
  await page.waitForSelector('#log-list .logrow:has-text("fresh live event")', { timeout: 10000 });
  console.log(`     live event shown ${Date.now() - t0} ms after its write was acknowledged`);
  const first = await page.locator('#log-list .logrow').first().innerText();
  check(first.includes('fresh live event'), 'newest on top: ' + first);
  await page.locator('#log-list .logrow').first().click();
  await page.waitForSelector('#log-list pre.json');
  check((await page.locator('#log-list pre.json').innerText()).includes('"host": "web-9"'), 'pretty JSON view shows the tags');
  await shoot('logs');
});

await step('logs: the live view resumes after a server restart, losing and repeating nothing', async () => {
  const before = +(await attr('#log-state', 'data-reconnects') || 0);
  const r = await fetch(env('UI_RESTART'), { method: 'POST' });
  check(r.ok, 'restart: HTTP ' + r.status);
  await ingest('api', '{"level":"info","msg":"written after the restart 1"}');
  await ingest('api', '{"level":"info","msg":"written after the restart 2"}');
  await page.waitForSelector('#log-list .logrow:has-text("written after the restart 2")', { timeout: 20000 });
  check(+(await attr('#log-state', 'data-reconnects')) > before, 'the tail reconnected');
  for (const n of [1, 2]) {
    const c = await page.locator(`#log-list .logrow:has-text("written after the restart ${n}")`).count();
    check(c === 1, `event ${n} shown ${c} times`);
  }
  check(await page.locator('#log-list .logrow:has-text("first single record")').count() === 1, 'nothing repeated');
});

await step('logs: a chronicle opened before it exists shows its single first record', async () => {
  await page.goto(URL_ + '#/logs?c=fresh');
  await page.waitForSelector('#log-waiting');
  await ingest('app', '{"level":"info","msg":"the only record of fresh"}', 'fresh');
  await page.waitForSelector('#log-list .logrow:has-text("the only record of fresh")', { timeout: 10000 });
  await page.goto(URL_ + '#/logs?c=logs');
  await waitAttr('#log-state', 'data-state', 'live');
});

await step('logs: pause holds new events, resume shows them; filters', async () => {
  await page.keyboard.press(' ');
  await until(() => document.querySelector('#log-pause').textContent.startsWith('Resume'));
  await ingest('api', '{"level":"error","msg":"held while paused"}');
  await until(() => document.querySelector('#log-pause').textContent.includes('1 new'), null, 5000);
  check(await page.locator('#log-list .logrow:has-text("held while paused")').count() === 0, 'paused view did not change');
  await page.click('#log-pause');
  await page.waitForSelector('#log-list .logrow:has-text("held while paused")', { timeout: 10000 });
  await page.fill('#log-stories', 'worker');
  await page.press('#log-stories', 'Enter');
  await until(() => { const st = [...document.querySelectorAll('#log-list .logrow .sty')]; return st.length > 0 && st.every((x) => x.textContent === 'worker'); });
  check(page.url().includes('s=worker'), 'URL holds the story filter');
  await page.fill('#log-stories', '');
  await page.press('#log-stories', 'Enter');
  await until(() => [...document.querySelectorAll('#log-list .logrow .sty')].some((x) => x.textContent === 'api'));
  await page.fill('#log-text', 'request 5'); // requests 5 and 50–59
  await page.press('#log-text', 'Enter');
  await until(() => { const r = [...document.querySelectorAll('#log-list .logrow')]; return r.length === 11 && r.every((x) => x.querySelector('mark')?.textContent === 'request 5'); });
  await page.fill('#log-text', '');
  await page.press('#log-text', 'Enter');
  await page.selectOption('#log-level', 'error');
  await until(() => [...document.querySelectorAll('#log-list .logrow .lvl')].every((l) => l.textContent === 'error') &&
    document.querySelectorAll('#log-list .logrow').length > 0, null, 5000);
  check(page.url().includes('level=error'), 'URL holds the level filter');
});

await step('traces: list, then the waterfall in tree order with attributes', async () => {
  await page.goto(URL_ + '#/traces?c=otel');
  await page.waitForSelector(`tr[data-trace="${TRACE}"]`, { timeout: 10000 });
  check(await page.locator('tr[data-trace]').count() === 6, 'six traces listed');
  await shoot('traces');
  await page.click('#trace-errors'); // the trace has an error span: it stays
  await page.fill('#trace-filter', 'no such span');
  await until(() => !document.querySelector('tr[data-trace]'));
  await page.fill('#trace-filter', 'checkout');
  await page.waitForSelector(`tr[data-trace="${TRACE}"]`);
  check(page.url().includes('errors=1') && page.url().includes('q=checkout'), 'URL holds the filters');
  await page.click(`tr[data-trace="${TRACE}"]`);
  await page.waitForSelector('#waterfall .wfrow');
  const rows = await page.$$eval('#waterfall .wfrow', (rs) => rs.map((r) => r.dataset.depth + ' ' + r.querySelector('.nm').firstChild?.textContent + r.querySelector('.nm').textContent));
  const names = await page.$$eval('#waterfall .wfrow', (rs) => rs.map((r) => r.dataset.depth + ':' + r.querySelector('.nm').textContent));
  check(names.length === 3, 'three spans: ' + names);
  check(names[0].startsWith('0:GET /checkout') && names[1].startsWith('1:') && names[1].includes('charge card') && names[2].startsWith('2:') && names[2].includes('db.query'),
    'spans in tree order: ' + JSON.stringify(names) + JSON.stringify(rows.length));
  check(page.url().includes('id=' + TRACE), 'URL holds the trace id');
  await page.click('#waterfall .wfrow:nth-child(3)');
  await page.waitForSelector('.attrs');
  check((await page.locator('.attrs').innerText()).includes('db.rows'), 'span attributes shown');
  await shoot('trace');
  // Keyboard: back to the list, then j and Enter open the first trace.
  await page.keyboard.press('Backspace');
  await page.waitForSelector('tr[data-trace]');
  await page.keyboard.press('j');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#waterfall .wfrow');
});

// The strict policy issue 10 will send: every page works without
// 'unsafe-inline' or eval. Checked on a page of its own, waiting with
// selectors only.
await step('pages work under a strict Content-Security-Policy', async () => {
  const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";
  const strict = await ctx.newPage();
  const violations = [];
  strict.on('console', (m) => { if (m.type() === 'error') violations.push(m.text()); });
  strict.on('pageerror', (e) => violations.push(e.message));
  await strict.route((u) => u.pathname === PREFIX + '/', async (route) => {
    const resp = await route.fetch();
    await route.fulfill({ response: resp, headers: { ...resp.headers(), 'content-security-policy': CSP } });
  });
  for (const [hash, sel] of [['#/', 'tr[data-story="room.temp"]'],
    ['#/metrics?m=metrics/room.temp/value&r=all&g=host', '.chart .plot[data-series="2"] .ann-flag'],
    ['#/logs?c=logs', '#log-state[data-state="live"]'], ['#/traces?c=otel&id=' + TRACE, '#waterfall .wfrow[data-depth="2"]']]) {
    await strict.goto(URL_ + hash);
    await strict.waitForSelector(sel, { timeout: 10000 });
  }
  await strict.close();
  check(!violations.length, violations.join('\n'));
});

// A server with tokens: the UI logs in with a read token, which then lives
// only in an HttpOnly cookie. Every request of this page is recorded, to
// check that no token ever travels in a URL or a header, and that only the
// login's POST body carries one.
const LOCKED = env('UI_LOCKED'), READ = env('UI_READ_TOKEN'), WRITE = env('UI_WRITE_TOKEN'), WRONG = 'not-a-token-at-all';
const secrets = [READ, WRITE, WRONG];
const lockedRequests = [], lockedProblems = [];
const lp = await ctx.newPage();
lp.on('request', (r) => lockedRequests.push({ url: r.url(), method: r.method(), body: r.postData() || '', authorization: r.headers().authorization }));
lp.on('pageerror', (e) => lockedProblems.push('page error: ' + e.message));
// Refused requests (401 without a session, 403 for the write token) are
// expected, and the browser's own favicon request finds none (404);
// anything else is a problem.
lp.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource: .*\b40[134]\b/.test(m.text())) lockedProblems.push('console: ' + m.text()); });
lp.on('response', (r) => {
  const st = r.status(), path = new URL(r.url()).pathname;
  if (st >= 400 && !(st === 401 || (st === 403 && path === '/api/v1/session') || (st === 404 && path === '/favicon.ico'))) lockedProblems.push(`HTTP ${st}: ${path}`);
});
const sessionCookie = async () => (await ctx.cookies(LOCKED)).find((c) => c.name === 'chronostream_session');
const submitToken = async (tok) => {
  await lp.fill('#login-token', tok);
  await lp.click('#login button[type="submit"]');
};
// headerFits: at phone width the header shows the whole brand and fits.
const headerFits = () => {
  const hd = document.querySelector('header.top'), brand = document.querySelector('.brand');
  return hd.scrollWidth <= hd.clientWidth && brand.textContent === 'chronostream' &&
    parseFloat(getComputedStyle(brand).fontSize) >= 11 && brand.getBoundingClientRect().right <= document.querySelector('#nav').getBoundingClientRect().left;
};

await step('a server with tokens shows the login; a wrong or write-only token gets a clear error', async () => {
  await lp.goto(LOCKED + '#/');
  await lp.waitForSelector('#login-token', { timeout: 10000 });
  check(await lp.locator('#session').isHidden(), 'no log out control before the login');
  for (const [tok, want] of [[WRONG, /not known to the server/], [WRITE, /lacks the read scope/]]) {
    await submitToken(tok);
    await untilIn(lp, (re) => { const e = document.querySelector('#login-error'); return !e.hidden && new RegExp(re).test(e.textContent); }, want.source, 5000);
  }
  check(!(await sessionCookie()), 'no session cookie after refused logins');
  check(await lp.locator('#login-token').count() === 1, 'the login stays');
  await shoot('login', null, lp);
});

await step('a read token logs in: overview, chart, CSV export and the live log tail work through the cookie', async () => {
  await submitToken(READ);
  await lp.waitForSelector('tr[data-story="locked.temp"]', { timeout: 10000 });
  check(await lp.locator('#login-token').count() === 0, 'the login is gone');
  check(await lp.locator('#session').isVisible(), 'a log out control');
  const c = await sessionCookie();
  check(c && c.value && !c.value.includes(READ) && c.httpOnly && c.sameSite === 'Strict', 'the session cookie holds a session id (not the token), HttpOnly, SameSite=Strict: ' +
    JSON.stringify(c && { httpOnly: c.httpOnly, sameSite: c.sameSite, holdsReadToken: c.value.includes(READ) }));
  // Scripts of the page can see no secret: the cookie is HttpOnly, storage holds none.
  const visible = await lp.evaluate(() => {
    const dump = (st) => Array.from({ length: st.length }, (_, i) => st.key(i) + '=' + st.getItem(st.key(i))).join(';');
    return document.cookie + '|' + dump(localStorage) + '|' + dump(sessionStorage);
  });
  check(!visible.includes('chronostream_session'), 'document.cookie shows the session');
  for (const s of secrets) check(!visible.includes(s), 'a token is visible to scripts (document.cookie or storage)');

  await lp.goto(LOCKED + '#/metrics?m=metrics/locked.temp/value&r=all');
  await untilIn(lp, () => document.querySelector('.chart .plot')?.dataset.points === '120', null, 10000);
  // An export link is a plain navigation: the cookie is its credential.
  const [dl] = await Promise.all([lp.waitForEvent('download', { timeout: 10000 }), lp.locator('.chart footer a', { hasText: 'CSV' }).click()]);
  check(!(await dl.failure()), 'CSV download failed: ' + await dl.failure());
  const csv = readFileSync(await dl.path(), 'utf8');
  check(csv.startsWith('seq,time,story,kind,tags,fields,body') && csv.trim().split('\r\n').length === 121, 'CSV export of 120 events: ' + csv.slice(0, 80));

  await lp.goto(LOCKED + '#/logs?c=logs');
  await untilIn(lp, () => document.querySelector('#log-state')?.dataset.state === 'live', null, 10000);
  await lp.waitForSelector('#log-list .logrow:has-text("disk 80% full")', { timeout: 5000 });
  const r = await fetch(LOCKED + 'api/v1/chronicles/logs/stories/api/events', { method: 'POST',
    headers: { Authorization: 'Bearer ' + WRITE }, body: '{"level":"info","msg":"live through the session"}\n' });
  check(r.ok, 'ingest with the write token: HTTP ' + r.status);
  await lp.waitForSelector('#log-list .logrow:has-text("live through the session")', { timeout: 5000 });
  await lp.setViewportSize(phone);
  check(await lp.evaluate(headerFits), 'at 390 px the header (whole brand, nav, log out) fits');
  await shoot('session-logs', null, lp);
});

await step('log out ends the session and returns to the login', async () => {
  await lp.click('#session');
  await lp.waitForSelector('#login-token', { timeout: 5000 });
  check((await lp.locator('#login-note').innerText()).includes('Logged out'), 'the login says logged out');
  check(!(await sessionCookie()), 'the session cookie is gone');
  check(await lp.locator('#session').isHidden(), 'no log out control');
  const code = await lp.evaluate(() => fetch('api/v1/chronicles').then((r) => r.status));
  check(code === 401, 'the API after log out: HTTP ' + code);
  // Another page asked for waits behind the login.
  await lp.evaluate(() => { location.hash = '#/logs?c=logs'; });
  await untilIn(lp, () => location.hash.startsWith('#/logs'));
  check(await lp.locator('#login-token').count() === 1 && await lp.locator('#log-list').count() === 0, 'logs page shown without a session');
});

await step('another origin cannot log the browser in (login CSRF)', async () => {
  const other = await ctx.newPage();
  await other.goto(env('UI_ELSEWHERE'));
  // A "simple" cross-origin POST, which a browser sends without asking:
  // the server must refuse it (web_test.go checks its cross_origin count).
  const outcome = await other.evaluate(([url, tok]) => fetch(url + 'api/v1/session', { method: 'POST', mode: 'no-cors',
    headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ token: tok }) }).then(() => 'sent', (e) => 'not sent: ' + e.message), [LOCKED, READ]);
  await other.close();
  check(outcome === 'sent', 'the browser sent the request: ' + outcome);
  check(!(await sessionCookie()), 'a cross-origin POST set the session cookie');
});

await step('no token in a URL or header; only the login POSTs carry one', async () => {
  check(lockedRequests.length > 10, 'requests seen: ' + lockedRequests.length);
  for (const r of lockedRequests) {
    check(!r.authorization, 'an Authorization header on ' + r.method + ' ' + r.url);
    for (const s of secrets) {
      check(!r.url.includes(s), 'a token in the URL of ' + r.method + ' ' + r.url.replaceAll(s, '<token>'));
      if (r.body.includes(s)) check(r.method === 'POST' && new URL(r.url).pathname === '/api/v1/session', 'a token in the body of ' + r.method + ' ' + r.url);
    }
  }
  check(lockedRequests.some((r) => r.body.includes(READ)), 'the login POST was seen');
  check(!lockedProblems.length, lockedProblems.join('\n'));
  await lp.close();
});

await step('every API call carried the URL prefix', async () => {
  check(apiPaths.length > 10, 'API calls seen: ' + apiPaths.length);
  const bad = apiPaths.filter((p) => !p.startsWith(PREFIX + '/api/v1/'));
  check(!bad.length, 'calls without the prefix: ' + bad.slice(0, 5));
});

await step('no script errors', async () => {
  // Network failures during the restart step are expected; script errors are not.
  const real = problems.filter((p) => !/Failed to load resource: (.*404|net::ERR_)/.test(p));
  check(!real.length, real.join('\n'));
});

await ctx.close();
console.log(failed ? `${failed} step(s) failed` : 'all steps passed');
process.exit(failed ? 1 : 0);

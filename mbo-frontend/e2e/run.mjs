// End-to-end tests of the dashboard against the real `mbo serve` replaying
// ../shared/data/mbo/CLX5_mbo.dbn, in Debian's Chromium driven by playwright-core (which never
// downloads a browser here: it is given the system one). Then the performance figures.
//
//   node e2e/run.mjs               tests, then measurements
//   node e2e/run.mjs --bench-only  measurements only
//
// The venues view is tested against the same server with a loopback crypto venue: `mbo
// venue-sim` replays a Kraken recording over a local WebSocket and `mbo serve --venues kraken`
// connects to it.
//
// Environment: MBO_BIN (default ../mbo-backend/target/debug/mbo), MBO_DATA (default
// ../../shared/data/mbo relative to this package), MBO_CRYPTO (default: crypto/ beside
// MBO_DATA), CHROMIUM (default /usr/bin/chromium).
// Screenshots go to test-results/ (git-ignored). Exit code 1 on any failure; nothing is skipped.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { jsSize } from '../scripts/js-size.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '..');
const repo = resolve(pkg, '..');
const MBO = process.env.MBO_BIN ?? join(repo, 'mbo-backend/target/debug/mbo');
const DATA = process.env.MBO_DATA ?? resolve(repo, '../shared/data/mbo');
const CLX5 = join(DATA, 'CLX5_mbo.dbn');
const CRYPTO = process.env.MBO_CRYPTO ?? resolve(DATA, '../crypto');
const KRAKEN = join(CRYPTO, 'kraken/python-kraken-sdk_orderbook-v2.json');
const CRYPTO_SYMBOL = 'BTC-USD';
/** Levels per side of the venues view's consolidated ladder (VENUES_DEPTH in venues.svelte.ts). */
const VENUES_DEPTH = 12;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const BUILD = join(pkg, 'build');
const OUT = join(pkg, 'test-results');
const SYMBOL = 'CLX5';
const benchOnly = process.argv.includes('--bench-only');

const T = {
	ladder: '[data-testid="ladder"]',
	row: '[data-testid="ladder-row"]',
	queue: '[data-testid="queue"]',
	queueOrder: '[data-testid="queue-order"]',
	playPause: '[data-testid="play-pause"]',
	timeline: '[data-testid="timeline"]',
	conn: '[data-testid="badge-connection"]',
	help: '[data-testid="help"]',
	heatmap: '[data-testid="heatmap"]',
	perf: '[data-testid="perf"]'
};

function fail(msg) {
	console.error(`e2e: ${msg}`);
	process.exit(1);
}

// ---- prerequisites: said loudly, never skipped -------------------------------------------------
function ensureChromium() {
	if (existsSync(CHROMIUM)) return;
	if (process.getuid?.() === 0) {
		console.log(`e2e: ${CHROMIUM} missing: apt-get install -y chromium`);
		const r = spawnSync('sh', ['-c', 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium'], {
			stdio: 'inherit'
		});
		if (r.status === 0 && existsSync(CHROMIUM)) return;
		fail('installing chromium failed');
	}
	fail(`${CHROMIUM} is missing and this is not root: run \`sudo apt-get install -y chromium\` (or set CHROMIUM)`);
}
if (!existsSync(MBO)) fail(`no server binary at ${MBO}: run \`cd mbo-backend && cargo build --locked -p mbo-server\``);
if (!existsSync(CLX5)) fail(`missing ${CLX5} (the real Databento files live in ../shared/data/mbo; see README)`);
if (!existsSync(KRAKEN)) fail(`missing ${KRAKEN} (the crypto recordings live in ../shared/data/crypto; see README)`);
if (!existsSync(join(BUILD, 'index.html'))) fail('no build/index.html: run `npm run build` first');
ensureChromium();
mkdirSync(OUT, { recursive: true });

// ---- the server --------------------------------------------------------------------------------
async function freePort() {
	return new Promise((res, rej) => {
		const s = createServer();
		s.once('error', rej);
		s.listen(0, '127.0.0.1', () => {
			const a = s.address();
			s.close(() => res(typeof a === 'object' && a ? a.port : 0));
		});
	});
}

/** Starts `mbo serve` and waits for /health/ready. */
async function startServer(port, extra) {
	const args = ['serve', '--bind', `127.0.0.1:${port}`, '--static-dir', BUILD, '--no-db', '--log', 'warn', ...extra];
	const child = spawn(MBO, args, { stdio: ['ignore', 'ignore', 'pipe'] });
	let stderr = '';
	child.stderr.on('data', (d) => (stderr += d));
	const base = `http://127.0.0.1:${port}`;
	const until = Date.now() + 20_000;
	while (Date.now() < until) {
		if (child.exitCode !== null) fail(`mbo serve exited (${child.exitCode}): ${stderr}`);
		try {
			const r = await fetch(`${base}/health/ready`);
			if (r.ok) return { child, base };
		} catch {
			/* not listening yet */
		}
		await sleep(50);
	}
	child.kill('SIGKILL');
	fail(`mbo serve not ready after 20 s: ${stderr}`);
}

function stop(child, signal = 'SIGTERM') {
	return new Promise((res) => {
		if (child.exitCode !== null || child.signalCode !== null) return res();
		child.once('exit', () => res());
		child.kill(signal);
	});
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Fetches JSON; integers of 16+ digits (ns timestamps, u64 ids) come back as exact strings. */
async function json(url, init) {
	const r = await fetch(url, init);
	const text = await r.text();
	if (!r.ok) throw new Error(`${url}: ${r.status} ${text}`);
	// The server's strings never hold a ':' or ',' followed by 16 digits, so this cannot
	// touch one; the app itself uses a full scanner (src/lib/json.ts).
	return JSON.parse(text.replace(/([:,[]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"'));
}

/** Polls `fn` until it returns a truthy value; throws with `what` after `ms`. */
async function until(what, fn, ms = 10_000) {
	const end = Date.now() + ms;
	let last;
	while (Date.now() < end) {
		try {
			last = await fn();
			if (last) return last;
		} catch (e) {
			last = e;
		}
		await sleep(50);
	}
	throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

// ---- the browser -------------------------------------------------------------------------------
async function launch() {
	return chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: [
			'--headless',
			'--no-sandbox',
			'--disable-gpu',
			'--disable-background-networking',
			'--disable-component-update',
			'--disable-sync',
			'--no-first-run'
		]
	});
}

async function newPage(browser, errors, ignore) {
	const page = await browser.newPage({ viewport: { width: 1440, height: 900 }, colorScheme: 'dark' });
	page.on('console', (msg) => {
		if (msg.type() === 'error' && !ignore()) errors.push(`console: ${msg.text()}`);
	});
	page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
	return page;
}

/** The ladder as the page shows it: event index and levels per side (best first). */
async function ladderOf(page) {
	return page.evaluate(
		({ ladder, row }) => {
			const el = document.querySelector(ladder);
			const rows = [...document.querySelectorAll(row)].map((r) => {
				const cells = r.querySelectorAll('span');
				const side = r.getAttribute('data-side');
				const size = (side === 'B' ? cells[1] : cells[3])?.textContent?.replace(/[^0-9]/g, '') ?? '';
				const orders = (side === 'B' ? cells[0] : cells[4])?.textContent?.trim() ?? '';
				return { side, price: r.getAttribute('data-price'), size: Number(size), orders: Number(orders), best: r.hasAttribute('data-best') };
			});
			return {
				eventIndex: el?.getAttribute('data-event-index') ?? '',
				epoch: el?.getAttribute('data-epoch') ?? '',
				bids: rows.filter((r) => r.side === 'B'),
				asks: rows.filter((r) => r.side === 'A').reverse()
			};
		},
		{ ladder: T.ladder, row: T.row }
	);
}

/** First paint of the ladder (Element Timing of the best bid's price), ms after navigation start. */
async function ladderPaintMs(page) {
	return page.evaluate(
		() =>
			new Promise((res) => {
				const seen = (list) => {
					const e = list.find((x) => x.identifier === 'ladder-best-bid');
					if (e) res(e.renderTime || e.loadTime || e.startTime);
				};
				new PerformanceObserver((l) => seen(l.getEntries())).observe({ type: 'element', buffered: true });
				setTimeout(() => res(null), 5000);
			})
	);
}

// ---- tests -------------------------------------------------------------------------------------
const results = [];
async function step(name, fn) {
	const t0 = Date.now();
	try {
		await fn();
		results.push({ name, ok: true });
		console.log(`  ✓ ${name} (${Date.now() - t0} ms)`);
	} catch (e) {
		results.push({ name, ok: false });
		console.log(`  ✗ ${name}: ${e instanceof Error ? e.message : String(e)}`);
	}
}

function assert(cond, msg) {
	if (!cond) throw new Error(msg);
}

async function tests(browser) {
	const port = await freePort();
	// Loop so the replay never ends under the tests; speed 20 keeps the book moving.
	const serverArgs = ['--dbn', CLX5, '--loop', '--speed', '20'];
	let { child, base } = await startServer(port, serverArgs);
	const errors = [];
	let outage = false;
	const page = await newPage(browser, errors, () => outage);
	console.log(`e2e: mbo serve on ${base} (${CLX5})`);
	try {
		await step('dashboard loads and shows the ladder', async () => {
			await page.goto(`${base}/?symbol=${SYMBOL}`);
			await page.waitForSelector(`${T.row}[data-best]`, { timeout: 10_000 });
			const l = await ladderOf(page);
			assert(l.bids.length > 0 || l.asks.length > 0, 'no ladder rows');
			await page.screenshot({ path: join(OUT, '01-overview.png'), fullPage: true });
			// Let the views fill for a moment, then one picture of each.
			await sleep(1500);
			await page.locator(T.heatmap).screenshot({ path: join(OUT, '02-heatmap.png') });
			for (const [id, file] of [
				['ladder', '02-ladder.png'],
				['depth-chart', '02-depth-chart.png'],
				['tape', '02-tape.png'],
				['price-chart', '02-price-chart.png'],
				['perf', '02-perf.png']
			]) {
				await page.locator(`[data-testid="${id}"]`).screenshot({ path: join(OUT, file) });
			}
		});

		await step('pausing in the UI pauses the server', async () => {
			const st = await json(`${base}/api/v1/replay`);
			if (st.state !== 'playing') await json(`${base}/api/v1/replay`, post({ action: 'play' }));
			await until('UI playing', async () => (await page.getAttribute(T.playPause, 'data-state')) === 'playing');
			await page.click(T.playPause);
			await until('server paused', async () => (await json(`${base}/api/v1/replay`)).state === 'paused');
			await until('UI paused', async () => (await page.getAttribute(T.playPause, 'data-state')) === 'paused');
		});

		await step('ladder best bid/ask and levels equal /api/v1/book at the same event_index', async () => {
			const rest = await json(`${base}/api/v1/book/${SYMBOL}?depth=12`);
			const l = await until('the page at the REST event_index', async () => {
				const x = await ladderOf(page);
				return x.eventIndex === String(rest.event_index) ? x : null;
			});
			const same = (ui, api, side) => {
				assert(ui.length === api.length, `${side}: ${ui.length} rows on the page, ${api.length} from REST`);
				api.forEach((lv, i) => {
					const u = ui[i];
					assert(u.price === String(lv.price), `${side}[${i}] price ${u.price} != ${lv.price}`);
					assert(u.size === lv.size, `${side}[${i}] size ${u.size} != ${lv.size}`);
					assert(u.orders === lv.orders, `${side}[${i}] orders ${u.orders} != ${lv.orders}`);
				});
			};
			same(l.bids, rest.bids, 'bids');
			same(l.asks, rest.asks, 'asks');
			assert((l.bids[0]?.price ?? null) === (rest.best_bid ? String(rest.best_bid.price) : null), 'best bid differs');
			assert((l.asks[0]?.price ?? null) === (rest.best_ask ? String(rest.best_ask.price) : null), 'best ask differs');
			assert(l.bids[0]?.best !== false && l.asks[0]?.best !== false, 'best levels not highlighted');
			console.log(`    event_index ${rest.event_index}: bid ${rest.best_bid?.price_decimal} × ${rest.best_bid?.size}, ask ${rest.best_ask?.price_decimal} × ${rest.best_ask?.size}`);
		});

		await step('clicking a level shows its orders, matching /api/v1/book/{symbol}/level', async () => {
			const best = page.locator(`${T.row}[data-side="B"][data-best]`);
			const price = await best.getAttribute('data-price');
			await best.click();
			await page.waitForSelector(T.queueOrder, { timeout: 5000 });
			const rest = await json(`${base}/api/v1/book/${SYMBOL}/level?side=B&price=${price}`);
			await until('the queue at the REST event_index', async () => (await page.getAttribute(T.queue, 'data-event-index')) === String(rest.event_index));
			const ui = await page.$$eval(T.queueOrder, (rows) => rows.map((r) => ({ id: r.getAttribute('data-order-id'), size: Number(r.getAttribute('data-size')) })));
			const api = rest.orders.slice(0, 200).map((o) => ({ id: String(o.order_id), size: o.size }));
			assert(api.length > 0, 'REST queue is empty');
			assert(JSON.stringify(ui) === JSON.stringify(api), `queue differs: page ${JSON.stringify(ui.slice(0, 5))} REST ${JSON.stringify(api.slice(0, 5))}`);
			await page.locator(T.queue).screenshot({ path: join(OUT, '03-queue.png') });
			console.log(`    bid ${rest.price_decimal}: ${rest.order_count} orders in queue order`);
		});

		await step('seeking on the timeline moves the replay and the timeline', async () => {
			const st0 = await json(`${base}/api/v1/replay`);
			const before = Number(await page.getAttribute(T.timeline, 'data-fraction'));
			const target = before < 0.5 ? 0.75 : 0.25;
			const box = await page.locator(T.timeline).boundingBox();
			assert(box, 'no timeline');
			await page.mouse.click(box.x + box.width * target, box.y + box.height / 2);
			// A seek starts a new epoch; the server then holds (paused) the last record at or
			// before the target, which may be well before it in a quiet stretch of the file.
			const start = BigInt(st0.start_ts);
			const end = BigInt(st0.end_ts);
			const targetTs = start + ((end - start) * BigInt(Math.round(target * 1e6))) / 1_000_000n;
			// The epoch moves first, then the replay releases the records up to the target.
			const st = await until('the server at the new position', async () => {
				const s = await json(`${base}/api/v1/replay`);
				return s.epoch > st0.epoch && s.state === 'paused' && s.position_ts !== st0.position_ts ? s : null;
			});
			const pos = BigInt(st.position_ts);
			const slack = (end - start) / 100n;
			assert(pos <= targetTs + slack, `server position ${pos} after the target ${targetTs}`);
			await until('the timeline at the new position', async () => Math.abs(Number(await page.getAttribute(T.timeline, 'data-fraction')) - target) < 0.02);
			await until('the ladder in the new epoch', async () => (await ladderOf(page)).epoch === String(st.epoch));
			await page.locator('[data-testid="playback"]').screenshot({ path: join(OUT, '04-playback.png') });
			console.log(`    timeline ${before.toFixed(3)} -> ${target}; server epoch ${st0.epoch} -> ${st.epoch}, position ${st0.position_ts} -> ${st.position_ts}`);
		});

		await step('keyboard: ? opens the help, Escape closes it, Space plays', async () => {
			await page.locator('body').click({ position: { x: 5, y: 5 } });
			await page.keyboard.press('?');
			await page.waitForSelector(T.help, { timeout: 2000 });
			await page.screenshot({ path: join(OUT, '05-help.png') });
			await page.keyboard.press('Escape');
			await page.waitForSelector(T.help, { state: 'detached', timeout: 2000 });
			await page.keyboard.press(' ');
			await until('server playing', async () => (await json(`${base}/api/v1/replay`)).state === 'playing');
		});

		await step('light theme renders', async () => {
			await page.click('[data-testid="theme-button"]');
			await until('light theme', async () => (await page.evaluate(() => document.documentElement.dataset.theme)) === 'light');
			await page.screenshot({ path: join(OUT, '06-light.png'), fullPage: true });
			await page.click('[data-testid="theme-button"]');
		});

		await step('a shared link (?symbol=&t=) opens paused at its moment', async () => {
			const st0 = await json(`${base}/api/v1/replay`);
			// 20 minutes into the file: a busy stretch, so the server lands close to it.
			const t = (BigInt(st0.start_ts) + 1_200_000_000_000n).toString();
			const p2 = await newPage(page.context().browser(), errors, () => outage);
			try {
				await p2.goto(`${base}/?symbol=${SYMBOL}&t=${t}`);
				const st = await until('the server paused at the link', async () => {
					const s = await json(`${base}/api/v1/replay`);
					return s.epoch > st0.epoch && s.state === 'paused' && BigInt(s.position_ts) <= BigInt(t) && BigInt(s.position_ts) > BigInt(st0.start_ts) + 1_100_000_000_000n ? s : null;
				});
				await until('the timeline at the link', async () => (await p2.getAttribute(T.timeline, 'data-position')) === t);
				await until('the URL keeps the moment', async () => new URL(p2.url()).searchParams.get('t') === t);
				console.log(`    t=${t}: server paused at ${st.position_ts} (epoch ${st.epoch})`);
			} finally {
				await p2.close();
			}
			await json(`${base}/api/v1/replay`, post({ action: 'play' }));
		});

		await step('a crossed book (CME pre-open, the end of CLX5) is shown as is, with its badge', async () => {
			const st0 = await json(`${base}/api/v1/replay`);
			await json(`${base}/api/v1/replay`, post({ action: 'pause' }));
			await json(`${base}/api/v1/replay`, post({ action: 'seek', ts: st0.end_ts }));
			const rest = await until('a crossed book from the server', async () => {
				const b = await json(`${base}/api/v1/book/${SYMBOL}?depth=12`);
				return b.crossed && b.epoch > st0.epoch ? b : null;
			});
			await page.waitForSelector('[data-testid="badge-crossed"]', { timeout: 5000 });
			const l = await until('the page at the REST event_index', async () => {
				const x = await ladderOf(page);
				return x.eventIndex === String(rest.event_index) ? x : null;
			});
			assert(l.bids[0]?.price === String(rest.best_bid.price) && l.asks[0]?.price === String(rest.best_ask.price), 'best bid/ask differ');
			assert(BigInt(l.bids[0].price) >= BigInt(l.asks[0].price), 'the page does not show the book crossed');
			await page.screenshot({ path: join(OUT, '07-crossed.png') });
			await json(`${base}/api/v1/replay`, post({ action: 'play' }));
		});

		await step('killing the server shows reconnecting; restarting brings live data back', async () => {
			outage = true;
			await stop(child, 'SIGKILL');
			await until('the reconnecting badge', async () => (await page.getAttribute(T.conn, 'data-state')) === 'reconnecting', 10_000);
			await page.screenshot({ path: join(OUT, '08-reconnecting.png') });
			({ child, base } = await startServer(port, serverArgs));
			await until('the live badge again', async () => (await page.getAttribute(T.conn, 'data-state')) === 'open', 20_000);
			const first = await ladderOf(page);
			await until('the ladder moving again', async () => {
				const l = await ladderOf(page);
				return l.eventIndex !== '' && l.eventIndex !== first.eventIndex;
			}, 20_000);
			outage = false;
			await page.screenshot({ path: join(OUT, '09-reconnected.png') });
		});

		await step('without venues: no venues link; /venues/ says how to start them', async () => {
			const v = await json(`${base}/api/v1/venues`);
			assert(Array.isArray(v.venues) && v.venues.length === 0, `this server runs venues: ${JSON.stringify(v.venues)}`);
			assert((await page.locator('[data-testid="venues-link"]').count()) === 0, 'a venues link without venues');
			const p2 = await newPage(page.context().browser(), errors, () => outage);
			try {
				await p2.goto(`${base}/venues`);
				await p2.waitForSelector('[data-testid="venues-hint"]', { timeout: 10_000 });
				const hint = await p2.textContent('[data-testid="venues-hint"]');
				assert(hint?.includes('mbo serve --venues kraken,coinbase --symbols BTC-USD'), `hint: ${hint}`);
				assert(new URL(p2.url()).pathname === '/venues/', `venues page at ${p2.url()}`);
			} finally {
				await p2.close();
			}
		});

		await step('no console errors (outside the deliberate outage)', async () => {
			assert(errors.length === 0, errors.join('\n'));
		});
	} finally {
		await page.close();
		await stop(child);
	}
}

function post(body) {
	return { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

// ---- the venues view ---------------------------------------------------------------------------

/** Starts `mbo venue-sim` on the Kraken recording; resolves with its first line's URLs. */
function startVenueSim() {
	const args = ['venue-sim', '--venue', 'kraken', KRAKEN, '--price-precision', '1', '--qty-precision', '8', '--rate', '200', '--loop'];
	const child = spawn(MBO, args, { stdio: ['ignore', 'pipe', 'pipe'] });
	let stderr = '';
	child.stderr.on('data', (d) => (stderr += d));
	return new Promise((res, rej) => {
		let out = '';
		let done = false;
		const timer = setTimeout(() => {
			done = true;
			child.kill('SIGKILL');
			rej(new Error(`mbo venue-sim printed no address in 10 s: ${stderr}`));
		}, 10_000);
		child.once('exit', (code) => {
			if (done) return;
			done = true;
			clearTimeout(timer);
			rej(new Error(`mbo venue-sim exited (${code}): ${stderr}`));
		});
		child.stdout.on('data', (d) => {
			out += d;
			const nl = out.indexOf('\n');
			if (nl < 0 || done) return;
			done = true;
			clearTimeout(timer);
			try {
				res({ child, info: JSON.parse(out.slice(0, nl)) });
			} catch (e) {
				rej(new Error(`mbo venue-sim's first line is not JSON: ${out.slice(0, nl)} (${e})`));
			}
		});
	});
}

/** The consolidated ladder as the page shows it (best first per side), with its event index. */
function readConsolidatedInPage() {
	const el = document.querySelector('[data-testid="consolidated"]');
	if (!el) return null;
	const rows = [...el.querySelectorAll('[data-testid="venue-row"]')].map((r) => ({
		side: r.getAttribute('data-side'),
		price: r.getAttribute('data-price'),
		size: r.getAttribute('data-size'),
		venues: [...r.querySelectorAll('[data-testid="venue-segment"]')].map((s) => [s.getAttribute('data-venue'), s.getAttribute('data-size')]),
		best: r.hasAttribute('data-best')
	}));
	return {
		eventIndex: el.getAttribute('data-event-index') ?? '',
		bids: rows.filter((r) => r.side === 'B'),
		asks: rows.filter((r) => r.side === 'A').reverse()
	};
}

/** In the page: every distinct ladder `read` returns over `ms`, by event index (read once a frame). */
function recordInPage(ms, read) {
	return new Promise((res) => {
		const seen = {};
		const end = performance.now() + ms;
		const tick = () => {
			const x = read();
			if (x && x.eventIndex !== '' && !seen[x.eventIndex]) seen[x.eventIndex] = x;
			if (performance.now() < end) requestAnimationFrame(tick);
			else res(seen);
		};
		requestAnimationFrame(tick);
	});
}

/** A REST crypto book in the same shape (venues with a zero size take no bar segment). */
function restLadder(b) {
	const side = (levels, s) =>
		levels.map((l) => ({
			side: s,
			price: String(l.price),
			size: l.size,
			venues: Object.entries(l.venues)
				.filter(([, q]) => !/^0(\.0*)?$/.test(q))
				.sort(([a], [b2]) => a.localeCompare(b2))
		}));
	return { eventIndex: String(b.event_index), bids: side(b.bids, 'B'), asks: side(b.asks, 'A') };
}

function sameLadder(ui, api) {
	for (const s of ['bids', 'asks']) {
		const u = ui[s];
		const a = api[s];
		assert(u.length === a.length, `${s}: ${u.length} rows on the page, ${a.length} from REST`);
		a.forEach((lv, i) => {
			const r = u[i];
			assert(r.price === lv.price, `${s}[${i}] price ${r.price} != ${lv.price}`);
			// Exact decimal text on both sides: no float in between.
			assert(r.size === lv.size, `${s}[${i}] size ${r.size} != ${lv.size}`);
			const uv = [...r.venues].sort(([x], [y]) => x.localeCompare(y));
			assert(JSON.stringify(uv) === JSON.stringify(lv.venues), `${s}[${i}] venues ${JSON.stringify(uv)} != ${JSON.stringify(lv.venues)}`);
		});
	}
}

async function venueTests(browser) {
	let sim;
	try {
		sim = await startVenueSim();
	} catch (e) {
		results.push({ name: 'mbo venue-sim starts', ok: false });
		console.log(`  ✗ mbo venue-sim starts: ${e instanceof Error ? e.message : String(e)}`);
		return;
	}
	const port = await freePort();
	const wsUrl = sim.info.ws_url;
	let server;
	try {
		server = await startServer(port, ['--dbn', CLX5, '--loop', '--speed', '20', '--venues', 'kraken', '--symbols', CRYPTO_SYMBOL, '--venue-url', `kraken=${wsUrl}`]);
	} catch (e) {
		await stop(sim.child);
		throw e;
	}
	const { child, base } = server;
	const errors = [];
	const page = await newPage(browser, errors, () => false);
	// The recording's channels: a tape can only fill when it holds trades.
	const recordedTrades = /"channel"\s*:\s*"trade"/.test(readFileSync(KRAKEN, 'utf8'));
	console.log(`e2e: mbo serve on ${base} with venue kraken at ${wsUrl} (${KRAKEN}; ${recordedTrades ? 'with' : 'no'} trades in the recording)`);
	try {
		await step('venues: the main view links the venues view; its instrument picker lists no crypto book', async () => {
			const list = await json(`${base}/api/v1/instruments`);
			assert(list.some((i) => i.venue != null), 'the server lists no crypto book in /api/v1/instruments');
			await page.goto(`${base}/?symbol=${SYMBOL}`);
			await page.waitForSelector('[data-testid="venues-link"]', { timeout: 10_000 });
			const options = await page.$$eval('[data-testid="symbol-picker"] option', (os) => os.map((o) => o.value));
			assert(options.includes(SYMBOL), `the picker lost ${SYMBOL}: ${options.join(', ')}`);
			assert(!options.includes(CRYPTO_SYMBOL), `the MBO picker lists the crypto book ${CRYPTO_SYMBOL}`);
			await page.click('[data-testid="venues-link"]');
			await until('the venues view', async () => new URL(page.url()).pathname === '/venues/');
			await page.waitForSelector('[data-testid="consolidated"][data-event-index]:not([data-event-index=""])', { timeout: 15_000 });
		});

		await step('venues: the kraken book shows live, and the health panel kraken live with messages increasing', async () => {
			const book = '[data-testid="venue-book"][data-venue="kraken"]';
			await until('the kraken book live', async () => (await page.getAttribute(`${book} [data-testid="venue-book-state"]`, 'data-state')) === 'live', 20_000);
			const card = '[data-testid="venue-health-card"][data-venue="kraken"]';
			await until('kraken connection live', async () => (await page.getAttribute(card, 'data-state')) === 'live', 20_000);
			const m0 = Number(await page.getAttribute(card, 'data-messages'));
			const m1 = await until('kraken messages increasing', async () => {
				const m = Number(await page.getAttribute(card, 'data-messages'));
				return m > m0 ? m : null;
			});
			const rest = await json(`${base}/api/v1/venues`);
			const k = rest.venues.find((h) => h.venue === 'kraken');
			assert(k && k.state === 'live', `REST health: kraken ${k?.state}`);
			const rate = await page.textContent(`${card} [data-metric="msgs-per-s"]`);
			console.log(`    kraken live: messages ${m0} -> ${m1} on the page (${rate} msgs/s), REST ${k.messages}, books live ${k.books_live}/${k.books}`);
		});

		await step('venues: consolidated ladder equals /api/v1/book/BTC-USD?venue=consolidated at the same event_index', async () => {
			// The book moves at the simulator's rate while the page shows one frame per 100 ms: record
			// the page's ladders and the REST books side by side for a while and compare every
			// event index seen in both.
			const ms = 4000;
			const uiP = page.evaluate(`(${recordInPage.toString()})(${ms}, ${readConsolidatedInPage.toString()})`);
			const rest = {};
			const end = Date.now() + ms;
			while (Date.now() < end) {
				const b = await json(`${base}/api/v1/book/${CRYPTO_SYMBOL}?venue=consolidated&depth=${VENUES_DEPTH}`);
				rest[String(b.event_index)] ??= b;
			}
			const ui = await uiP;
			const common = Object.keys(ui).filter((k) => rest[k]);
			console.log(`    ${Object.keys(ui).length} ladders on the page, ${Object.keys(rest).length} REST books, ${common.length} at the same event_index`);
			if (common.length > 0) {
				for (const k of common) sameLadder(ui[k], restLadder(rest[k]));
				const b = rest[common[common.length - 1]];
				const q = (x) => (x ? `${x.price_decimal} × ${x.size} (${x.venue})` : '—');
				console.log(`    event_index ${b.event_index} (${b.state}): bid ${q(b.best_bid)}, ask ${q(b.best_ask)}`);
			} else {
				// No common index (the book moved between every read): the page's best bid/ask equal
				// a REST read within a short poll instead.
				const hit = await until('the page best bid/ask equal to REST', async () => {
					const [u, b] = await Promise.all([page.evaluate(`(${readConsolidatedInPage.toString()})()`), json(`${base}/api/v1/book/${CRYPTO_SYMBOL}?venue=consolidated&depth=1`)]);
					return u?.bids[0]?.price === String(b.best_bid?.price) &&
						u?.asks[0]?.price === String(b.best_ask?.price) &&
						u?.bids[0]?.size === b.best_bid?.size &&
						u?.asks[0]?.size === b.best_ask?.size
						? b
						: null;
				});
				console.log(`    best bid/ask equal REST at event_index ${hit.event_index}`);
			}
			// What the page names as best: the REST best's venue.
			const bests = await page.$$eval('[data-testid="venue-best"]', (els) => els.map((e) => e.getAttribute('data-venue')));
			assert(bests.every((v) => v === '' || v.split(',').every((n) => n === 'kraken')), `best venues ${bests.join(', ')}`);
			const crossedRest = (await json(`${base}/api/v1/book/${CRYPTO_SYMBOL}?venue=consolidated&depth=1`)).crossed;
			if (crossedRest) await page.waitForSelector('[data-testid="venue-crossed"]', { timeout: 5000 });
		});

		await step('venues: the trade tape (one tape, venue column) fills only with trades the venue sent', async () => {
			const tape = '[data-testid="venue-tape"]';
			if (recordedTrades) {
				await page.waitForSelector(`${tape} [data-testid="venue-trade"][data-venue="kraken"]`, { timeout: 15_000 });
			} else {
				// The recording is book updates only: after a few seconds of it the tape is still empty.
				await sleep(2000);
				const n = Number(await page.getAttribute(tape, 'data-count'));
				assert(n === 0, `${n} trades on the tape from a recording without trades`);
				console.log('    the Kraken recording holds no trades: tape empty, as it should be');
			}
		});

		await step('venues: screenshots (dark, light)', async () => {
			await page.screenshot({ path: join(OUT, '11-venues.png'), fullPage: true });
			await page.locator('[data-testid="venue-health"]').screenshot({ path: join(OUT, '12-venues-health.png') });
			await page.click('[data-testid="theme-button"]');
			await until('light theme', async () => (await page.evaluate(() => document.documentElement.dataset.theme)) === 'light');
			await page.screenshot({ path: join(OUT, '13-venues-light.png'), fullPage: true });
			await page.click('[data-testid="theme-button"]');
		});

		await step('venues: no console errors', async () => {
			assert(errors.length === 0, errors.join('\n'));
		});

		await step('venues only (--no-mbo): / opens the venues view', async () => {
			const only = await startServer(await freePort(), ['--no-mbo', '--venues', 'kraken', '--symbols', CRYPTO_SYMBOL, '--venue-url', `kraken=${wsUrl}`]);
			const errs = [];
			const p2 = await newPage(browser, errs, () => false);
			try {
				const list = await json(`${only.base}/api/v1/instruments`);
				assert(list.length > 0 && list.every((i) => i.venue !== null), `instruments: ${JSON.stringify(list)}`);
				await p2.goto(`${only.base}/`);
				await until('redirect to /venues/', async () => new URL(p2.url()).pathname.replace(/\/$/, '') === '/venues');
				await until('kraken live', async () => (await p2.locator('[data-testid="venue-health"]').textContent())?.includes('live') ?? false);
				assert(errs.length === 0, errs.join('\n'));
			} finally {
				await p2.close();
				await stop(only.child);
			}
		});
	} finally {
		await page.close();
		await stop(child);
		await stop(sim.child);
	}
}

// ---- measurements ------------------------------------------------------------------------------
async function bench(browser) {
	const figures = {};
	// First meaningful paint: a fresh server and a fresh page, median of 5 loads.
	{
		const port = await freePort();
		const { child, base } = await startServer(port, ['--dbn', CLX5, '--loop', '--speed', '20']);
		const paints = [];
		for (let i = 0; i < 5; i++) {
			const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
			const page = await ctx.newPage();
			await page.goto(`${base}/?symbol=${SYMBOL}`);
			await page.waitForSelector(`${T.row}[data-best]`, { timeout: 10_000 });
			const ms = await ladderPaintMs(page);
			if (ms !== null) paints.push(ms);
			await ctx.close();
		}
		await stop(child);
		paints.sort((a, b) => a - b);
		figures.fmp = { median: paints[Math.floor(paints.length / 2)], all: paints };
	}
	// Frame times under load: the simulator's first instrument, paced so that the stream carries
	// 20 book frames/s and about 200 trades/s; 10 s of requestAnimationFrame intervals.
	{
		const port = await freePort();
		const { child, base } = await startServer(port, ['--sim-instruments', '1', '--sim-activity', process.env.BENCH_ACTIVITY ?? '1000']);
		const list = await json(`${base}/api/v1/instruments`);
		const symbol = list[0].symbol;
		const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
		await page.goto(`${base}/?symbol=${encodeURIComponent(symbol)}`);
		await page.waitForSelector(`${T.row}[data-best]`, { timeout: 10_000 });
		await page.locator(T.heatmap).scrollIntoViewIfNeeded();
		await sleep(2000);
		const r = await page.evaluate(
			(seconds) =>
				new Promise((res) => {
					const mbo = window.__mbo;
					const c0 = mbo.counters();
					const frames = [];
					let long = 0;
					try {
						new PerformanceObserver((l) => (long += l.getEntries().length)).observe({ type: 'long-animation-frame' });
					} catch {
						long = -1;
					}
					let last = 0;
					const t0 = performance.now();
					const tick = (t) => {
						if (last > 0) frames.push(t - last);
						last = t;
						if (t - t0 < seconds * 1000) requestAnimationFrame(tick);
						else {
							const c1 = mbo.counters();
							const s = (t - t0) / 1000;
							frames.sort((a, b) => a - b);
							res({
								frames: frames.length,
								p50: frames[Math.floor(frames.length * 0.5)],
								p95: frames[Math.ceil(frames.length * 0.95) - 1],
								max: frames[frames.length - 1],
								fps: frames.length / s,
								booksPerS: (c1.books - c0.books) / s,
								tradesPerS: (c1.trades - c0.trades) / s,
								appliedPerS: (c1.applied - c0.applied) / s,
								workP95: c1.workP95,
								longFrames: long
							});
						}
					};
					requestAnimationFrame(tick);
				}),
			10
		);
		await page.screenshot({ path: join(OUT, '10-under-load.png'), fullPage: true });
		await stop(child);
		figures.frames = { symbol, ...r };
	}
	figures.js = jsSize();
	console.log('\nfigures (headless Chromium, loopback):');
	const ok = (b) => (b ? 'meets target' : 'MISSES target');
	console.log(`  first meaningful paint of the ladder: ${figures.fmp.median?.toFixed(0)} ms median of ${figures.fmp.all.length} loads (${figures.fmp.all.map((x) => x.toFixed(0)).join(', ')}) — ${ok(figures.fmp.median < 1000)} (< 1000 ms)`);
	const f = figures.frames;
	console.log(
		`  frame time under load (${f.symbol}: ${f.booksPerS.toFixed(1)} book frames/s, ${f.tradesPerS.toFixed(0)} trades/s, heatmap visible): p50 ${f.p50.toFixed(1)} ms, p95 ${f.p95.toFixed(1)} ms, max ${f.max.toFixed(1)} ms, ${f.fps.toFixed(1)} fps, ${f.appliedPerS.toFixed(1)} applies/s (JS work p95 ${f.workP95.toFixed(1)} ms), long animation frames ${f.longFrames} — ${ok(f.p95 < 17)} (p95 < 17 ms)`
	);
	console.log(`  JS shipped: ${(figures.js.gzip / 1024).toFixed(1)} KB gzip (${(figures.js.raw / 1024).toFixed(1)} KB raw) — ${ok(figures.js.gzip / 1024 < 150)} (< 150 KB)`);
	return figures;
}

// ---- main --------------------------------------------------------------------------------------
const browser = await launch();
let failed = false;
try {
	if (!benchOnly) {
		console.log('e2e tests:');
		await tests(browser);
		await venueTests(browser);
		failed = results.some((r) => !r.ok);
		const passed = results.filter((r) => r.ok).length;
		console.log(`${passed}/${results.length} passed; screenshots in ${OUT}`);
		// The same summary line as cargo's, so CI's totals (.ci/run) count these tests too.
		console.log(`test result: ${failed ? 'FAILED' : 'ok'}. ${passed} passed; ${results.length - passed} failed`);
	}
	await bench(browser);
} catch (e) {
	console.error(e);
	failed = true;
} finally {
	await browser.close();
}
process.exit(failed ? 1 : 0);

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { ActionEntry, ConnectionRow, DashboardFrame, WorkerPoint } from '../feed';

/**
 * The operator dashboard: per worker, measured vs predicted CPU (p95 band),
 * memory and network; every connection's profile; the allocation log; bot and
 * scenario controls. Everything arrives over the /dashboard WebSocket.
 */

const MAX_POINTS = 180;
const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

interface WorkerCharts {
	data: { ts: number[]; cpu: (number | null)[]; pred: (number | null)[]; p95: (number | null)[]; rss: number[]; ingress: number[]; egress: number[] };
	cpu: uPlot;
	mem: uPlot;
	net: uPlot;
	header: HTMLElement;
}

const workers = new Map<string, WorkerCharts>();
const state = { frames: 0, connections: [] as ConnectionRow[], actions: 0, actionTypes: {} as Record<string, number>, predictedPoints: 0 };
(window as unknown as { dashboard: typeof state }).dashboard = state;

const axisStyle = { stroke: '#9aa4b2', grid: { stroke: '#263041', width: 1 }, ticks: { stroke: '#263041' } };
const mbps = (v: number): string => `${(v / 1e6).toFixed(2)} Mb/s`;

function chart(title: string, series: uPlot.Series[], el: HTMLElement, opts: Partial<uPlot.Options> = {}): uPlot {
	const width = Math.max(280, Math.floor(el.clientWidth || 360));
	const u = new uPlot(
		{
			title,
			width,
			height: 150,
			series: [{}, ...series],
			axes: [{ ...axisStyle }, { ...axisStyle, size: 56 }],
			legend: { live: false },
			cursor: { show: false },
			...opts,
		},
		[[], ...series.map(() => [])] as unknown as uPlot.AlignedData,
		el,
	);
	// Cards share the row: follow the card's width as workers appear and the window resizes.
	new ResizeObserver(() => {
		const w = Math.floor(el.clientWidth);
		if (w > 0 && w !== u.width) u.setSize({ width: w, height: 150 });
	}).observe(el);
	return u;
}

function workerCharts(workerId: string, pid: number): WorkerCharts {
	let w = workers.get(workerId);
	if (w) return w;
	const card = document.createElement('section');
	card.className = 'worker';
	card.dataset.worker = workerId;
	const header = document.createElement('header');
	card.append(header);
	const cpuEl = document.createElement('div');
	const memEl = document.createElement('div');
	const netEl = document.createElement('div');
	card.append(cpuEl, memEl, netEl);
	$('workers').append(card);
	header.textContent = `worker ${pid}`;
	const cpu = chart(
		'CPU % of a core: measured vs predicted (5 s ahead, p95 band)',
		[
			{ label: 'measured', stroke: '#4fc3f7', width: 2, points: { show: false } },
			{ label: 'predicted', stroke: '#ffb74d', width: 2, dash: [6, 4], spanGaps: true, points: { show: false } },
			{ label: 'p95', stroke: 'rgba(255,183,77,0.4)', width: 1, spanGaps: true, points: { show: false } },
		],
		cpuEl,
		{ bands: [{ series: [3, 2], fill: 'rgba(255,183,77,0.18)' }], scales: { y: { range: (_u, _min, max) => [0, Math.max(5, Math.ceil(max * 1.2))] } } },
	);
	const mem = chart('RSS (MiB)', [{ label: 'rss', stroke: '#81c784', width: 2, value: (_u, v) => (v == null ? '' : `${v.toFixed(1)}`) }], memEl);
	const net = chart(
		'network (Mb/s)',
		[
			{ label: 'ingress', stroke: '#ba68c8', width: 2 },
			{ label: 'egress', stroke: '#f06292', width: 2 },
		],
		netEl,
	);
	w = { data: { ts: [], cpu: [], pred: [], p95: [], rss: [], ingress: [], egress: [] }, cpu, mem, net, header };
	workers.set(workerId, w);
	return w;
}

function push(w: WorkerCharts, p: WorkerPoint): void {
	const d = w.data;
	if (d.ts.length > 0 && p.ts / 1000 <= d.ts.at(-1)!) return;
	d.ts.push(p.ts / 1000);
	d.cpu.push(p.cpuPct);
	d.pred.push(p.predictedPct);
	if (p.predictedPct !== null) state.predictedPoints++;
	d.p95.push(p.predictedP95Pct);
	d.rss.push(p.rssBytes / 2 ** 20);
	d.ingress.push(p.ingressBps / 1e6);
	d.egress.push(p.egressBps / 1e6);
	for (const arr of Object.values(d)) if (arr.length > MAX_POINTS) arr.shift();
}

function redraw(w: WorkerCharts): void {
	const d = w.data;
	w.cpu.setData([d.ts, d.cpu, d.pred, d.p95] as uPlot.AlignedData);
	w.mem.setData([d.ts, d.rss] as uPlot.AlignedData);
	w.net.setData([d.ts, d.ingress, d.egress] as uPlot.AlignedData);
}

const fmt = (v: number | null | undefined, digits = 1): string => (v == null ? '–' : v.toFixed(digits));

function distribution(c: ConnectionRow): string {
	return Object.entries(c.distribution)
		.filter(([, v]) => (v ?? 0) > 0.005)
		.map(([k, v]) => `<span class="dt dt-${k}" style="flex:${v}">${k} ${Math.round((v ?? 0) * 100)}%</span>`)
		.join('');
}

function renderConnections(rows: ConnectionRow[], pidOf: Map<string, number>): void {
	const html: string[] = [];
	for (const c of rows.sort((a, b) => b.recvBitrateBps + b.sendBitrateBps - (a.recvBitrateBps + a.sendBitrateBps))) {
		html.push(
			`<tr class="conn" data-transport="${c.transportId}"><td colspan="2"><b>${escapeHtml(c.label)}</b> <small>${c.transportType} · worker ${pidOf.get(c.workerId) ?? '?'}</small></td>` +
				`<td colspan="3"><div class="dist">${distribution(c)}</div></td><td colspan="2">↓ ${mbps(c.recvBitrateBps)} ↑ ${mbps(c.sendBitrateBps)}</td><td colspan="4"></td></tr>`,
		);
		for (const s of c.streams) {
			const res = s.width && s.height ? `${Math.round(s.width)}×${Math.round(s.height)}` : '–';
			html.push(
				`<tr class="stream" data-stream="${s.streamId}" data-codec="${s.mimeType ?? ''}" data-resolution="${res}" data-layers="${s.activeLayers}">` +
					`<td>${s.entity}</td><td>${s.dataType}</td><td>${s.mimeType ?? '–'}</td><td>${mbps(s.bitrateBps)}</td><td>${fmt(s.packetRate, 0)} pkt/s</td>` +
					`<td>${s.activeLayers}/${s.layers}</td><td class="res">${res} @ ${fmt(s.fps, 0)} fps</td>` +
					`<td>${fmt(s.complexity, 2)}</td><td>${fmt(s.cv, 2)} / ${fmt(s.burstiness, 2)}</td><td>${fmt(s.entropy, 2)}</td><td>${fmt(s.lossFraction * 100, 1)}%</td></tr>`,
			);
		}
	}
	$('connections').innerHTML = html.join('') || '<tr><td colspan="11" class="empty">no connections yet: open the room page or add bots</td></tr>';
}

function escapeHtml(s: string): string {
	return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Outcomes of the safety guard that held an action back. */
const BLOCKED = new Set(['cooldown', 'hysteresis', 'restoreHold', 'rateLimited']);

/** Actions counted so far per row id: a folded row's count grows, and only the growth is new. */
const countedOfRow = new Map<number, number>();

const signed = (v: number | null): string => (v == null ? '–' : `${v > 0 ? '+' : ''}${v.toFixed(2)}`);

/** Adds rows, or updates those already shown (folded into, or measured since). */
function upsertActions(actions: ActionEntry[], pidOf: Map<string, number>): void {
	const log = $('actions');
	for (const a of actions) {
		let row = log.querySelector<HTMLTableRowElement>(`tr[data-action="${a.id}"]`);
		if (!row) {
			row = document.createElement('tr');
			row.dataset.action = String(a.id);
			log.prepend(row);
		}
		row.className = `outcome-${a.outcome}${BLOCKED.has(a.outcome) ? ' blocked' : ''}`;
		row.dataset.type = a.type;
		row.dataset.count = String(a.count);
		const worker = (id: string): string => String(pidOf.get(id) ?? id.slice(0, 8));
		const measured = a.measuredAfterPct == null ? '…' : `${fmt(a.measuredBeforePct)} → ${fmt(a.measuredAfterPct)}% (${signed(a.measuredChangePct)})`;
		row.innerHTML =
			`<td>${new Date(a.lastTs).toLocaleTimeString()}</td><td><b>${a.type}</b>${a.count > 1 ? ` <span class="count">×${a.count}</span>` : ''}</td>` +
			`<td>${worker(a.workerId)}${a.toWorkerId ? ` → ${worker(a.toWorkerId)}` : ''}</td><td>${a.outcome}</td>` +
			`<td>${fmt(a.predictedBeforePct)} → ${fmt(a.predictedAfterPct)}%</td><td class="saving">${signed(-a.predictedSavingPct)}</td>` +
			`<td class="measured">${measured}</td><td class="why">${escapeHtml(a.reason)}</td>`;
		const added = a.count - (countedOfRow.get(a.id) ?? 0);
		countedOfRow.set(a.id, a.count);
		state.actions += added;
		state.actionTypes[a.type] = (state.actionTypes[a.type] ?? 0) + added;
	}
	while (log.children.length > 100) log.lastElementChild?.remove();
	$('action-count').textContent = String(state.actions);
}

async function post(path: string, method: string, body?: unknown): Promise<void> {
	const res = await fetch(path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
	const json = (await res.json()) as { error?: string };
	$('control-status').textContent = json.error ?? '';
}

function setupControls(scenarios: string[], dryRun: boolean): void {
	const select = $<HTMLSelectElement>('scenario');
	select.innerHTML = scenarios.map((s) => `<option${s === 'bursty-joins' ? ' selected' : ''}>${s}</option>`).join('');
	$('add-bot').onclick = () => void post('/api/bots', 'POST');
	$('remove-bot').onclick = () => void post('/api/bots', 'DELETE');
	$('start-scenario').onclick = () => void post('/api/scenario', 'POST', { name: select.value });
	$('stop-scenario').onclick = () => void post('/api/scenario', 'DELETE');
	const hide = $<HTMLInputElement>('hide-blocked');
	document.body.classList.toggle('hide-blocked', hide.checked);
	hide.onchange = () => document.body.classList.toggle('hide-blocked', hide.checked);
	const dry = $<HTMLInputElement>('dry-run');
	dry.checked = dryRun;
	dry.onchange = () => void post('/api/allocation', 'POST', { dryRun: dry.checked });
}

function connect(): void {
	const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/dashboard`);
	const pidOf = new Map<string, number>();
	ws.onmessage = (event) => {
		const msg = JSON.parse(String(event.data)) as
			| (DashboardFrame & { dryRun: boolean })
			| { type: 'history'; workers: Array<{ workerId: string; pid: number; points: WorkerPoint[] }>; actions: ActionEntry[]; scenarios: string[]; dryRun: boolean };
		if (msg.type === 'history') {
			setupControls(msg.scenarios, msg.dryRun);
			for (const w of msg.workers) {
				pidOf.set(w.workerId, w.pid);
				const charts = workerCharts(w.workerId, w.pid);
				for (const p of w.points) push(charts, p);
				redraw(charts);
			}
			upsertActions(msg.actions, pidOf);
			return;
		}
		state.frames++;
		for (const w of msg.workers) {
			pidOf.set(w.workerId, w.pid);
			const charts = workerCharts(w.workerId, w.pid);
			push(charts, w.point);
			redraw(charts);
			const c = w.counts;
			charts.header.innerHTML =
				`<b>worker ${w.pid}</b> <span class="big">${w.point.cpuPct.toFixed(1)}%</span> ` +
				(w.forecast ? `<span class="pred">→ ${w.forecast.mean.toFixed(1)}% (p95 ${w.forecast.p95.toFixed(1)}%) in 5 s</span> ` : '') +
				`<small>${c.transports} transports · ${c.producers} producers · ${c.consumers} consumers · ${c.dataProducers + c.dataConsumers} data · served by ${escapeHtml(w.predictor ?? '–')}</small>`;
		}
		state.connections = msg.connections;
		renderConnections(msg.connections, pidOf);
		upsertActions(msg.actions, pidOf);
		const b = msg.bots;
		$('bot-status').textContent = `${b.bots} bots${b.scenario ? ` · scenario ${b.scenario.name} ${b.scenario.elapsedS}s, ${b.scenario.peers} peers` : ''}`;
		$('mode').textContent = msg.dryRun ? 'dry run' : 'live';
		$('updated').textContent = new Date(msg.ts).toLocaleTimeString();
	};
	ws.onclose = () => {
		$('updated').textContent = 'disconnected, retrying…';
		setTimeout(connect, 2000);
	};
}

connect();

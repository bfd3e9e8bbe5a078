/**
 * `npm run demo -- --hosts 3`: N SFU hosts on this machine, each a process in its own
 * network namespace with its own address (test/support/netns.ts), one shared influxd on
 * the bridge, and an operator page at http://127.0.0.1:3000/ showing every host's workers
 * (measured CPU, predicted p95, headroom, rooms), the redirects between hosts and the rooms'
 * cross-host pipe links; "add bot" joins a replay bot through a chosen host (it follows a
 * redirect) from the root namespace over real UDP. Needs root (`ip netns`). Ctrl-C removes
 * namespaces, processes and the database directory. DEMO_PORT moves the page off 3000.
 */
import { createServer } from 'node:http';
import { z } from 'zod';
import { Influxd } from '../../test/support/influxd';
import { NetnsCluster, startHostProcess } from '../../test/support/netns';
import { ReplayClients } from '../../test/support/clusterClient';

export const launchOptionsSchema = z.object({
	hosts: z.int().min(2).max(8),
	workersPerHost: z.int().min(1).max(8).default(2),
	/** Worker capacity (% of a core) per host, in order; the last applies to the rest. Small values make a laptop reach the limits. */
	capacityPct: z.array(z.number().gt(0).max(100)).min(1).default([5, 25]),
	port: z.int().min(1).max(65535).default(3000),
});
export type LaunchOptions = z.input<typeof launchOptionsSchema>;

const botRequest = z.object({ host: z.string().min(1).max(16), room: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/) });

export async function launchCluster(input: LaunchOptions): Promise<{ url: string; close(): Promise<void> }> {
	const options = launchOptionsSchema.parse(input);
	if (!NetnsCluster.available()) throw new Error('the multi-host demo needs root and `ip netns` (network namespaces)');
	const net = NetnsCluster.create(options.hosts);
	let influxd: Influxd | undefined;
	let clients: ReplayClients | undefined;
	try {
		influxd = await Influxd.create(net.gatewayIp);
		const capacity = (i: number): number => options.capacityPct[Math.min(i, options.capacityPct.length - 1)]!;
		await Promise.all(
			net.hosts.map((h, i) =>
				startHostProcess(net, h.name, { influxUrl: influxd!.url, database: 'foresight', workers: options.workersPerHost, capacityPct: capacity(i), reportIntervalMs: 1000, silentAfterMs: 3000 }),
			),
		);
		clients = new ReplayClients(net.gatewayIp, new Map(net.hosts.map((h) => [h.name, `http://${h.ip}:3000`])));
	} catch (err) {
		clients?.close();
		await net.destroy();
		await influxd?.destroy();
		throw err;
	}
	const c = clients;
	let nextBot = 1;
	const server = createServer((req, res) => {
		const reply = (status: number, value: unknown, type = 'application/json'): void => {
			res.writeHead(status, { 'content-type': type });
			res.end(type === 'application/json' ? JSON.stringify(value) : String(value));
		};
		const path = new URL(req.url ?? '/', 'http://x').pathname;
		if (req.method === 'GET' && path === '/') return reply(200, PAGE, 'text/html; charset=utf-8');
		if (req.method === 'GET' && path === '/api/state') {
			void Promise.all(net.hosts.map((h) => c.health(h.name).then((health) => ({ host: h.name, ip: h.ip, health }), (err: unknown) => ({ host: h.name, ip: h.ip, error: String(err) })))).then((hosts) =>
				reply(200, { hosts }),
			);
			return;
		}
		if (req.method === 'POST' && path === '/api/bots') {
			let body = '';
			req.on('data', (b: Buffer) => (body = (body + b.toString()).slice(0, 4096)));
			req.on('end', () => {
				let parsed: z.infer<typeof botRequest>;
				try {
					parsed = botRequest.parse(JSON.parse(body));
				} catch {
					return reply(400, { error: 'expected {"host": "h1", "room": "r1"}' });
				}
				c.join(`bot${nextBot++}`, parsed.room, parsed.host).then(
					(joined) => reply(200, joined),
					(err: unknown) => reply(409, { error: err instanceof Error ? err.message : String(err) }),
				);
			});
			return;
		}
		reply(404, { error: 'not found' });
	});
	try {
		await new Promise<void>((resolve, reject) => {
			server.once('error', reject);
			server.listen(options.port, '127.0.0.1', () => resolve());
		});
	} catch (err) {
		c.close();
		await net.destroy();
		await influxd!.destroy();
		throw err;
	}
	return {
		url: `http://127.0.0.1:${options.port}/`,
		async close() {
			server.close();
			c.close();
			await net.destroy();
			await influxd!.destroy();
		},
	};
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>Foresight cluster</title>
<style>body{font:14px system-ui;margin:1em}table{border-collapse:collapse;margin:.3em 0 1em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}.h{display:inline-block;vertical-align:top;margin-right:2em}.stale{color:#b00}</style>
<h1>Foresight cluster</h1>
<p>Add a replay bot through host <select id=h></select> to room <input id=r value=r1 size=6> <button id=add>add bot</button> <span id=msg></span></p>
<div id=hosts></div><h2>Redirects between hosts</h2><table id=red></table>
<script>
const esc=(s)=>String(s).replace(/[&<>"]/g,(c)=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
async function tick(){const s=await (await fetch('/api/state')).json();const sel=document.getElementById('h');if(!sel.options.length)for(const h of s.hosts)sel.add(new Option(h.host,h.host));
let html='';const reds=[];for(const h of s.hosts){html+='<div class=h><h2>'+esc(h.host)+' <small>'+esc(h.ip)+'</small></h2>';if(h.error){html+='<p class=stale>down: '+esc(h.error)+'</p></div>';continue}const x=h.health;
html+='<p>'+(x.cluster.stale?'<b class=stale>view stale</b> ':'view fresh ')+'· bots '+x.bots.length+' · sees '+x.cluster.hosts.map((o)=>esc(o.hostId)+(o.live?'':' (silent)')).join(', ')+'</p>';
html+='<table><tr><th>worker<th>cpu %<th>p95 % (max)<th>headroom %<th>rooms';for(const w of x.workers)html+='<tr><td>'+esc(w.workerId)+'<td>'+w.cpuPct.toFixed(2)+'<td>'+Math.max(0,...w.p95.map((p)=>p.p95Pct)).toFixed(2)+'<td>'+w.headroomPct.toFixed(2)+'<td>'+esc(w.rooms.join(' '));
html+='</table><table><tr><th>room<th>pipe to<th>sent<th>received';for(const l of x.links)html+='<tr><td>'+esc(l.roomId)+'<td>'+esc(l.hostId)+'<td>'+l.sent+'<td>'+l.received;html+='</table></div>';for(const r of x.redirects)reds.push({from:h.host,...r})}
document.getElementById('hosts').innerHTML=html;reds.sort((a,b)=>b.ts-a.ts);document.getElementById('red').innerHTML='<tr><th>time<th>peer<th>room<th>from<th>to<th>why'+reds.slice(0,30).map((r)=>'<tr><td>'+new Date(r.ts).toLocaleTimeString()+'<td>'+esc(r.peerId)+'<td>'+esc(r.roomId)+'<td>'+esc(r.from)+'<td>'+esc(r.target)+'<td style="text-align:left">'+esc(r.reason)).join('')}
document.getElementById('add').onclick=async()=>{const r=await fetch('/api/bots',{method:'POST',body:JSON.stringify({host:document.getElementById('h').value,room:document.getElementById('r').value})});document.getElementById('msg').textContent=JSON.stringify(await r.json())};
setInterval(()=>tick().catch(()=>{}),1000);tick();
</script>`;

import pino from 'pino';
import { InfluxClusterChannel } from '../../plugin/cluster/influxChannel';
import type { HostReport } from '../../plugin/cluster/types';
import { parseOptions } from '../../plugin/config';
import { InfluxStore } from '../../plugin/store/influxStore';

/** The shared view on the real InfluxDB 1.6.7 the test run starts (globalSetup). */
const url = process.env.INFLUX_URL;
if (!url) throw new Error('INFLUX_URL is not set: run through jest (globalSetup starts influxd)');
const log = pino({ level: 'silent' });

function report(hostId: string, ts: number, seq: number, headroomPct = 40): HostReport {
	return {
		hostId,
		endpoint: `ws://${hostId}:3000/ws`,
		ts,
		seq,
		workers: [{ workerId: '1234', capacityPct: 100, cpuPct: 20, p95: [{ horizonS: 5, p95Pct: 30 }, { horizonS: 30, p95Pct: 42 }], headroomPct, rooms: ['room "a", b=c'] }],
		rooms: { 'room "a", b=c': 3 },
	};
}

test('hosts publish and read each other through InfluxDB; malformed records are skipped', async () => {
	const influx = parseOptions({ influx: { url, database: `cluster_${Date.now()}` } }).influx!;
	const store = await InfluxStore.open({ ...influx, logger: log });
	const a = new InfluxClusterChannel(influx, log);
	const b = new InfluxClusterChannel(influx, log);
	try {
		const now = Date.now();
		// Nothing written yet: an empty view, not an error.
		expect(await a.read(now - 60_000, now)).toEqual({ reports: [], reservations: [] });
		await a.publish(report('host-a', now - 2000, 1, 10));
		await a.publish(report('host-a', now - 1000, 2, 12));
		await b.publish(report('host-b', now - 500, 7));
		// Something else with write access wrote garbage for a third host.
		await fetch(`${url}/write?db=${influx.database}&rp=raw&precision=ms`, { method: 'POST', body: `cluster_host,host=evil report="{\\"hostId\\":1}" ${now}` });
		const state = await b.read(now - 60_000, now);
		expect(state.reports.map((r) => r.hostId).sort()).toEqual(['host-a', 'host-b']);
		expect(state.reports.find((r) => r.hostId === 'host-a')).toEqual(report('host-a', now - 1000, 2, 12));
		// Reports older than the window are not read.
		expect((await b.read(now - 700, now)).reports.map((r) => r.hostId)).toEqual(['host-b']);

		// Two reservations of one host on one target in the same millisecond both stand; expired ones are not returned.
		const base = { fromHost: 'host-a', targetHost: 'host-b', roomId: 'r', peerId: 'p', costPct: 3, createdAt: now };
		await a.reserve({ ...base, id: 'r1', expiresAt: now + 5000 });
		await a.reserve({ ...base, id: 'r2', expiresAt: now + 5000 });
		await a.reserve({ ...base, id: 'r3', expiresAt: now - 1 });
		const open = (await b.read(now - 60_000, now)).reservations;
		expect(open.map((r) => r.id).sort()).toEqual(['r1', 'r2']);
	} finally {
		await a.close();
		await b.close();
		await store.close();
	}
});

test('an unreachable InfluxDB rejects reads and publishes (the member marks its view stale)', async () => {
	const influx = parseOptions({ influx: { url: 'http://127.0.0.1:9', database: 'x' } }).influx!;
	const c = new InfluxClusterChannel(influx, log);
	await expect(c.read(0, Date.now())).rejects.toMatchObject({ code: 'ECONNREFUSED' });
	await expect(c.publish(report('h', Date.now(), 1))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
	await c.close();
});

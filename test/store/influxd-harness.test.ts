import { readFileSync } from 'node:fs';
import { InfluxDB } from 'influx';
import { Influxd } from '../support/influxd';

/** Splits `influxd config` output into "[section]" → body ('' for the top level). */
function configSections(config: string): Map<string, string> {
	const sections = new Map<string, string>();
	let name = '';
	for (const line of config.split('\n')) {
		if (/^\[/.test(line)) name = line.trim();
		else sections.set(name, `${sections.get(name) ?? ''}${line}\n`);
	}
	return sections;
}

/** The throwaway influxd the store tests rely on is a real server, configured as the harness says. */

test('the run-wide influxd behind INFLUX_URL is a live influxd process that stores and returns a point', async () => {
	const url = new URL(process.env.INFLUX_URL!);
	const pid = Number(process.env.FORESIGHT_TEST_INFLUXD_PID);
	if (Number.isInteger(pid) && pid > 0) {
		expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).toMatch(/influxd$/);
	}
	const ping = await fetch(`${url.origin}/ping`);
	expect(ping.status).toBe(204);
	expect(ping.headers.get('x-influxdb-version')).toMatch(/^1\./);

	const db = `harness_${process.pid}`;
	const influx = new InfluxDB({ host: url.hostname, port: Number(url.port), database: db });
	await influx.createDatabase(db);
	try {
		const ts = Date.now() - 5000;
		await influx.writePoints([{ measurement: 'probe', tags: { host: 'a b' }, fields: { value: 41.5, note: 'x"y' }, timestamp: ts }], { precision: 'ms' });
		const rows = await influx.query<{ value: number; note: string; host: string }>('SELECT * FROM probe WHERE host = $host', {
			placeholders: { host: 'a b' },
			precision: 'ms',
		});
		expect(rows).toHaveLength(1);
		expect(rows[0]).toMatchObject({ value: 41.5, note: 'x"y', host: 'a b' });
		expect(rows[0]!.time.getTime()).toBe(ts);
	} finally {
		await influx.dropDatabase(db);
	}
});

test("an own instance's config took effect: reporting disabled, loopback-only binds, and it restarts on its data", async () => {
	const influxd = await Influxd.create();
	try {
		const config = influxd.effectiveConfig();
		// influxd 1.6 prints the inverse key: `reporting-disabled = true` in the file shows as `reporting-enabled = false`.
		expect(config).toMatch(/^(reporting-disabled = true|reporting-enabled = false)$/m);
		const sections = configSections(config);
		expect(sections.get('')).toContain(`bind-address = "127.0.0.1:${influxd.rpcPort}"`);
		expect(sections.get('[http]')).toContain(`bind-address = "127.0.0.1:${influxd.httpPort}"`);
		expect(sections.get('[continuous_queries]')).toMatch(/run-interval = "1s"/);
		// Every other listener that is not on loopback is a disabled service.
		for (const [name, body] of sections) {
			if (/bind-address = "(?!127\.0\.0\.1:)/.test(body)) expect(`${name}: ${/^\s*enabled = (\w+)/m.exec(body)?.[1]}`).toBe(`${name}: false`);
		}

		const influx = new InfluxDB({ host: '127.0.0.1', port: influxd.httpPort, database: 'h' });
		await influx.createDatabase('h');
		await influx.writePoints([{ measurement: 'm', fields: { v: 7 }, timestamp: 1_700_000_000_000 }], { precision: 'ms' });
		const firstPid = influxd.pid;
		await influxd.stop();
		await influxd.start();
		expect(influxd.pid).not.toBe(firstPid);
		const rows = await influx.query<{ v: number }>('SELECT v FROM m');
		expect(rows.map((r) => r.v)).toEqual([7]);
	} finally {
		await influxd.destroy();
	}
});

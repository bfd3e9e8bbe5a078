import { Influxd } from './influxd';

declare global {
	// eslint-disable-next-line no-var
	var __FORESIGHT_INFLUXD__: Influxd | undefined;
}

/** One throwaway influxd for the whole run unless INFLUX_URL names a server to use. */
export default async function globalSetup(): Promise<void> {
	if (process.env.INFLUX_URL) return;
	const influxd = await Influxd.create();
	globalThis.__FORESIGHT_INFLUXD__ = influxd;
	// Test workers are forked after this and inherit the environment.
	process.env.INFLUX_URL = influxd.url;
	process.env.FORESIGHT_TEST_INFLUXD_PID = String(influxd.pid);
}

import * as mediasoup from 'mediasoup';
import { attach, ENV_VARIABLES, ForesightConfigError, optionsFromEnv, parseOptions } from '../../plugin';
import { DEFAULT_CONSUMER_STATS_EVERY_MS, DEFAULT_SLOW_STATS_EVERY_MS, DEFAULT_TRANSPORT_STATS_EVERY_MS, DEFAULT_WINDOW_STATS_EVERY_MS } from '../../plugin/config';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

function configError(fn: () => unknown): ForesightConfigError {
	try {
		fn();
	} catch (e) {
		if (e instanceof ForesightConfigError) return e;
		throw e;
	}
	throw new Error('expected a ForesightConfigError');
}

describe('configuration', () => {
	test('defaults are complete and valid', () => {
		expect(parseOptions({})).toEqual({
			loadSampleIntervalMs: 1000,
			statsIntervalMs: 1000,
			dryRun: false,
			allocation: { workerCapacityPct: 100, policy: 'foresight', hookTimeoutMs: 20_000 },
			cluster: { reportIntervalMs: 1000, silentAfterMs: 3000, reservationTtlMs: 10_000, newRoomFreeShare: 0.2 },
			prediction: { predictor: 'anchored', levelHalfLifeS: 1.5, calibrationHalfLifeS: 300, guard: true, guardHorizonS: 15, guardWindowMs: 60_000, guardSwitchAfterMs: 60_000, guardRecoverAfterMs: 60_000 },
			retraining: { epochs: 20, heldOutMs: 300_000, historyMs: 1_800_000, inputHistoryMs: 30_000, minIntervalMs: 600_000, periodMs: 3_600_000, strideMs: 1000 },
			profiling: {
				sampling: true,
				senderReports: true,
				traceEveryMs: 30_000,
				traceWindowMs: 1000,
				tapEveryMs: 30_000,
				tapWindowMs: 1000,
				resolutionRefreshMs: 300_000,
				probeWaitMs: 500,
				keyframeProbes: false,
				traceBackoffMax: 4,
				slowStatsEveryMs: DEFAULT_SLOW_STATS_EVERY_MS,
				consumerStatsEveryMs: DEFAULT_CONSUMER_STATS_EVERY_MS,
				transportStatsEveryMs: DEFAULT_TRANSPORT_STATS_EVERY_MS,
				windowStatsEveryMs: DEFAULT_WINDOW_STATS_EVERY_MS,
				keywords: [],
			},
		});
	});

	test('a bad option passed to attach() names the field and the allowed values', () => {
		const err = configError(() => attach(mediasoup, { useEnv: false, logLevel: 'loud' as never }));
		expect(err.fields).toEqual(['logLevel']);
		expect(err.message).toMatch(/logLevel/);
		expect(err.message).toMatch(/allowed: fatal, error, warn, info, debug, trace, silent/);
	});

	test('nested and unknown options are named by their path', () => {
		const err = configError(() => parseOptions({ influx: { url: 'ftp://x', batchSize: 0 }, statsIntervalMS: 5 }));
		expect(err.fields.sort()).toEqual(['influx.batchSize', 'influx.url', 'statsIntervalMS'].sort());
		expect(err.message).toMatch(/statsIntervalMS: unknown option/);
	});

	test('a bad environment variable is named', () => {
		const err = configError(() => optionsFromEnv({ FORESIGHT_LOAD_INTERVAL_MS: 'soon', INFLUX_URL: 'http://127.0.0.1:8086' }));
		expect(err.fields).toEqual(['FORESIGHT_LOAD_INTERVAL_MS (loadSampleIntervalMs)']);
		expect(err.message).toMatch(/FORESIGHT_LOAD_INTERVAL_MS/);
		const err2 = configError(() => optionsFromEnv({ INFLUX_URL: 'not a url' }));
		expect(err2.message).toMatch(/INFLUX_URL \(influx\.url\)/);
	});

	test('environment values are coerced and explicit options win', () => {
		const opts = optionsFromEnv(
			{ FORESIGHT_DRY_RUN: 'true', INFLUX_URL: 'http://127.0.0.1:8086', INFLUX_BATCH_SIZE: '100' },
			{ influx: { url: 'http://127.0.0.1:9999' } },
		);
		expect(opts.dryRun).toBe(true);
		expect(opts.influx).toMatchObject({ url: 'http://127.0.0.1:9999', batchSize: 100, database: 'foresight' });
	});

	test('the per-worker CPU budget comes from FORESIGHT_WORKER_CAPACITY_PCT, fractions allowed, and is validated', () => {
		expect(optionsFromEnv({ FORESIGHT_WORKER_CAPACITY_PCT: '12.5', FORESIGHT_ALLOCATION_INTERVAL_MS: '500' }).allocation).toEqual({ workerCapacityPct: 12.5, intervalMs: 500, policy: 'foresight', hookTimeoutMs: 20_000 });
		expect(optionsFromEnv({ FORESIGHT_WORKER_CAPACITY_PCT: '50' }, { allocation: { intervalMs: 2000 } }).allocation).toEqual({ workerCapacityPct: 50, intervalMs: 2000, policy: 'foresight', hookTimeoutMs: 20_000 });
		expect(optionsFromEnv({ FORESIGHT_ALLOCATION_POLICY: 'least-loaded-66' }).allocation.policy).toBe('least-loaded-66');
		expect(optionsFromEnv({ FORESIGHT_HOOK_TIMEOUT_MS: '3000' }).allocation.hookTimeoutMs).toBe(3000);
		expect(configError(() => optionsFromEnv({ FORESIGHT_HOOK_TIMEOUT_MS: '5' })).fields).toEqual(['FORESIGHT_HOOK_TIMEOUT_MS (allocation.hookTimeoutMs)']);
		expect(configError(() => optionsFromEnv({ FORESIGHT_ALLOCATION_POLICY: 'fastest' })).fields).toEqual(['FORESIGHT_ALLOCATION_POLICY (allocation.policy)']);
		const err = configError(() => optionsFromEnv({ FORESIGHT_WORKER_CAPACITY_PCT: '0' }));
		expect(err.fields).toEqual(['FORESIGHT_WORKER_CAPACITY_PCT (allocation.workerCapacityPct)']);
		expect(configError(() => parseOptions({ allocation: { workerCapacityPct: 150 } })).fields).toEqual(['allocation.workerCapacityPct']);
	});

	test('consumer, transport and window statistics periods come from the environment, join other profiling options, and are validated', () => {
		const opts = optionsFromEnv(
			{ FORESIGHT_CONSUMER_STATS_EVERY_MS: '2500', FORESIGHT_TRANSPORT_STATS_EVERY_MS: '10000', FORESIGHT_WINDOW_STATS_EVERY_MS: '3000' },
			{ profiling: { tapEveryMs: 20_000 } },
		);
		expect(opts.profiling).toMatchObject({ consumerStatsEveryMs: 2500, transportStatsEveryMs: 10_000, windowStatsEveryMs: 3000, tapEveryMs: 20_000 });
		expect(configError(() => optionsFromEnv({ FORESIGHT_WINDOW_STATS_EVERY_MS: '50' })).fields).toEqual(['FORESIGHT_WINDOW_STATS_EVERY_MS (profiling.windowStatsEveryMs)']);
		expect(optionsFromEnv({ FORESIGHT_CONSUMER_STATS_EVERY_MS: '2500' }, { profiling: { consumerStatsEveryMs: 700 } }).profiling.consumerStatsEveryMs).toBe(700);
		const notANumber = configError(() => optionsFromEnv({ FORESIGHT_CONSUMER_STATS_EVERY_MS: '5s' }));
		expect(notANumber.fields).toEqual(['FORESIGHT_CONSUMER_STATS_EVERY_MS (profiling.consumerStatsEveryMs)']);
		expect(notANumber.message).toMatch(/FORESIGHT_CONSUMER_STATS_EVERY_MS \(profiling\.consumerStatsEveryMs\): /);
		const tooOften = configError(() => optionsFromEnv({ FORESIGHT_TRANSPORT_STATS_EVERY_MS: '10' }));
		expect(tooOften.fields).toEqual(['FORESIGHT_TRANSPORT_STATS_EVERY_MS (profiling.transportStatsEveryMs)']);
		expect(tooOften.message).toMatch(/100/);
		expect(configError(() => parseOptions({ profiling: { consumerStatsEveryMs: 600_001 } })).fields).toEqual(['profiling.consumerStatsEveryMs']);
		expect(configError(() => parseOptions({ profiling: { transportStatsEveryMs: 1000.5 } })).fields).toEqual(['profiling.transportStatsEveryMs']);
	});

	test('InfluxDB 2.x/3.x settings come from the environment; contradictions name the variable', () => {
		const v3 = optionsFromEnv({
			INFLUX_URL: 'https://influx.example:8181',
			INFLUX_VERSION: '3',
			INFLUX_TOKEN: 'apiv3_x',
			INFLUX_TLS_CA_FILE: '/etc/ssl/influx-ca.pem',
			INFLUX_TLS_REJECT_UNAUTHORIZED: 'true',
		}).influx;
		expect(v3).toMatchObject({ version: 3, token: 'apiv3_x', tlsCaFile: '/etc/ssl/influx-ca.pem', tlsRejectUnauthorized: true });
		expect(v3?.schema).toBeUndefined();
		expect(parseOptions({ influx: { url: 'http://127.0.0.1:8086' } }).influx).toMatchObject({ version: 1, tlsRejectUnauthorized: true });
		const managed = configError(() => optionsFromEnv({ INFLUX_URL: 'http://127.0.0.1:8086', INFLUX_VERSION: '2', INFLUX_SCHEMA: 'managed' }));
		expect(managed.fields).toEqual(['INFLUX_SCHEMA (influx.schema)']);
		expect(managed.message).toMatch(/InfluxDB 2\.x has no retention-policy or continuous-query statements: use external/);
		const token = configError(() => optionsFromEnv({ INFLUX_URL: 'http://127.0.0.1:8086', INFLUX_TOKEN: 't' }));
		expect(token.fields).toEqual(['INFLUX_TOKEN (influx.token)']);
		expect(configError(() => optionsFromEnv({ INFLUX_URL: 'http://127.0.0.1:8086', INFLUX_VERSION: '4' })).fields).toEqual(['INFLUX_VERSION (influx.version)']);
		expect(configError(() => optionsFromEnv({ INFLUX_URL: 'http://127.0.0.1:8086', INFLUX_SCHEMA: 'mine' })).fields).toEqual(['INFLUX_SCHEMA (influx.schema)']);
	});

	test('.env.example documents every variable the schema reads', () => {
		const example = readFileSync(join(__dirname, '../../.env.example'), 'utf8');
		for (const name of Object.keys(ENV_VARIABLES)) expect(example).toMatch(new RegExp(`^#?\\s*${name}=`, 'm'));
	});

	test('attach() rejects something that is not the mediasoup module', () => {
		expect(() => attach({} as never)).toThrow(/expected the mediasoup module/);
	});
});

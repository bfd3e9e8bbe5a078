import { cpus } from 'node:os';
import { z } from 'zod';

/**
 * Demo server configuration, from the environment. Defaults let `npm run demo`
 * work with no variables at all; invalid values fail at start with the variable named.
 */
const port = z.coerce.number().pipe(z.int().min(0).max(65535));

export const demoConfigSchema = z
	.object({
		DEMO_HOST: z.ipv4().default('127.0.0.1'),
		DEMO_PORT: port.default(3000),
		/** IP put in ICE candidates; defaults to the listen IP. */
		DEMO_ANNOUNCED_IP: z.string().min(1).optional(),
		DEMO_RTC_IP: z.ipv4().default('127.0.0.1'),
		DEMO_RTC_MIN_PORT: port.pipe(z.int().min(1024)).default(40000),
		DEMO_RTC_MAX_PORT: port.pipe(z.int().min(1024)).default(49999),
		DEMO_WORKERS: z.coerce.number().pipe(z.int().min(1).max(64)).optional(),
		DEMO_RECORDINGS_DIR: z.string().min(1).optional(),
		/** CPU budget per worker (% of one core) the allocation thresholds scale with; unset: Foresight's own (FORESIGHT_WORKER_CAPACITY_PCT, default 100). */
		DEMO_WORKER_CAPACITY_PCT: z.coerce.number().pipe(z.number().gt(0).max(100)).optional(),
		/** A worker that stops answering for this long is killed, so healing moves its peers (0: never). */
		DEMO_HUNG_WORKER_KILL_S: z.coerce.number().pipe(z.number().min(0).max(3600)).default(30),
		/**
		 * Floor (bps) of mediasoup's send-side estimate on browsers' receive transports. A
		 * stall (a hung worker, a CPU spike) makes the delay-based estimate collapse, by
		 * default down to 30 kbps, below the lowest simulcast layer: every video then freezes
		 * until the estimate ramps up again. 300 kbps carries the lowest layer of two videos.
		 */
		DEMO_MIN_OUTGOING_BITRATE: z.coerce.number().pipe(z.int().min(0).max(100_000_000)).default(300_000),
		DEMO_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
		/** Allocation manager only logs what it would do. */
		FORESIGHT_DRY_RUN: z
			.enum(['true', 'false', '1', '0'])
			.default('false')
			.transform((v) => v === 'true' || v === '1'),
	})
	.refine((c) => c.DEMO_RTC_MIN_PORT <= c.DEMO_RTC_MAX_PORT, { message: 'DEMO_RTC_MIN_PORT must be ≤ DEMO_RTC_MAX_PORT', path: ['DEMO_RTC_MIN_PORT'] });

export interface DemoConfig {
	host: string;
	port: number;
	announcedAddress: string | undefined;
	rtcIp: string;
	rtcMinPort: number;
	rtcMaxPort: number;
	workers: number;
	recordingsDir: string | undefined;
	/** Passed to Foresight as allocation.workerCapacityPct when set. */
	workerCapacityPct: number | undefined;
	/** Seconds a worker may stop answering before the demo kills it (0: never). */
	hungWorkerKillS: number;
	/** Floor of the send-side bandwidth estimate on browsers' receive transports, bps (0: mediasoup's own, 30 kbps). */
	minOutgoingBitrate: number;
	logLevel: z.infer<typeof demoConfigSchema>['DEMO_LOG_LEVEL'];
	dryRun: boolean;
}

export class DemoConfigError extends Error {}

export function demoConfigFromEnv(env: NodeJS.ProcessEnv, overrides: Partial<DemoConfig> = {}): DemoConfig {
	const parsed = demoConfigSchema.safeParse(env);
	if (!parsed.success) {
		const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`);
		throw new DemoConfigError(`invalid demo configuration: ${problems.join('; ')}`);
	}
	const c = parsed.data;
	return {
		host: c.DEMO_HOST,
		port: c.DEMO_PORT,
		announcedAddress: c.DEMO_ANNOUNCED_IP,
		rtcIp: c.DEMO_RTC_IP,
		rtcMinPort: c.DEMO_RTC_MIN_PORT,
		rtcMaxPort: c.DEMO_RTC_MAX_PORT,
		workers: c.DEMO_WORKERS ?? Math.max(2, cpus().length),
		recordingsDir: c.DEMO_RECORDINGS_DIR,
		workerCapacityPct: c.DEMO_WORKER_CAPACITY_PCT,
		hungWorkerKillS: c.DEMO_HUNG_WORKER_KILL_S,
		minOutgoingBitrate: c.DEMO_MIN_OUTGOING_BITRATE,
		logLevel: c.DEMO_LOG_LEVEL,
		dryRun: c.FORESIGHT_DRY_RUN,
		...overrides,
	};
}

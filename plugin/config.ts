import { z } from 'zod';
import { DEFAULT_HOOK_TIMEOUT_MS } from './act/actuator';

/**
 * Every Foresight option, programmatic and environment, in one schema. Each field
 * documents its environment variable in ENV_VARIABLES below; `.env.example` lists them.
 */
/** Allocation policies the manager can run; names as in the allocation benchmark. */
export const ALLOCATION_POLICIES = ['foresight', 'least-loaded-66', 'round-robin', 'bbb-static-score', 'jitsi-reactive-lastN', 'reactive-migration'] as const;
export type AllocationPolicyName = (typeof ALLOCATION_POLICIES)[number];

/**
 * Channel round trips dominate the profiler's own CPU, so each entity is asked only as
 * often as its forecast needs (plugin/profile/schedule.ts): a producer or data stream
 * every statsIntervalMs while it is new or changing (the fast tier), else every
 * DEFAULT_SLOW_STATS_EVERY_MS; a consumer forwards its producer's packets, so it asks
 * for its own stats this often and in between follows its producer's forwarded rates;
 * transports' rates only feed connection profiles (the predictor sums its streams' flows).
 */
export const DEFAULT_SLOW_STATS_EVERY_MS = 5000;
export const DEFAULT_CONSUMER_STATS_EVERY_MS = 10_000;
export const DEFAULT_TRANSPORT_STATS_EVERY_MS = 30_000;
export const DEFAULT_WINDOW_STATS_EVERY_MS = 5000;

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export const INFLUX_VERSIONS = [1, 2, 3] as const;

const influxOptions = z
	.object({
		/** e.g. http://127.0.0.1:8086 */
		url: z.url({ protocol: /^https?$/ }),
		/** Server line: 1 through node-influx; 2 and 3 through their v1-compatible /write and /query (SCHEMA.md). */
		version: z.union(INFLUX_VERSIONS.map((v) => z.literal(v))).default(1),
		/** API token of InfluxDB 2.x/3.x, sent as `Authorization: Token …`. */
		token: z.string().min(1).optional(),
		/**
		 * managed: Foresight creates the database, retention policies and continuous queries (1.x only).
		 * external: it issues none and checks what it needs exists; 2.x/3.x servers are set up as in
		 * SCHEMA.md. Default: managed on 1.x, external on 2.x/3.x.
		 */
		schema: z.enum(['managed', 'external']).optional(),
		/** PEM file of a CA to trust for an https URL (self-signed or private PKI). */
		tlsCaFile: z.string().min(1).optional(),
		/** false: accept any certificate (testing only). */
		tlsRejectUnauthorized: z.boolean().default(true),
		database: z.string().regex(/^[A-Za-z0-9_\-]+$/, 'letters, digits, _ and - only').default('foresight'),
		username: z.string().optional(),
		password: z.string().optional(),
		/** InfluxDB duration of the raw retention policy (e.g. 24h). */
		rawRetention: z.string().regex(/^\d+[hdw]$/, 'an InfluxDB duration like 24h, 7d or 2w').default('24h'),
		/** Retention of the 1-minute downsampled means (e.g. 30d). */
		downsampledRetention: z.string().regex(/^\d+[hdw]$/, 'an InfluxDB duration like 24h, 7d or 2w').default('30d'),
		/** Largest batch of points sent in one write. */
		batchSize: z.int().min(1).max(100_000).default(5000),
		/** Longest a point waits before its batch is sent. */
		flushIntervalMs: z.int().min(10).max(60_000).default(1000),
		/** Outage buffer bounds: beyond either, the oldest points are dropped and counted. */
		maxBufferedPoints: z.int().min(1).default(500_000),
		maxBufferedBytes: z.int().min(1024).default(128 * 1024 * 1024),
	})
	.strict()
	.superRefine((o, ctx) => {
		if (o.version !== 1 && o.schema === 'managed') {
			ctx.addIssue({
				code: 'custom',
				path: ['schema'],
				message: `InfluxDB ${o.version}.x has no retention-policy or continuous-query statements: use external and create the ${o.version === 2 ? 'buckets' : 'databases'} as in SCHEMA.md`,
			});
		}
		if (o.version === 1 && o.token !== undefined) {
			ctx.addIssue({ code: 'custom', path: ['token'], message: 'a token is for InfluxDB 2.x/3.x (set the version); 1.x authenticates with username and password' });
		}
	});

export const foresightOptionsSchema = z
	.object({
		/** Unset: the app's logger's level when one is passed to attach(), else info. */
		logLevel: logLevel.optional(),
		/** Worker CPU/RSS sampling period. */
		loadSampleIntervalMs: z.int().min(50).max(60_000).default(1000),
		/** Period of getStats() rounds for profiles: the fast tier's period (see profiling.slowStatsEveryMs). */
		statsIntervalMs: z.int().min(100).max(60_000).default(1000),
		/** Trace/tap duty cycles: the profiler's overhead budget (see plugin/profile/profiler.ts). */
		profiling: z
			.object({
				/** Off: getStats() only, no traces or taps (for apps that use producer traces themselves). */
				sampling: z.boolean().default(true),
				traceEveryMs: z.int().min(100).default(30_000),
				traceWindowMs: z.int().min(50).default(1000),
				tapEveryMs: z.int().min(100).default(30_000),
				tapWindowMs: z.int().min(50).default(1000),
				resolutionRefreshMs: z.int().min(1000).default(300_000),
				/**
				 * Opt-in: the resolution probe may ask senders for keyframes when no keyframe passes
				 * anyway (each costs the sender bitrate; counted in the profile's video.keyframesRequested).
				 * Off, layer sizes come from appData.layers, the encodings' scale factors and keyframes a
				 * consumer asked for anyway (the tap's request is folded into theirs).
				 */
				keyframeProbes: z.boolean().default(false),
				/**
				 * How long a resolution probe holds a layer's tap open for the keyframe it asked for
				 * (browsers answer a PLI within ~200 ms); every packet of the layer reaches Node
				 * meanwhile. Senders that ignore PLIs are read at a natural keyframe on a later try.
				 */
				probeWaitMs: z.int().min(50).max(60_000).default(500),
				/**
				 * Trace backoff: a video stream whose framerate per layer held in its last trace window is
				 * traced up to this many times less often; a window that disagrees returns it to
				 * traceEveryMs. 1 keeps the duty cycle fixed.
				 */
				traceBackoffMax: z.int().min(1).max(64).default(4),
				/**
				 * Video producers' RTCP sender reports (the `sr` trace, one a second or so per layer,
				 * several on a high-bitrate layer) give each layer's rate for scene changes at that
				 * spacing whatever the stats tier; off, scene changes come from the stats rounds (5 s
				 * apart in the slow tier, too coarse to place a cut within a second). Each report is
				 * a worker notification: 3–17 µs of Node CPU on this project's 2-core host (bench/trace-cost;
				 * an rtp one 12–14 µs), ~6.6/s for a browser's 150k/500k/1.5M simulcast, so up to ~1 % of a
				 * core per 100 such producers.
				 */
				senderReports: z.boolean().default(true),
				/**
				 * The slow tier: a producer or data stream that is neither new (its first 20 s) nor
				 * changing (10 s after a score, pause/resume, unasked keyframe, rate change, rising worker
				 * CPU or a hot prediction) is asked this often; audio producers are refreshed from their
				 * consumers' answers within it.
				 */
				slowStatsEveryMs: z.int().min(100).max(600_000).default(DEFAULT_SLOW_STATS_EVERY_MS),
				/**
				 * Each consumer's own getStats() period (staggered); in between its flow is derived from
				 * its producer's forwarded rates. Below statsIntervalMs it means every round. A video
				 * consumer whose answer matched its derived flow doubles it, up to transportStatsEveryMs,
				 * until a trigger or an answer that does not (plugin/profile/schedule.ts, consumerPeriodMs).
				 */
				consumerStatsEveryMs: z.int().min(100).max(600_000).default(DEFAULT_CONSUMER_STATS_EVERY_MS),
				/**
				 * The longest period that doubling reaches (unset: transportStatsEveryMs, since a transport's
				 * rates between its answers are sums of derived flows too). Set to consumerStatsEveryMs, a
				 * consumer keeps that period whatever its answers found.
				 */
				consumerStatsMaxEveryMs: z.int().min(100).max(600_000).optional(),
				/** Each transport's getStats() period for connection profiles (staggered). */
				transportStatsEveryMs: z.int().min(100).max(600_000).default(DEFAULT_TRANSPORT_STATS_EVERY_MS),
				/**
				 * Each stream's window statistics (variance, entropy, scene changes, frame sizes, keyframe
				 * rate, data type, complexity) are rebuilt this often (staggered); flow and layer rates are
				 * every round's. They summarize 10–60 s windows, and rebuilding them every round was most of
				 * the profiler's CPU.
				 */
				windowStatsEveryMs: z.int().min(100).max(600_000).default(DEFAULT_WINDOW_STATS_EVERY_MS),
				/** Opt-in: keywords counted in string data messages (counts only, never content). */
				keywords: z.array(z.string().min(1).max(64)).max(256).default([]),
			})
			.strict()
			.prefault({}),
		/** When absent, profiles live in the embedded in-memory store. */
		influx: influxOptions.optional(),
		/**
		 * Several hosts (SFU processes) sharing one InfluxDB: each publishes its workers' load,
		 * forecasts, headroom and rooms there and reads the others' (plugin/cluster). Off
		 * unless hostId is set; needs `influx` (or a cluster channel passed to attach()).
		 */
		cluster: z
			.object({
				/** This host's name in the shared view; unique per process. Unset: no cluster. */
				hostId: z.string().regex(/^[A-Za-z0-9_.:\-]{1,128}$/, 'letters, digits, _ . : - only (1 to 128)').optional(),
				/** Where the app sends clients redirected to this host (e.g. its wss:// signaling URL); carried in redirect answers. */
				endpoint: z.string().min(1).max(2048).optional(),
				/** How often the host publishes its state and reads the others'. */
				reportIntervalMs: z.int().min(100).max(60_000).default(1000),
				/** A host silent for longer is left out of placement until it reports again. 3 reports missed. */
				silentAfterMs: z.int().min(200).max(600_000).default(3000),
				/**
				 * How long a redirect's reservation on the target stands: the client has to re-connect
				 * and its load show in the target's report by then. Counted twice meanwhile (reservation
				 * and report), which errs on the side of not piling onto the target.
				 */
				reservationTtlMs: z.int().min(500).max(60_000).default(10_000),
				/**
				 * A room new to the cluster opens on this host only while this share of the host's
				 * capacity is free (else on the freest host that has it): rooms grow after their first
				 * peer, and a host packed with young rooms overloads as they fill. 0: whenever a worker fits.
				 * 0.2: the best of 0/0.2/0.3/0.4 in the cluster simulator (20 and 30 % alike; 40 % sent
				 * rooms away from hosts that would have held them), development seed 1, 10 hosts × 16 workers.
				 */
				newRoomFreeShare: z.number().min(0).max(0.9).default(0.2),
			})
			.strict()
			.prefault({})
			.refine((c) => c.silentAfterMs >= 2 * c.reportIntervalMs, { message: 'silentAfterMs must be at least twice reportIntervalMs (one late report is not silence)', path: ['silentAfterMs'] }),
		/** Directory of a trained model (e.g. the shipped models/default); unset: the kNN. Bad files → kNN fallback. */
		modelDir: z.string().min(1).optional(),
		/** Allocation manager only logs what it would do. */
		dryRun: z.boolean().default(false),
		allocation: z
			.object({
				/**
				 * CPU one worker may use, % of one core. The policy's limits and the safety
				 * bands scale with it: below 100 when workers share cores with other work
				 * (or, for a demo, to make a laptop reach the limits).
				 */
				workerCapacityPct: z.number().gt(0).max(100).default(100),
				/** Period of allocation decision rounds; default: loadSampleIntervalMs. */
				intervalMs: z.int().min(50).max(60_000).optional(),
				/**
				 * Who decides. 'foresight' acts on predicted load; the others are the policies
				 * other SFUs use (placement only, or Jitsi's reactive last-N), run through the
				 * same manager, guard and audit log so an operator can compare them live.
				 */
				policy: z.enum(ALLOCATION_POLICIES).default('foresight'),
				/**
				 * How long one call of an app hook (migrations, replaceWorker, rejoinPeers) may take
				 * before its step fails: a client that never answers must not hold a move or a
				 * healing forever.
				 */
				hookTimeoutMs: z.int().min(100).max(600_000).default(DEFAULT_HOOK_TIMEOUT_MS),
			})
			.strict()
			.prefault({}),
		/** Serving forecasts (plugin/predict/engine.ts, plugin/predict/guard.ts). */
		prediction: z
			.object({
				/**
				 * Weight of each new residual in the engine's per-worker online bias correction; 0 turns
				 * it off. Default: 0.1 (about the last ten matured forecasts of each horizon) when a model
				 * or the kNN serves, whose level can be off on a new host; 0 when the anchored predictor
				 * serves, which starts from the measured level (correcting it adds past residuals' noise).
				 */
				biasAlpha: z.number().min(0).max(1).optional(),
				/**
				 * What serves when no model directory is set: 'anchored' (the latest measured level plus
				 * known changes priced by costs calibrated online on this host) or 'knn' (the
				 * specification's kNN, which is always the fallback).
				 */
				predictor: z.enum(['anchored', 'knn']).default('anchored'),
				/** Half-life of the anchored predictor's smoothing of the level its cost model does not explain, s; 0 = last value. */
				levelHalfLifeS: z.number().min(0).max(600).default(1.5),
				/** Half-life of a measurement's weight in the host's cost calibration, s: the last few minutes decide. */
				calibrationHalfLifeS: z.number().min(1).max(86_400).default(300),
				/** The forecast guard: serve last value in place of a predictor that has been worse than it. */
				guard: z.boolean().default(true),
				/** Horizon whose matured CPU forecasts the guard compares (the acceptance horizon). */
				guardHorizonS: z.union([z.literal(5), z.literal(15), z.literal(30)]).default(15),
				/** Matured forecasts older than this leave the guard's rolling errors. 60 s. */
				guardWindowMs: z.int().min(1000).max(3_600_000).default(60_000),
				/** A predictor worse than last value for this long is switched out. 60 s. */
				guardSwitchAfterMs: z.int().min(0).max(3_600_000).default(60_000),
				/** A switched-out predictor at least as good as last value for this long serves again. 60 s. */
				guardRecoverAfterMs: z.int().min(0).max(3_600_000).default(60_000),
			})
			.strict()
			.prefault({}),
		/**
		 * Retraining from live history (plugin/predict/retrainer.ts): a candidate is trained in a
		 * worker thread on everything before the most recent held-out window and deployed only
		 * if its 15 s CPU MAE on that window beats the serving predictor's.
		 */
		retraining: z
			.object({
				/**
				 * Automatic retraining on drift and every periodMs (Foresight.retrain() works either
				 * way). Default: on when a modelDir is set — the operator chose a learned model, and
				 * keeping it current costs nothing when the candidate loses — off otherwise.
				 */
				enabled: z.boolean().optional(),
				/** Retrain this often even without drift: slow changes never trip Page-Hinkley. 1 h. */
				periodMs: z.int().min(1000).default(3_600_000),
				/** Automatic retrainings are at least this far apart: a drifting SFU is a busy one. 10 min. */
				minIntervalMs: z.int().min(0).default(600_000),
				/** Live history used (training + held-out). 30 min = half of what the in-memory store keeps at 1 Hz. */
				historyMs: z.int().min(10_000).default(1_800_000),
				/** Most recent window of instants that is scored, never trained on. 5 min ≈ 300 examples per worker at 1 Hz. */
				heldOutMs: z.int().min(1000).default(300_000),
				/** Fewer than offline training's 60: the candidate refines on recent data and must be cheap. */
				epochs: z.int().min(1).max(1000).default(20),
				/** One example per worker this often. */
				strideMs: z.int().min(50).default(1000),
				/** Load history in each example's snapshot, as in offline training. */
				inputHistoryMs: z.int().min(0).default(30_000),
			})
			.strict()
			.prefault({}),
	})
	.strict();

export type ForesightOptions = z.input<typeof foresightOptionsSchema>;
export type ResolvedForesightOptions = z.output<typeof foresightOptionsSchema>;
export type InfluxOptions = z.output<typeof influxOptions>;

export class ForesightConfigError extends Error {
	constructor(
		message: string,
		/** Dotted option path (or environment variable) of each offending field. */
		public readonly fields: string[],
	) {
		super(message);
		this.name = 'ForesightConfigError';
	}
}

function describeIssues(issues: z.core.$ZodIssue[], nameOf: (path: PropertyKey[]) => string): ForesightConfigError {
	const fields: string[] = [];
	const lines: string[] = [];
	for (const issue of issues) {
		// An unknown key is an error of the key itself, not of the object holding it.
		const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
		for (const path of paths) {
			const name = nameOf(path) || '(options)';
			const allowed = issue.code === 'invalid_value' ? ` (allowed: ${issue.values.map(String).join(', ')})` : '';
			const message = issue.code === 'unrecognized_keys' ? 'unknown option' : issue.message;
			fields.push(name);
			lines.push(`${name}: ${message}${allowed}`);
		}
	}
	return new ForesightConfigError(`invalid Foresight configuration:\n  ${lines.join('\n  ')}`, fields);
}

export function parseOptions(input: unknown): ResolvedForesightOptions {
	const res = foresightOptionsSchema.safeParse(input ?? {});
	if (!res.success) throw describeIssues(res.error.issues, (p) => p.map(String).join('.'));
	return res.data;
}

const OPTION_GROUPS = ['influx', 'profiling', 'allocation', 'prediction', 'retraining', 'cluster'] as const;

type OptionPath = readonly [keyof ForesightOptions] | readonly [(typeof OPTION_GROUPS)[number], string];
type EnvKind = 'string' | 'int' | 'number' | 'bool';

/** Environment variable → option path. Numbers and booleans are coerced from strings. */
export const ENV_VARIABLES: Record<string, { path: OptionPath; kind: EnvKind; doc: string }> = {
	FORESIGHT_LOG_LEVEL: { path: ['logLevel'], kind: 'string', doc: "fatal|error|warn|info|debug|trace|silent (default: the app logger's level, else info)" },
	FORESIGHT_LOAD_INTERVAL_MS: { path: ['loadSampleIntervalMs'], kind: 'int', doc: 'worker load sampling period in ms (default 1000)' },
	FORESIGHT_STATS_INTERVAL_MS: { path: ['statsIntervalMs'], kind: 'int', doc: 'profile round period in ms, the fast tier of getStats() (default 1000)' },
	FORESIGHT_PROFILE_SAMPLING: { path: ['profiling', 'sampling'], kind: 'bool', doc: 'false: getStats() only, no traces or taps (default true)' },
	FORESIGHT_SENDER_REPORTS: {
		path: ['profiling', 'senderReports'],
		kind: 'bool',
		doc: "false: scene changes from the stats rounds only, without video producers' RTCP sender report traces (default true)",
	},
	FORESIGHT_KEYFRAME_PROBES: {
		path: ['profiling', 'keyframeProbes'],
		kind: 'bool',
		doc: 'true: the resolution probe may ask senders for keyframes, counted in profiles (default false: sizes only from keyframes sent anyway)',
	},
	FORESIGHT_SLOW_STATS_EVERY_MS: {
		path: ['profiling', 'slowStatsEveryMs'],
		kind: 'int',
		doc: `producers' and data streams' getStats() period in ms when they are neither new nor changing (default ${DEFAULT_SLOW_STATS_EVERY_MS}); the fast tier is statsIntervalMs`,
	},
	FORESIGHT_CONSUMER_STATS_EVERY_MS: {
		path: ['profiling', 'consumerStatsEveryMs'],
		kind: 'int',
		doc: `a consumer's own getStats() period in ms; in between its flow follows its producer's forwarded rates (default ${DEFAULT_CONSUMER_STATS_EVERY_MS})`,
	},
	FORESIGHT_TRANSPORT_STATS_EVERY_MS: {
		path: ['profiling', 'transportStatsEveryMs'],
		kind: 'int',
		doc: `transports' getStats() period in ms, for connection profiles (default ${DEFAULT_TRANSPORT_STATS_EVERY_MS})`,
	},
	FORESIGHT_WINDOW_STATS_EVERY_MS: {
		path: ['profiling', 'windowStatsEveryMs'],
		kind: 'int',
		doc: `how often a profile's window statistics (variance, entropy, scene changes, …) are rebuilt, in ms; flow is every round's (default ${DEFAULT_WINDOW_STATS_EVERY_MS})`,
	},
	FORESIGHT_MODEL_DIR: { path: ['modelDir'], kind: 'string', doc: 'trained model directory, e.g. models/default (unset: the specification kNN)' },
	FORESIGHT_DRY_RUN: { path: ['dryRun'], kind: 'bool', doc: 'true: allocation manager only logs (default false)' },
	FORESIGHT_WORKER_CAPACITY_PCT: { path: ['allocation', 'workerCapacityPct'], kind: 'number', doc: 'CPU one worker may use, % of one core (default 100)' },
	FORESIGHT_ALLOCATION_POLICY: { path: ['allocation', 'policy'], kind: 'string', doc: `${ALLOCATION_POLICIES.join('|')} (default foresight)` },
	FORESIGHT_ALLOCATION_INTERVAL_MS: { path: ['allocation', 'intervalMs'], kind: 'int', doc: 'allocation decision period in ms (default: the load sampling period)' },
	FORESIGHT_HOOK_TIMEOUT_MS: { path: ['allocation', 'hookTimeoutMs'], kind: 'int', doc: 'longest one app hook call (migration, replaceWorker, rejoinPeers) may take, in ms (default 20000)' },
	FORESIGHT_BIAS_ALPHA: { path: ['prediction', 'biasAlpha'], kind: 'number', doc: 'weight of each residual in the online bias correction, 0 = off (default 0.1 with a model or the kNN, 0 with the anchored predictor)' },
	FORESIGHT_PREDICTOR: { path: ['prediction', 'predictor'], kind: 'string', doc: 'anchored|knn: what serves without a model directory (default anchored)' },
	FORESIGHT_LEVEL_HALF_LIFE_S: { path: ['prediction', 'levelHalfLifeS'], kind: 'number', doc: "anchored predictor: half-life of the unexplained level's smoothing, s, 0 = last value (default 1.5)" },
	FORESIGHT_CALIBRATION_HALF_LIFE_S: { path: ['prediction', 'calibrationHalfLifeS'], kind: 'number', doc: 'half-life of a measurement in the per-host cost calibration, s (default 300)' },
	FORESIGHT_GUARD: { path: ['prediction', 'guard'], kind: 'bool', doc: 'serve last value in place of a predictor worse than it (default true)' },
	FORESIGHT_GUARD_HORIZON_S: { path: ['prediction', 'guardHorizonS'], kind: 'int', doc: '5|15|30: horizon the guard compares (default 15)' },
	FORESIGHT_GUARD_WINDOW_MS: { path: ['prediction', 'guardWindowMs'], kind: 'int', doc: "guard's rolling error window in ms (default 60000)" },
	FORESIGHT_GUARD_SWITCH_AFTER_MS: { path: ['prediction', 'guardSwitchAfterMs'], kind: 'int', doc: 'switch to last value after the predictor was worse this long, ms (default 60000)' },
	FORESIGHT_GUARD_RECOVER_AFTER_MS: { path: ['prediction', 'guardRecoverAfterMs'], kind: 'int', doc: 'serve the predictor again after it was as good this long, ms (default 60000)' },
	FORESIGHT_RETRAINING: { path: ['retraining', 'enabled'], kind: 'bool', doc: 'retrain from live history on drift and periodically (default: true when FORESIGHT_MODEL_DIR is set)' },
	FORESIGHT_RETRAIN_PERIOD_MS: { path: ['retraining', 'periodMs'], kind: 'int', doc: 'retrain at least this often when retraining is on (default 3600000)' },
	FORESIGHT_RETRAIN_MIN_INTERVAL_MS: { path: ['retraining', 'minIntervalMs'], kind: 'int', doc: 'minimum time between automatic retrainings (default 600000)' },
	FORESIGHT_CLUSTER_HOST_ID: { path: ['cluster', 'hostId'], kind: 'string', doc: "this host's name in the shared cluster view (unset: no cluster)" },
	FORESIGHT_CLUSTER_ENDPOINT: { path: ['cluster', 'endpoint'], kind: 'string', doc: 'where clients redirected to this host connect (carried in redirect answers)' },
	FORESIGHT_CLUSTER_REPORT_MS: { path: ['cluster', 'reportIntervalMs'], kind: 'int', doc: 'how often a host publishes its state and reads the others\', in ms (default 1000)' },
	FORESIGHT_CLUSTER_SILENT_AFTER_MS: { path: ['cluster', 'silentAfterMs'], kind: 'int', doc: 'a host silent this long is left out of placement, in ms (default 3000)' },
	FORESIGHT_CLUSTER_RESERVATION_TTL_MS: { path: ['cluster', 'reservationTtlMs'], kind: 'int', doc: 'how long a redirect reserves room on its target, in ms (default 10000, at most 60000)' },
	FORESIGHT_CLUSTER_NEW_ROOM_FREE_SHARE: { path: ['cluster', 'newRoomFreeShare'], kind: 'number', doc: 'a new room opens on a host only while this share of it is free, 0..0.9 (default 0.2)' },
	INFLUX_URL: { path: ['influx', 'url'], kind: 'string', doc: 'InfluxDB URL (http or https); unset: embedded in-memory store' },
	INFLUX_VERSION: { path: ['influx', 'version'], kind: 'int', doc: '1|2|3: the server line (default 1); 2 and 3 use their v1-compatible API' },
	INFLUX_TOKEN: { path: ['influx', 'token'], kind: 'string', doc: 'API token of InfluxDB 2.x/3.x (Authorization: Token)' },
	INFLUX_SCHEMA: { path: ['influx', 'schema'], kind: 'string', doc: 'managed|external: who creates database, retention and downsampling (default managed on 1.x, external on 2.x/3.x)' },
	INFLUX_TLS_CA_FILE: { path: ['influx', 'tlsCaFile'], kind: 'string', doc: 'PEM CA file to trust for an https URL' },
	INFLUX_TLS_REJECT_UNAUTHORIZED: { path: ['influx', 'tlsRejectUnauthorized'], kind: 'bool', doc: 'false accepts any certificate, for testing only (default true)' },
	INFLUX_DATABASE: { path: ['influx', 'database'], kind: 'string', doc: 'database name (default foresight)' },
	INFLUX_USERNAME: { path: ['influx', 'username'], kind: 'string', doc: 'optional' },
	INFLUX_PASSWORD: { path: ['influx', 'password'], kind: 'string', doc: 'optional' },
	INFLUX_RAW_RETENTION: { path: ['influx', 'rawRetention'], kind: 'string', doc: 'raw data retention (default 24h)' },
	INFLUX_DOWNSAMPLED_RETENTION: { path: ['influx', 'downsampledRetention'], kind: 'string', doc: '1-minute means retention (default 30d)' },
	INFLUX_BATCH_SIZE: { path: ['influx', 'batchSize'], kind: 'int', doc: 'points per write (default 5000)' },
	INFLUX_FLUSH_INTERVAL_MS: { path: ['influx', 'flushIntervalMs'], kind: 'int', doc: 'max wait before a batch is sent (default 1000)' },
	INFLUX_MAX_BUFFERED_POINTS: { path: ['influx', 'maxBufferedPoints'], kind: 'int', doc: 'outage buffer bound in points (default 500000)' },
	INFLUX_MAX_BUFFERED_BYTES: { path: ['influx', 'maxBufferedBytes'], kind: 'int', doc: 'outage buffer bound in bytes (default 128 MiB)' },
};

function coerce(raw: string, kind: EnvKind): unknown {
	if (kind === 'int') return /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
	if (kind === 'number') return /^-?(\d+\.?\d*|\.\d+)$/.test(raw.trim()) ? Number(raw) : raw;
	if (kind === 'bool') {
		if (/^(1|true|yes|on)$/i.test(raw)) return true;
		if (/^(0|false|no|off)$/i.test(raw)) return false;
		return raw;
	}
	return raw;
}

/**
 * Options from the environment, overlaid by programmatic ones. Errors name the
 * environment variable when the bad value came from there.
 */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env, overrides: ForesightOptions = {}): ResolvedForesightOptions {
	const fromEnv: Record<string, unknown> = {};
	const sourceOf = new Map<string, string>();
	for (const [name, spec] of Object.entries(ENV_VARIABLES)) {
		const raw = env[name];
		if (raw === undefined || raw === '') continue;
		let target: Record<string, unknown> = fromEnv;
		for (const key of spec.path.slice(0, -1)) {
			target[key] ??= {};
			target = target[key] as Record<string, unknown>;
		}
		target[spec.path[spec.path.length - 1] as string] = coerce(raw, spec.kind);
		sourceOf.set(spec.path.join('.'), name);
	}
	const merged: Record<string, unknown> = { ...fromEnv, ...overrides };
	for (const group of OPTION_GROUPS) {
		if (fromEnv[group] !== undefined && overrides[group] !== undefined) {
			merged[group] = { ...(fromEnv[group] as object), ...overrides[group] };
		}
	}
	const res = foresightOptionsSchema.safeParse(merged);
	if (!res.success) {
		throw describeIssues(res.error.issues, (p) => {
			const dotted = p.map(String).join('.');
			const envName = sourceOf.get(dotted);
			return envName && !(dotted.split('.')[0]! in overrides) ? `${envName} (${dotted})` : dotted;
		});
	}
	return res.data;
}

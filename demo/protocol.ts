import { z } from 'zod';

/**
 * Signaling protocol between the room page and the server: JSON requests
 * `{id, method, data}` answered by `{id, ok, data | error}`, plus server
 * notifications `{notification, data}`. Parameters that mediasoup validates in
 * depth (RTP/DTLS/SCTP parameters) are checked here only for shape; mediasoup's
 * own rejection becomes an error reply.
 */
export const MAX_MESSAGE_BYTES = 64 * 1024;

const id = z.string().min(1).max(128);
const looseObject = z.looseObject({});

const rtpParameters = z.looseObject({
	codecs: z.array(looseObject).min(1).max(32),
	encodings: z.array(looseObject).max(8).optional(),
	headerExtensions: z.array(looseObject).max(32).optional(),
	rtcp: looseObject.optional(),
	mid: z.string().max(64).optional(),
});

const rtpCapabilities = z.looseObject({
	codecs: z.array(looseObject).max(256).optional(),
	headerExtensions: z.array(looseObject).max(256).optional(),
});

const dtlsParameters = z.looseObject({
	role: z.enum(['auto', 'client', 'server']).optional(),
	fingerprints: z.array(z.object({ algorithm: z.string().max(32), value: z.string().max(256) })).min(1).max(8),
});

const sctpStreamParameters = z.looseObject({
	streamId: z.int().min(0).max(65535),
	ordered: z.boolean().optional(),
	maxPacketLifeTime: z.int().min(0).optional(),
	maxRetransmits: z.int().min(0).optional(),
});

const appData = z.record(z.string().max(64), z.union([z.string().max(256), z.number(), z.boolean()])).optional();

const request = <M extends string, D extends z.ZodType>(method: M, data: D) => z.object({ id: z.int().min(0), method: z.literal(method), data });

export const requestSchema = z.discriminatedUnion('method', [
	request('getRouterRtpCapabilities', z.object({}).optional()),
	request(
		'join',
		z.object({
			displayName: z.string().min(1).max(64),
			rtpCapabilities,
			// Sent by mediasoup-client; mediasoup 3.32's own SCTP stack sizes its streams itself, so it is accepted and ignored.
			sctpCapabilities: looseObject.optional(),
		}),
	),
	request('createWebRtcTransport', z.object({ direction: z.enum(['send', 'recv']), sctp: z.boolean().default(false) })),
	request('connect', z.object({ transportId: id, dtlsParameters })),
	request(
		'produce',
		z.object({ transportId: id, kind: z.enum(['audio', 'video']), rtpParameters, appData }),
	),
	request(
		'produceData',
		z.object({
			transportId: id,
			sctpStreamParameters,
			label: z.string().max(64).default(''),
			protocol: z.string().max(64).default(''),
			appData,
		}),
	),
	request('consume', z.object({ producerId: id })),
	request('consumeData', z.object({ dataProducerId: id })),
	request('resume', z.object({ consumerId: id })),
	request(
		'setPreferredLayers',
		z.object({ consumerId: id, spatialLayer: z.int().min(0).max(3), temporalLayer: z.int().min(0).max(3).optional() }),
	),
	request('closeProducer', z.object({ producerId: id })),
	request('closeConsumer', z.object({ consumerId: id })),
	/** The client could not re-publish a producer it was asked to migrate (the `migrateProducer` notification). */
	request('producerMigrationFailed', z.object({ producerId: id, error: z.string().max(256) })),
	/** The client re-created what it lost with its worker (the `rejoin` notification), or could not (`error`). */
	request('rejoined', z.object({ error: z.string().max(256).optional() })),
	request('leave', z.object({}).optional()),
]);

export type SignalingRequest = z.infer<typeof requestSchema>;
export type SignalingMethod = SignalingRequest['method'];

export type ParsedMessage = { ok: true; request: SignalingRequest } | { ok: false; id: number | null; error: string };

/**
 * Turns one raw WebSocket message into a request or an error that can be sent
 * back as is. Never throws: every failure is the sender's problem, not the server's.
 */
export function parseMessage(raw: Buffer | string): ParsedMessage {
	const size = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
	if (size > MAX_MESSAGE_BYTES) return { ok: false, id: null, error: `message too large (${size} bytes > ${MAX_MESSAGE_BYTES})` };
	let json: unknown;
	try {
		json = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
	} catch {
		return { ok: false, id: null, error: 'message is not valid JSON' };
	}
	const requestId =
		typeof json === 'object' && json !== null && 'id' in json && Number.isSafeInteger(json.id) && (json.id as number) >= 0 ? (json.id as number) : null;
	const parsed = requestSchema.safeParse(json);
	if (!parsed.success) {
		const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`);
		return { ok: false, id: requestId, error: `invalid request: ${issues.join('; ')}` };
	}
	return { ok: true, request: parsed.data };
}

/**
 * Per-peer rate limit: a bucket of `capacity` tokens refilled at `perSecond`;
 * each message takes one. Pure (time is passed in) so it is unit-testable.
 */
export class TokenBucket {
	private tokens: number;
	private lastMs: number;

	constructor(
		readonly capacity: number,
		readonly perSecond: number,
		nowMs: number,
	) {
		this.tokens = capacity;
		this.lastMs = nowMs;
	}

	take(nowMs: number): boolean {
		this.tokens = Math.min(this.capacity, this.tokens + ((nowMs - this.lastMs) / 1000) * this.perSecond);
		this.lastMs = nowMs;
		if (this.tokens < 1) return false;
		this.tokens -= 1;
		return true;
	}
}

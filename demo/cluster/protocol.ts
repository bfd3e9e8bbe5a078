import { z } from 'zod';
import { pipeEndSchema, pipedProducerSchema } from '../../plugin/cluster/pipes';

/**
 * HTTP API of one cluster host (demo/cluster/host.ts) for replay-bot clients in other
 * network namespaces: a client asks to join, is placed or redirected by Foresight, and
 * sends its recorded media over real UDP to the transport the answer names. Both sides
 * parse with these schemas: each is the other's external input.
 */
const id = z.string().min(1).max(128);

export const joinRequestSchema = z.object({
	peerId: id,
	roomId: id,
	/** Sent here by another host's redirect: placed or refused, never redirected again. */
	redirected: z.boolean().default(false),
	/** Where the bot receives what it consumes (the client's UDP sink). */
	sink: z.object({ ip: z.ipv4(), port: z.int().min(1).max(65535) }),
});
export type JoinRequest = z.input<typeof joinRequestSchema>;

const layerRewrite = z.object({ ssrc: z.int(), seqAdd: z.int(), tsAdd: z.int() });
/** One published copy the client sends: its SSRC rewrites per recorded layer (null: layer not published) and the transport's address. */
export const remoteCopySchema = z.object({
	rewrites: z.array(layerRewrite.nullable()),
	loop: z.boolean(),
	ip: z.ipv4(),
	port: z.int().min(1).max(65535),
});

export const joinAnswerSchema = z.discriminatedUnion('decision', [
	z.object({
		decision: z.literal('place'),
		hostId: id,
		workerId: id,
		stale: z.boolean(),
		copies: z.array(remoteCopySchema),
		/** Local port of the bot's consumer transport on the host: what the client's sink sees as the source port. */
		subscriberPort: z.int(),
	}),
	z.object({ decision: z.literal('redirect'), target: id, endpoint: z.string().optional(), reason: z.string(), stale: z.boolean() }),
	z.object({ decision: z.literal('refuse'), reason: z.string() }),
]);
export type JoinAnswer = z.infer<typeof joinAnswerSchema>;

export const peerRequestSchema = z.object({ peerId: id });

/** Cross-host pipe signaling between hosts (plugin/cluster/pipes.ts carries the parameters). */
export const pipeOpenSchema = z.object({ roomId: id, fromHost: id });
export const pipeConnectSchema = z.object({ roomId: id, fromHost: id, fromUrl: z.url({ protocol: /^https?$/ }), linkId: id, remote: pipeEndSchema });
export const pipePullSchema = z.object({ roomId: id, linkId: id });
export const pipeProduceSchema = z.object({ roomId: id, fromHost: id, linkId: id, producers: z.array(pipedProducerSchema).max(1000) });

export const botStatsSchema = z.object({
	peerId: id,
	workerId: id,
	/** RTP packets the host received from the bot's producers. */
	producerPackets: z.number(),
	/** RTP packets the host sent to the bot's consumers. */
	consumerPackets: z.number(),
	consumers: z.int(),
	producers: z.int(),
});
export type BotStats = z.infer<typeof botStatsSchema>;

export const clusterEventRecordSchema = z.object({ ts: z.number(), type: z.string(), hostId: z.string().optional() });

export const healthSchema = z.object({
	hostId: id,
	pid: z.int(),
	workerPids: z.array(z.int()),
	bots: z.array(z.object({ peerId: id, roomId: id, workerId: id })),
	cluster: z.object({
		stale: z.boolean(),
		published: z.int(),
		publishFailures: z.int(),
		readFailures: z.int(),
		hosts: z.array(z.object({ hostId: id, ageMs: z.number(), live: z.boolean() })),
	}),
	store: z.object({ bufferedPoints: z.number(), droppedPoints: z.number(), rejectedPoints: z.number(), writtenPoints: z.number() }),
	events: z.array(clusterEventRecordSchema),
	/** This host's own part of the shared view, as it would publish it now. */
	workers: z.array(
		z.object({
			workerId: id,
			capacityPct: z.number(),
			cpuPct: z.number(),
			headroomPct: z.number(),
			p95: z.array(z.object({ horizonS: z.number(), p95Pct: z.number() })),
			rooms: z.array(id),
			/** Consumers on the worker not paused by Foresight. */
			consumers: z.int(),
			/** Consumers Foresight paused. */
			paused: z.int(),
			/** Un-paused consumers below the layers their client asked for. */
			downgraded: z.int(),
		}),
	),
	/** Consumers Foresight closed to shed load, since start. */
	dropped: z.int(),
	/** The latest redirects this host answered (newest last). */
	redirects: z.array(z.object({ ts: z.number(), peerId: id, roomId: id, target: id, reason: z.string() })),
	/** Cross-host pipe links of rooms. */
	links: z.array(z.object({ roomId: id, hostId: id, sent: z.int(), received: z.int() })),
});
export type Health = z.infer<typeof healthSchema>;

/**
 * The demo under fault injection, in a process of its own so the suite can tell
 * whether it survives: startDemo() with the demo's process guard installed, its
 * migration hooks wrapped so the suite can make one hang or throw, driven over IPC
 * by bench/faults/suite.ts. Environment: the demo's and Foresight's variables
 * (INFLUX_URL, FORESIGHT_HOOK_TIMEOUT_MS, …).
 */
import { createHook } from 'node:async_hooks';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { EventEmitter } from 'node:events';
import * as mediasoup from 'mediasoup';
import pino from 'pino';
import { installProcessGuard } from '../../demo/guard';
import { startDemo } from '../../demo/server';
import type { HealingEvent, MigrationHooks } from '../../plugin';
import { isInternal } from '../../plugin/observe/internal';
import type { ChildInfo, ChildReply, ChildRequest, Flows, Health, HookFault, LeakSnapshot, WorkerInfo } from './protocol';

const log = pino({ name: 'faults-demo', level: process.env.FAULTS_LOG_LEVEL ?? 'warn' }, pino.destination(2));
const guard = installProcessGuard(log);

/** How long a hung hook stays hung: well past Foresight's hook timeout, then it gives up (a late rejection must be harmless too). */
const HANG_MS = 2 * Number(process.env.FORESIGHT_HOOK_TIMEOUT_MS ?? 20_000) + 1000;
/** A stats request to a stopped worker must not hold a flow sample up. */
const STATS_TIMEOUT_MS = 400;

/**
 * Every live timer, unref'd ones too (process.getActiveResourcesInfo() lists only those
 * that keep the process alive): a timer that outlives what it was for is a leak either way.
 */
const liveTimers = new Set<number>();
createHook({
	init(id, type) {
		if (type === 'Timeout') liveTimers.add(id);
	},
	destroy(id) {
		liveTimers.delete(id);
	},
}).enable();

/** How late this process's event loop ran (signaling, Foresight, the demo all wait on it); reset by each health request. */
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

let armed: HookFault | undefined;
let hookFaultsFired = 0;
/** Consumers whose stats did not come back in time in a flow sample (their link counts as stalled then). */
const statsTimeouts: string[] = [];
const healing: HealingEvent[] = [];

function faulty(hooks: MigrationHooks): MigrationHooks {
	const injected = (hook: HookFault['hook']): HookFault | undefined => {
		if (armed?.hook !== hook) return undefined;
		const fault = armed;
		armed = undefined;
		hookFaultsFired++;
		return fault;
	};
	const misbehave = (fault: HookFault): Promise<never> =>
		fault.mode === 'throw'
			? Promise.reject(new Error(`injected fault: ${fault.hook} throws`))
			: new Promise((_, reject) => setTimeout(() => reject(new Error(`injected fault: ${fault.hook} hung for ${HANG_MS} ms`)), HANG_MS).unref());
	return {
		...hooks,
		migrateProducer: (request) => {
			const fault = injected('migrateProducer');
			return fault ? misbehave(fault) : hooks.migrateProducer(request);
		},
		moveConsumers: (request) => {
			const fault = injected('moveConsumers');
			return fault ? misbehave(fault) : hooks.moveConsumers(request);
		},
	};
}

function listenerTotal(emitter: EventEmitter): number {
	return emitter.eventNames().reduce((sum, name) => sum + emitter.listenerCount(name), 0);
}

function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
	return new Promise((resolve) => {
		const timer = setTimeout(() => resolve(fallback), ms);
		p.then(
			(v) => {
				clearTimeout(timer);
				resolve(v);
			},
			() => {
				clearTimeout(timer);
				resolve(fallback);
			},
		);
	});
}

const STREAM_STAT_KEYS = ['type', 'rid', 'ssrc', 'packetCount', 'nackCount', 'pliCount', 'firCount', 'packetsRetransmitted', 'packetsRepaired', 'packetsLost', 'packetsDiscarded', 'score'] as const;
function streamStats(stats: ReadonlyArray<object>): Array<Record<string, unknown>> {
	return stats.map((st) => Object.fromEntries(STREAM_STAT_KEYS.filter((k) => k in st).map((k) => [k, (st as Record<string, unknown>)[k]])));
}

async function main(): Promise<void> {
	const demo = await startDemo({ port: 0, logLevel: 'warn' }, process.env, { wrapHooks: faulty });
	demo.foresight.on('healing', (e) => healing.push(e));
	const { foresight, room, bots } = demo;
	const registry = foresight.registry;

	const workers = (): WorkerInfo[] =>
		[...registry.all('worker')].map((w) => {
			let transports = 0;
			for (const t of registry.all('transport')) if (t.workerId === w.id && t.transportType !== 'pipe') transports++;
			return { workerId: w.id, pid: w.pid, slot: w.slot, transports };
		});
	const producerOwner = (): Map<string, string> => new Map(room.producers().map((p) => [p.producerId, p.peerId]));
	const pageProducer = (peerId: string, kind: 'video' | 'audio'): string => {
		const peer = room.peers.get(peerId);
		const producer = peer && [...peer.producers.values()].find((p) => p.kind === kind && !p.closed);
		if (!producer) throw new Error(`page ${peerId} has no open ${kind} producer`);
		return producer.id;
	};
	const otherWorker = (workerId: string): string => {
		const other = [...registry.all('worker')].find((w) => w.id !== workerId);
		if (!other) throw new Error('no other worker');
		return other.id;
	};

	async function flows(): Promise<Flows> {
		const owner = producerOwner();
		const out: Flows = {};
		const samples = [...registry.all('consumer')].map(async (c) => {
			const transport = registry.get('transport', c.transportId);
			const receiver = transport?.handle.appData.peerId;
			const source = owner.get(c.producerId);
			if (transport?.transportType === 'pipe' || typeof receiver !== 'string' || source === undefined || c.handle.closed) return;
			const stats = await withTimeout(c.handle.getStats(), STATS_TIMEOUT_MS, undefined);
			if (!stats) {
				statsTimeouts.push(c.id);
				return;
			}
			const sent = stats.filter((s) => s.type === 'outbound-rtp').reduce((sum, s) => sum + s.packetCount, 0);
			const key = `${receiver}<${source}`;
			out[key] = (out[key] ?? 0) + sent;
		});
		await Promise.all(samples);
		return out;
	}

	async function leaks(): Promise<LeakSnapshot> {
		const reg = { transports: 0, pipeTransports: 0, producers: 0, consumers: 0, dataProducers: 0, dataConsumers: 0, routers: 0, workers: [...registry.all('worker')].length };
		for (const t of registry.all('transport')) {
			if (t.transportType === 'pipe') reg.pipeTransports++;
			else reg.transports++;
		}
		for (const kind of ['producer', 'consumer', 'dataProducer', 'dataConsumer'] as const) reg[`${kind}s`] = [...registry.all(kind)].length;
		const ms = { transports: 0, producers: 0, consumers: 0, dataProducers: 0, dataConsumers: 0 };
		const perRouter: number[] = [];
		const unknown: string[] = [];
		let internalTransports = 0;
		for (const r of registry.all('router')) {
			reg.routers++;
			perRouter.push(listenerTotal(r.handle as unknown as EventEmitter) + listenerTotal(r.handle.observer as unknown as EventEmitter));
			const dump = await withTimeout(r.handle.dump(), 2000, undefined);
			if (!dump) continue;
			for (const id of dump.transportIds) {
				const known = registry.get('transport', id);
				if (known?.transportType === 'pipe') continue;
				if (!known) {
					// Not in the registry: Foresight's own per-router tap transport, or one that leaked. Say which.
					const t = (r.handle as unknown as { transportsForTesting?: Map<string, { type: string; appData: unknown; closed: boolean }> }).transportsForTesting?.get(id);
					if (t && isInternal(t as { appData: unknown })) {
						internalTransports++;
						continue;
					}
					unknown.push(`${id} ${t ? `${t.type} appData=${JSON.stringify(t.appData)} closed=${t.closed}` : '(no handle)'}`);
				}
				ms.transports++;
			}
			// Pipe producers and consumers close with the producers they carry: they count.
			ms.producers += dump.mapProducerIdConsumerIds.length;
			ms.consumers += dump.mapConsumerIdProducerId.length;
			ms.dataProducers += dump.mapDataProducerIdDataConsumerIds.length;
			ms.dataConsumers += dump.mapDataConsumerIdDataProducerId.length;
		}
		const perWorker = [...registry.all('worker')].map((w) => listenerTotal(w.handle as unknown as EventEmitter) + listenerTotal(w.handle.observer as unknown as EventEmitter));
		const resources: Record<string, number> = { timers: liveTimers.size };
		for (const r of process.getActiveResourcesInfo()) if (r !== 'Timeout') resources[r] = (resources[r] ?? 0) + 1;
		return {
			registry: reg,
			mediasoup: ms,
			unknownTransports: unknown,
			internalTransports,
			listeners: { mediasoupObserver: listenerTotal(mediasoup.observer as unknown as EventEmitter), process: listenerTotal(process), perWorker, perRouter },
			resources,
		};
	}

	const handle = async (request: ChildRequest): Promise<unknown> => {
		switch (request.type) {
			case 'info': {
				const pages: Record<string, string> = {};
				for (const p of room.peers.values()) pages[p.displayName] = p.id;
				const info: ChildInfo = { url: demo.url, workers: workers(), pages, bots: room.producers().filter((p) => p.peerId.startsWith('bot-')).map((p) => p.peerId).filter((v, i, a) => a.indexOf(v) === i) };
				return info;
			}
			case 'addBot':
				return bots.add();
			case 'removeBot':
				bots.remove();
				return undefined;
			case 'workerOf': {
				const transport = [...registry.all('transport')].find((t) => t.handle.appData.peerId === request.peerId);
				if (!transport) throw new Error(`no transport of ${request.peerId}`);
				return transport.workerId;
			}
			case 'removeBots': {
				let n = 0;
				while (bots.remove()) n++;
				return n;
			}
			case 'flows':
				return flows();
			case 'armHook':
				armed = request.fault;
				return undefined;
			case 'migrate': {
				const producerId = pageProducer(request.peerId, 'video');
				return demo.migrateProducer(producerId, otherWorker(registry.get('producer', producerId)!.workerId));
			}
			case 'spread': {
				const peer = room.peers.get(request.peerId);
				if (!peer) throw new Error(`no page ${request.peerId}`);
				const owner = producerOwner();
				const consumer = [...peer.consumers.values()].find((c) => c.kind === 'video' && !c.closed && owner.get(c.producerId)?.startsWith('bot-'));
				if (!consumer) throw new Error(`page ${request.peerId} consumes no bot video`);
				const node = registry.get('consumer', consumer.id)!;
				const producerWorker = registry.get('producer', consumer.producerId)?.workerId ?? node.workerId;
				const entry = await foresight.apply({
					type: 'spreadFanout',
					producerId: consumer.producerId,
					consumerIds: [consumer.id],
					toWorkerId: otherWorker(node.workerId),
					workerId: producerWorker,
					reason: 'fault suite',
					predictedBeforePct: 0,
					predictedAfterPct: 0,
				});
				return entry.outcome;
			}
			case 'migrationPending': {
				const peer = room.peers.get(request.peerId);
				return peer !== undefined && [...peer.producers.keys()].some((id) => room.migrating(id));
			}
			case 'setLoss':
				bots.setSendLoss(request.rate);
				return undefined;
			case 'health': {
				const health: Health = {
					faults: { ...guard.faults },
					store: foresight.store.stats(),
					healing: healing.splice(0),
					hookFaultsFired,
					loopDelayMaxMs: loopDelay.max / 1e6,
					statsTimeouts: statsTimeouts.splice(0).length,
				};
				loopDelay.reset();
				return health;
			}
			case 'videoState': {
				const owner = producerOwner();
				const packets = async (h: { getStats(): Promise<unknown[]> } | undefined, type: string): Promise<number | undefined> => {
					const stats = h ? await withTimeout<unknown[] | undefined>(h.getStats(), STATS_TIMEOUT_MS, undefined) : undefined;
					return stats?.reduce<number>((sum, st) => sum + ((st as { type?: string; packetCount?: number }).type === type ? ((st as { packetCount?: number }).packetCount ?? 0) : 0), 0);
				};
				const mine = [...registry.all('consumer')].filter((c) => registry.get('transport', c.transportId)?.handle.appData.peerId === request.peerId && c.handle.kind === 'video' && !c.handle.closed);
				return Promise.all(
					mine.map(async (node) => {
						const c = node.handle;
						const transport = registry.get('transport', node.transportId)?.handle;
						const stats: unknown[] | undefined = transport ? await withTimeout<unknown[] | undefined>(transport.getStats(), STATS_TIMEOUT_MS, undefined) : undefined;
						const bwe = stats?.find((st) => typeof st === 'object' && st !== null && 'availableOutgoingBitrate' in st) as { availableOutgoingBitrate?: number } | undefined;
						const t = transport as unknown as { iceState?: string; dtlsState?: string; iceSelectedTuple?: { protocol: string; remotePort: number } } | undefined;
						return {
							consumerId: c.id,
							transport: t ? `${t.iceState ?? '-'}/${t.dtlsState ?? '-'}/${t.iceSelectedTuple ? `${t.iceSelectedTuple.protocol}:${t.iceSelectedTuple.remotePort}` : 'no tuple'}` : undefined,
							source: owner.get(c.producerId),
							paused: c.paused,
							producerPaused: c.producerPaused,
							currentLayers: c.currentLayers,
							score: c.score.score,
							availableOutgoingBitrate: bwe?.availableOutgoingBitrate,
							sentPackets: await packets(c, 'outbound-rtp'),
							producerReceivedPackets: await packets(registry.get('producer', c.producerId)?.handle, 'inbound-rtp'),
							// Loss, repair and key-frame requests on both sides of the worker.
							consumerStats: streamStats(await c.getStats()),
							producerStats: streamStats((await registry.get('producer', c.producerId)?.handle.getStats()) ?? []),
						};
					}),
				);
			}
			case 'leaks':
				return leaks();
			case 'close':
				await demo.close();
				setImmediate(() => process.exit(0));
				return undefined;
		}
	};

	process.on('message', ({ seq, request }: { seq: number; request: ChildRequest }) => {
		handle(request).then(
			(value) => process.send?.({ seq, ok: true, value } satisfies ChildReply),
			(error: unknown) => process.send?.({ seq, ok: false, error: error instanceof Error ? error.message : String(error) } satisfies ChildReply),
		);
	});
	process.on('disconnect', () => void demo.close().finally(() => process.exit(0)));
	process.send?.({ seq: 0, ok: true, value: demo.url } satisfies ChildReply);
}

main().catch((error: unknown) => {
	log.fatal({ err: error }, 'the demo under test did not start');
	process.exit(1);
});

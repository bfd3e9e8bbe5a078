import type { types } from 'mediasoup';
import type { Registry } from '../observe/registry';
import type { MigrationHooks } from './hooks';
import { ActionError } from './outcome';

/** The room's media codecs for routers Foresight creates itself; undefined = copy them from a router of the room. */
export type MediaCodecsOption = types.RouterRtpCodecCapability[] | ((roomId: string) => types.RouterRtpCodecCapability[] | undefined);

/**
 * One router per (room, worker), found by `appData.roomId` or remembered from the
 * app's `routerFor` hook, and created on demand. Concurrent requests for the same
 * pair share one creation, so a burst of joins never opens two routers.
 */
export class RoomRouters {
	/** Routers the hook returned without appData.roomId. */
	private readonly remembered = new Map<string, string>();
	private readonly creating = new Map<string, Promise<types.Router>>();

	constructor(
		private readonly registry: Registry,
		private readonly hooks: Pick<MigrationHooks, 'routerFor'>,
		private readonly mediaCodecs: MediaCodecsOption | undefined,
	) {}

	roomOf(router: types.Router): string | undefined {
		const roomId = (router.appData as Record<string, unknown>).roomId;
		return typeof roomId === 'string' ? roomId : this.remembered.get(router.id);
	}

	find(roomId: string, workerId: string): types.Router | undefined {
		for (const id of this.remembered.keys()) if (!this.registry.has(id)) this.remembered.delete(id);
		for (const node of this.registry.childrenOf(workerId, 'router')) {
			if (!node.handle.closed && this.roomOf(node.handle) === roomId) return node.handle;
		}
		return undefined;
	}

	async routerFor(roomId: string, workerId: string): Promise<{ router: types.Router; created: boolean }> {
		const found = this.find(roomId, workerId);
		if (found) return { router: found, created: false };
		const key = `${roomId}\0${workerId}`;
		let creation = this.creating.get(key);
		if (creation) return { router: await creation, created: false };
		creation = this.create(roomId, workerId).finally(() => this.creating.delete(key));
		this.creating.set(key, creation);
		return { router: await creation, created: true };
	}

	private async create(roomId: string, workerId: string): Promise<types.Router> {
		const worker = this.registry.get('worker', workerId)?.handle;
		if (!worker || worker.closed) throw new ActionError('notFound', `worker ${workerId} is not known or closed`);
		if (this.hooks.routerFor) {
			const router = await this.hooks.routerFor(roomId, worker);
			const node = this.registry.get('router', router.id);
			if (router.closed || node?.workerId !== workerId) {
				throw new ActionError('noRouter', `routerFor(${roomId}) returned a router that is closed or not on worker ${workerId}`);
			}
			if (this.roomOf(router) !== roomId) this.remembered.set(router.id, roomId);
			return router;
		}
		const mediaCodecs = this.codecsOf(roomId);
		if (!mediaCodecs) {
			throw new ActionError('noRouter', `no media codecs for room ${roomId}: give options.mediaCodecs or the routerFor hook`);
		}
		return worker.createRouter({ mediaCodecs, appData: { roomId } });
	}

	/** Copies the codecs of an existing router of the room, so pipes between them always match. */
	private codecsOf(roomId: string): types.RouterRtpCodecCapability[] | undefined {
		const given = typeof this.mediaCodecs === 'function' ? this.mediaCodecs(roomId) : this.mediaCodecs;
		if (given) return given;
		for (const node of this.registry.all('router')) {
			if (node.handle.closed || this.roomOf(node.handle) !== roomId) continue;
			const codecs = node.handle.rtpCapabilities.codecs ?? [];
			return codecs
				.filter((c) => !c.mimeType.toLowerCase().endsWith('/rtx'))
				.map(({ kind, mimeType, preferredPayloadType, clockRate, channels, parameters, rtcpFeedback }) => ({
					kind,
					mimeType,
					preferredPayloadType,
					clockRate,
					...(channels !== undefined ? { channels } : {}),
					...(parameters !== undefined ? { parameters } : {}),
					...(rtcpFeedback !== undefined ? { rtcpFeedback } : {}),
				}));
		}
		return undefined;
	}
}

/**
 * Payload taps: one DirectTransport per router, and on it a paused consumer per
 * profiled producer (resumed only for a tap window or a resolution probe) and a
 * data consumer per data producer. Tapped packets go to whichever handler the
 * stream's tap has at the time (the audio tap's or a probe's).
 */
import { performance } from 'node:perf_hooks';
import type { types } from 'mediasoup';
import { INTERNAL_APPDATA } from '../observe/internal';
import type { DataProducerNode, ProducerNode, Registry } from '../observe/registry';
import { isStringPpid } from './features/dataMessages';
import { parseRtp } from './features/rtp';
import type { ProfilerMeter } from './meter';
import type { ProfiledStream } from './stream';

const AUDIO_LEVEL_URI = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';
/** The largest message a tap carries: a data message, or an RTP packet with headroom. */
const TAP_MESSAGE_BYTES = 262_144;

export type TappedRtp = NonNullable<ReturnType<typeof parseRtp>>;

export interface TapState {
	consumer?: types.Consumer | types.DataConsumer;
	/** Where tapped RTP packets go (set by the audio tap or the resolution probe). */
	onPacket?: (rtp: TappedRtp) => void;
	/** When the audio tap's last window opened (0: none yet). */
	openedAtMs?: number;
	/** Identifies the audio tap's current chain of cycles. */
	chain?: number;
	/** Opens an audio tap window now and restarts the cycle from it. */
	restart?: () => void;
}

export interface TapOptions {
	tapEveryMs: number;
	tapWindowMs: number;
}

export class Taps {
	private readonly transports = new Map<string, Promise<types.DirectTransport | undefined>>();

	constructor(
		private readonly registry: Registry,
		private readonly options: TapOptions,
		private readonly meter: ProfilerMeter,
	) {}

	/** The producer's paused tap consumer, created on first use; undefined if it cannot be (closed, failed: counted). */
	async consumerOf(s: ProfiledStream, node: ProducerNode): Promise<types.Consumer | undefined> {
		const state = (s.tap ??= {});
		if (state.consumer) return state.consumer as types.Consumer;
		const transport = await this.transport(node.routerId);
		const router = this.registry.get('router', node.routerId)?.handle;
		if (!transport || !router || transport.closed || node.handle.closed) return undefined;
		try {
			this.meter.request('tap', node.id);
			const consumer = await transport.consume({
				producerId: node.id,
				rtpCapabilities: router.rtpCapabilities,
				paused: true,
				appData: INTERNAL_APPDATA,
			});
			if (!s.live) {
				consumer.close();
				return undefined;
			}
			state.consumer = consumer;
			consumer.on('rtp', (packet: Buffer) => {
				const t0 = performance.now();
				this.meter.notification('tapRtp');
				const rtp = state.onPacket && parseRtp(packet);
				if (rtp) state.onPacket?.(rtp);
				this.meter.ownSince(t0);
			});
			return consumer;
		} catch (error) {
			this.meter.swallowed('tapConsume', error, { producerId: node.id }, node.handle.closed);
			return undefined;
		}
	}

	/** Routes the stream's tapped packets to `handler` (undefined: dropped). */
	onPacket(s: ProfiledStream, handler: ((rtp: TappedRtp) => void) | undefined): void {
		(s.tap ??= {}).onPacket = handler;
	}

	/** Audio: resume the tap for tapWindowMs every tapEveryMs; Opus TOC and audio levels. */
	async startAudio(s: ProfiledStream, node: ProducerNode): Promise<void> {
		const consumer = await this.consumerOf(s, node);
		if (!consumer) return;
		const levelId = consumer.rtpParameters.headerExtensions?.find((h) => h.uri === AUDIO_LEVEL_URI)?.id;
		this.onPacket(s, (rtp) => s.acc.addAudioPacket(Date.now(), rtp.payload, levelId !== undefined ? rtp.extensions.get(levelId) : undefined));
		const state = (s.tap ??= {});
		state.chain = 0;
		const cycle = (chain: number): void => {
			if (consumer.closed || !s.live || chain !== state.chain) return;
			state.openedAtMs = Date.now();
			this.switchTap(consumer, node.id, true);
			s.timers.later(this.options.tapWindowMs, () => this.switchTap(consumer, node.id, false));
			s.timers.later(this.options.tapEveryMs, () => cycle(chain));
		};
		state.restart = () => cycle((state.chain = (state.chain ?? 0) + 1));
		cycle(state.chain);
	}

	/**
	 * An audio stream entered the fast tier: its next tap window opens now unless one opened
	 * within `withinMs` or is still open.
	 */
	hurry(s: ProfiledStream, withinMs: number): void {
		const state = s.tap;
		if (!state?.restart || state.openedAtMs === undefined) return;
		const since = Date.now() - state.openedAtMs;
		if (since < withinMs || since < this.options.tapWindowMs) return;
		state.restart();
	}

	/** Data producers: a direct data consumer sees every message (sizes, string share, keywords). */
	async startData(s: ProfiledStream, node: DataProducerNode): Promise<void> {
		const transport = await this.transport(node.routerId);
		if (!transport || transport.closed || node.handle.closed) return;
		try {
			this.meter.request('tap', node.id);
			const dc = await transport.consumeData({ dataProducerId: node.id, appData: INTERNAL_APPDATA });
			if (!s.live) {
				dc.close();
				return;
			}
			(s.tap ??= {}).consumer = dc;
			dc.on('message', (message: Buffer, ppid: number) => {
				// PPIDs 56/57 are WebRTC's empty string/binary messages (one placeholder byte on the wire).
				const t0 = performance.now();
				this.meter.notification('tapData');
				const empty = ppid === 56 || ppid === 57;
				const text = isStringPpid(ppid) ? (empty ? '' : message.toString('utf8')) : undefined;
				s.acc.addDataMessage(Date.now(), empty ? 0 : message.length, text);
				this.meter.ownSince(t0);
			});
		} catch (error) {
			this.meter.swallowed('tapConsumeData', error, { dataProducerId: node.id }, node.handle.closed);
		}
	}

	/** The stream is forgotten: its tap consumer goes with it. */
	release(s: ProfiledStream): void {
		const c = s.tap?.consumer;
		if (c && !c.closed) c.close();
	}

	/** Closes every router's tap transport (the profiler stops). */
	async closeAll(): Promise<void> {
		const transports = await Promise.all(this.transports.values());
		this.transports.clear();
		for (const t of transports) if (t && !t.closed) t.close();
	}

	private switchTap(consumer: types.Consumer, producerId: string, on: boolean): void {
		this.meter.request('tap', producerId);
		void (on ? consumer.resume() : consumer.pause()).catch((error: unknown) => this.meter.swallowed('tapSwitch', error, { producerId }, consumer.closed));
	}

	private transport(routerId: string): Promise<types.DirectTransport | undefined> {
		let t = this.transports.get(routerId);
		if (!t) {
			const router = this.registry.get('router', routerId)?.handle;
			if (router) {
				this.meter.request('tap', routerId);
				t = router
					.createDirectTransport({ maxSendMessageSize: TAP_MESSAGE_BYTES, maxReceiveMessageSize: TAP_MESSAGE_BYTES, appData: INTERNAL_APPDATA })
					.catch((error: unknown) => (this.meter.swallowed('tapTransport', error, { routerId }, router.closed), undefined));
			} else t = Promise.resolve(undefined);
			this.transports.set(routerId, t);
		}
		return t;
	}
}

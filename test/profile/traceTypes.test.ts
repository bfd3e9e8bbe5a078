import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { attach, type Foresight } from '../../plugin';
import { SharedTraceTypes } from '../../plugin/profile/traceTypes';
import { MEDIA_CODECS } from '../../training/media/rig';

async function enabledTypes(producer: types.Producer): Promise<string[]> {
	return [...(await producer.dump()).traceEventTypes].sort();
}

async function videoProducer(router: types.Router): Promise<types.Producer> {
	const transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
	return transport.produce({
		kind: 'video',
		rtpParameters: { codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000 }], encodings: [{ ssrc: 1111 }] },
	});
}

describe('trace types shared between the app and the profiler (real worker)', () => {
	let worker: types.Worker;
	let router: types.Router;
	beforeAll(async () => {
		worker = await mediasoup.createWorker({ logLevel: 'warn' });
		router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
	});
	afterAll(() => worker.close());

	test("the worker gets the union of both; release leaves the app's own", async () => {
		const producer = await videoProducer(router);
		const shared = new SharedTraceTypes(producer);
		await shared.set(['keyframe']);
		await producer.enableTraceEvent(['nack', 'pli']);
		expect(await enabledTypes(producer)).toEqual(['keyframe', 'nack', 'pli']);
		await shared.set(['keyframe', 'rtp']);
		expect(await enabledTypes(producer)).toEqual(['keyframe', 'nack', 'pli', 'rtp']);
		await shared.set(['keyframe']);
		// The app switching a type off does not take the profiler's with it.
		await producer.enableTraceEvent(['pli']);
		expect(await enabledTypes(producer)).toEqual(['keyframe', 'pli']);
		await shared.release();
		expect(await enabledTypes(producer)).toEqual(['pli']);
		// After release the app's calls go straight to mediasoup again.
		expect(Object.prototype.hasOwnProperty.call(producer, 'enableTraceEvent')).toBe(false);
		await producer.enableTraceEvent(['fir']);
		expect(await enabledTypes(producer)).toEqual(['fir']);
		producer.close();
	});

	test("Foresight's profiler adds its types to the app's and restores them on detach", async () => {
		const foresight: Foresight = attach(mediasoup, { useEnv: false, logLevel: 'silent' });
		const w = await mediasoup.createWorker({ logLevel: 'warn' });
		try {
			const r = await w.createRouter({ mediaCodecs: MEDIA_CODECS });
			const producer = await videoProducer(r);
			await producer.enableTraceEvent(['nack']);
			// The profiler keeps its keyframe trace on a video producer.
			for (let i = 0; i < 50 && !(await enabledTypes(producer)).includes('keyframe'); i++) await new Promise((res) => setTimeout(res, 20));
			expect(await enabledTypes(producer)).toEqual(expect.arrayContaining(['keyframe', 'nack']));
			await foresight.detach();
			for (let i = 0; i < 50 && (await enabledTypes(producer)).length > 1; i++) await new Promise((res) => setTimeout(res, 20));
			expect(await enabledTypes(producer)).toEqual(['nack']);
		} finally {
			await foresight.detach();
			w.close();
		}
	});
});

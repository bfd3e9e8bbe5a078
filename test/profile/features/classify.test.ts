import { classifyVideoSource, dataTypeDistribution } from '../../../plugin/profile/features/classify';
import { connectionProfileSchema, PROFILE_SCHEMA_VERSION } from '../../../plugin/profile/schema';

describe('classifyVideoSource', () => {
	it('believes appData.source when the app provides it', () => {
		expect(classifyVideoSource({ appDataSource: 'screen', fps: 30 })).toEqual({ dataType: 'screen', confidence: 1, from: 'appData' });
		expect(classifyVideoSource({ appDataSource: 'webcam', fps: 2 })).toEqual({ dataType: 'video', confidence: 1, from: 'appData' });
	});

	it('infers a camera: 720p30, smooth frame sizes', () => {
		const v = classifyVideoSource({ appDataSource: 42, width: 1280, height: 720, fps: 30, burstiness: 0.05, frameBytes: { p50: 4000, p95: 7000 } });
		expect(v).toMatchObject({ dataType: 'video', from: 'inferred' });
		expect(v.confidence).toBeGreaterThan(0.5);
	});

	it('infers a screen share: low fps, high resolution, odd aspect, static with bursts', () => {
		const v = classifyVideoSource({ width: 1920, height: 1200, fps: 5, burstiness: 0.9, frameBytes: { p50: 300, p95: 40_000 } });
		expect(v).toMatchObject({ dataType: 'screen', from: 'inferred' });
		expect(v.confidence).toBeGreaterThan(0.8);
	});

	it('decides on partial evidence and defaults to camera video without any', () => {
		expect(classifyVideoSource({ fps: 3, burstiness: 0.8 }).dataType).toBe('screen');
		expect(classifyVideoSource({ fps: 30 }).dataType).toBe('video');
		expect(classifyVideoSource({})).toEqual({ dataType: 'video', confidence: 0, from: 'default' });
	});
});

describe('dataTypeDistribution', () => {
	it('gives byte shares over every data type, summing to 1, valid for the connection schema', () => {
		const distribution = dataTypeDistribution([
			{ dataType: 'video', bytes: 600 },
			{ dataType: 'audio', bytes: 100 },
			{ dataType: 'video', bytes: 200 },
			{ dataType: 'text', bytes: 100 },
			{ dataType: 'binary', bytes: 0 },
		]);
		expect(distribution).toEqual({ video: 0.8, screen: 0, audio: 0.1, text: 0.1, binary: 0 });
		const profile = {
			schemaVersion: PROFILE_SCHEMA_VERSION,
			ts: 0,
			transportId: 't',
			workerId: 'w',
			routerId: 'r',
			transportType: 'webrtc' as const,
			recvBitrateBps: 0,
			sendBitrateBps: 0,
			distribution,
			streamIds: [],
		};
		expect(connectionProfileSchema.safeParse(profile).success).toBe(true);
	});

	it('is all zeros when no bytes flowed and ignores invalid counts', () => {
		expect(dataTypeDistribution([{ dataType: 'audio', bytes: Number.NaN }, { dataType: 'screen', bytes: -1 }])).toEqual({ video: 0, screen: 0, audio: 0, text: 0, binary: 0 });
	});
});

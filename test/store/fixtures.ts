import type { ConnectionProfile, StreamProfile, WorkerLoadSample } from '../../plugin/profile/schema';
import type { AllocationAction } from '../../plugin/store/types';

/**
 * Deterministic, schema-valid records covering every optional part of the schema
 * (video with layers, audio with opus details, data with keyword counts), with
 * values that vary by index so a read-back mismatch cannot hide behind constants.
 */
const HEIGHTS = [180, 360, 720, 1080] as const;

export function streamProfile(i: number, ts: number, workerId = `w${i % 3}`): StreamProfile {
	const base = {
		schemaVersion: 1 as const,
		ts,
		streamId: `stream-${i}`,
		workerId,
		routerId: `router-${i % 5}`,
		transportId: `transport-${i}`,
		flow: {
			bitrateBps: 100_000 + i * 1234.5 + (ts % 997),
			packetRate: 50 + (i % 40) + 0.25,
			lossFraction: ((i * 7) % 100) / 1000,
			jitterMs: 1.5 + (i % 9) / 3,
			rttMs: i % 4 === 0 ? undefined : 20 + (i % 13),
			nackCount: i % 11,
			pliCount: i % 3,
			firCount: 0,
			score: 10 - (i % 3),
		},
		variance: {
			windows: [
				{ windowS: 1, meanBps: 1e5 + i, stdBps: 1e4 + i / 3, cv: 0.1 + i / 1e4 },
				{ windowS: 10, meanBps: 1e5 + i * 2, stdBps: 2e4, cv: 0.2 },
			],
			burstiness: (i % 10) / 10,
		},
		complexity: 0.1 + (i % 17) / 7,
		entropy: (i % 9) / 9,
	};
	switch (i % 3) {
		case 0: {
			const height = HEIGHTS[(i / 3) % HEIGHTS.length | 0]!;
			return {
				...base,
				entity: 'producer',
				kind: 'video',
				dataType: i % 2 === 0 ? 'video' : 'screen',
				mimeType: i % 6 === 0 ? 'video/VP8' : 'video/H264',
				layers: [
					{ spatialLayer: 0, rid: 'r0', ssrc: 1000 + i, bitrateBps: 150_000.5, packetRate: 30, width: 320, height: 180, fps: 15, temporalLayers: 3, active: true },
					{ spatialLayer: 1, rid: 'r1', bitrateBps: 500_000, packetRate: 60, width: (height * 16) / 9, height, fps: 30, active: i % 5 !== 0 },
				],
				video: {
					width: (height * 16) / 9,
					height,
					fps: 29.97,
					activeLayers: 2,
					temporalLayers: 3,
					keyframesPerMin: 2 + (i % 4),
					frameBytes: { mean: 4000 + i, p50: 3500, p95: 12000.75 },
					sceneChanges: { count: i % 7, perMin: (i % 7) / 2, meanMagnitude: 0.3 },
				},
			};
		}
		case 1:
			return {
				...base,
				entity: 'consumer',
				producerId: `stream-${i - 1}`,
				kind: 'audio',
				dataType: 'audio',
				mimeType: 'audio/opus',
				layers: [],
				audio: { clockRate: 48000, channels: 2, opusBandwidth: 'FB', opusMode: 'CELT', frameMs: 20, dtx: i % 2 === 0, voiceActivity: 0.42 },
			};
		default:
			return {
				...base,
				entity: 'dataProducer',
				kind: 'data',
				dataType: i % 2 === 0 ? 'text' : 'binary',
				layers: [],
				data: { messagesPerS: 12.5, bytesPerS: 4000, meanBytes: 320, p95Bytes: 900, stringShare: 0.75, keywordCounts: { 'hello "world"': i % 3, 'a,b=c d': 1 } },
			};
	}
}

export function workerLoad(w: number, ts: number): WorkerLoadSample {
	return {
		ts,
		workerId: `w${w}`,
		pid: 4000 + w,
		cpuPct: 10 + w * 3.5 + (ts % 1000) / 100,
		rssBytes: 50_000_000 + w * 1_000_003 + (ts % 4096),
		routers: 1 + w,
		transports: 10 + w,
		producers: 5 + w,
		consumers: 20 + w,
		dataProducers: w,
		dataConsumers: 2 * w,
	};
}

export function connectionProfile(i: number, ts: number): ConnectionProfile {
	return {
		schemaVersion: 1,
		ts,
		transportId: `transport-${i}`,
		workerId: `w${i % 3}`,
		routerId: `router-${i % 5}`,
		transportType: i % 2 === 0 ? 'webrtc' : 'plain',
		recvBitrateBps: 1e6 + i,
		sendBitrateBps: 2e6 + i / 4,
		distribution: { video: 0.7, screen: 0, audio: 0.25, text: 0.05, binary: 0 },
		streamIds: [`stream-${i}`, `stream-${i + 1}`],
	};
}

export function allocationAction(i: number, ts: number): AllocationAction {
	return {
		ts,
		action: i % 2 === 0 ? 'migrate-producer' : 'pipe-to-worker',
		targetIds: [`stream-${i}`],
		workerId: `w${i % 3}`,
		toWorkerId: `w${(i + 1) % 3}`,
		reason: `predicted cpu ${80 + i}% > 75% "threshold", rising`,
		predictedBefore: { cpuPct: 80 + i, rssBytes: 6e7 },
		predictedAfter: { cpuPct: 60 + i / 2 },
		dryRun: i % 2 === 1,
	};
}

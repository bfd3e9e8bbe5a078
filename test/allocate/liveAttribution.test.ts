import { buildLiveSnapshot, type LiveConsumer, type LiveProducer, type LiveWorker } from '../../plugin/allocate/live';
import type { WorkerPrediction } from '../../plugin/predict/types';

const cpu = (cpuPct: number) => ({ cpuPct, rssBytes: 0, ingressBps: 0, egressBps: 0 });
const total = (mean: number) => ({ cpuPct: { mean, p95: mean + 1 }, rssBytes: { mean: 0, p95: 0 }, ingressBps: { mean: 0, p95: 0 }, egressBps: { mean: 0, p95: 0 } });

describe("live snapshot: the predictor's attribution on each consumer", () => {
	it('carries the first horizon\'s attributed CPU onto the consumer it names, and nothing where no prediction names it', () => {
		const prediction = {
			workerId: 'w0',
			predictor: 'test',
			horizons: { 5: { base: cpu(1), total: total(3) }, 15: { base: cpu(1), total: total(4) }, 30: { base: cpu(1), total: total(5) } },
			streams: [{ streamId: 'c1', transportId: 't', cost: { 5: cpu(0.4), 15: cpu(0.9), 30: cpu(1.5) } }],
		} as unknown as WorkerPrediction;
		const workers: LiveWorker[] = [{ id: 'w0', sample: undefined, prediction }];
		const producers = [{ id: 'p', workerId: 'w0', roomId: 'r', peerId: 'x', kind: 'video', activeSpeaker: false, seenAt: 0, profile: undefined }] as unknown as LiveProducer[];
		const consumer = (id: string) => ({ id, peerId: 'y', producerId: 'p', workerId: 'w0', priority: 100, pausedByManager: false, wanted: { spatial: 2, temporal: 2 }, current: { spatial: 2, temporal: 2 }, profile: undefined });
		const consumers = [consumer('c1'), consumer('c2')] as unknown as LiveConsumer[];
		const snapshot = buildLiveSnapshot({ nowMs: 1000, workers, producers, consumers });
		expect(snapshot.consumers.find((c) => c.id === 'c1')!.attributedPct).toBeCloseTo(0.4);
		expect(snapshot.consumers.find((c) => c.id === 'c2')!.attributedPct).toBeUndefined();
		const unpredicted = buildLiveSnapshot({ nowMs: 1000, workers: [{ id: 'w0', sample: undefined, prediction: undefined }], producers, consumers });
		expect(unpredicted.consumers.every((c) => c.attributedPct === undefined)).toBe(true);
	});
});

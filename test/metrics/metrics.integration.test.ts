import * as mediasoup from 'mediasoup';
import { Registry } from 'prom-client';
import { attach, METRICS, registerMetrics, type Foresight, type ForesightMetrics } from '../../plugin';
import { MEDIA_CODECS, startReceivingPeer, startSendingPeer, waitFor } from '../../training/media/rig';

/**
 * registerMetrics() on a real worker with real media: every metric of the METRICS table
 * is registered under its name, series carry the host and the worker's slot, a worker
 * killed and replaced keeps its slot's series, and unregister() leaves nothing behind.
 */
jest.setTimeout(60_000);

type Sample = { labels: Record<string, string | number>; value: number; metricName?: string };

describe('registerMetrics on a real worker', () => {
	let foresight: Foresight;
	let registry: Registry;
	let metrics: ForesightMetrics;

	beforeEach(() => {
		foresight = attach(mediasoup, { useEnv: false, logLevel: 'silent', loadSampleIntervalMs: 250, statsIntervalMs: 250 });
		registry = new Registry();
		metrics = registerMetrics(foresight, registry, { host: 'sfu-test' });
	});
	afterEach(async () => {
		metrics.unregister();
		await foresight.detach();
	});

	async function series(name: string): Promise<Sample[]> {
		const m = (await registry.getMetricsAsJSON()).find((x) => x.name === `foresight_${name}`);
		return (m?.values ?? []) as Sample[];
	}

	test('worker, prediction, action, decision, store and profiler series, labelled by host and slot', async () => {
		expect([...metrics.names].sort()).toEqual(Object.keys(METRICS).map((n) => `foresight_${n}`).sort());
		const named = await mediasoup.createWorker({ logLevel: 'warn', appData: { slot: 'edge' } });
		const worker = await mediasoup.createWorker({ logLevel: 'warn' });
		const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
		const send = await startSendingPeer(router, 50_000);
		const recv = await startReceivingPeer(router, [send.video, send.audio]);
		try {
			await waitFor(() => recv.sink.packets > 50, 10_000, 'media at the sink');
			await waitFor(() => foresight.predictions.length >= 2, 10_000, 'predictions for both workers');
			await foresight.sampleProfiles();

			const cpu = await series('worker_cpu_percent');
			expect(cpu.map((s) => s.labels).sort((a, b) => String(a.worker).localeCompare(String(b.worker)))).toEqual([
				{ host: 'sfu-test', worker: '0' },
				{ host: 'sfu-test', worker: 'edge' },
			]);
			expect((await series('worker_info')).map((s) => s.labels)).toContainEqual({ host: 'sfu-test', worker: '0', pid: String(worker.pid) });
			const entities = await series('worker_entities');
			expect(entities.find((s) => s.labels.worker === '0' && s.labels.kind === 'consumers')?.value).toBe(2);
			expect((await series('worker_rss_bytes')).every((s) => s.value > 1_000_000)).toBe(true);
			// A producer's first profile has no rate yet (one counter reading); a later round has.
			const ingress = async (): Promise<number> => (await series('worker_network_bps')).find((s) => s.labels.worker === '0' && s.labels.direction === 'ingress')?.value ?? 0;
			await waitFor(async () => (await ingress()) > 0, 10_000, 'ingress bitrate of worker 0');

			const predicted = await series('worker_predicted_cpu_percent');
			expect(new Set(predicted.filter((s) => s.labels.worker === '0').map((s) => `${s.labels.horizon_s}/${s.labels.stat}`))).toEqual(
				new Set(['5/mean', '5/p95', '15/mean', '15/p95', '30/mean', '30/p95']),
			);
			const forecasts = await series('predictions_total');
			expect(forecasts.map((s) => s.labels.horizon_s).sort()).toEqual(['15', '30', '5']);
			expect(forecasts.every((s) => s.value >= 2)).toBe(true);
			expect((await series('predictor_serving')).find((s) => s.labels.worker === '0')?.labels.predictor).toBe(foresight.predictions.find((p) => p.workerId === String(worker.pid))!.predictor);

			// An operator's action, audited and counted once (it is emitted again when its effect is measured).
			const consumerId = recv.consumers[0]!.id;
			await foresight.apply({ type: 'pauseConsumer', consumerId, workerId: String(worker.pid), reason: 'metrics test', predictedBeforePct: 10, predictedAfterPct: 9 });
			await foresight.allocateNow();
			const actions = await series('actions_total');
			expect(actions.find((s) => s.labels.type === 'pauseConsumer')).toMatchObject({ labels: { host: 'sfu-test', outcome: 'applied' }, value: 1 });
			const decisions = ((await registry.getMetricsAsJSON()).find((m) => m.name === 'foresight_decision_seconds')?.values ?? []) as Sample[];
			expect(decisions.find((s) => s.metricName === 'foresight_decision_seconds_count' && s.labels.kind === 'round')?.value).toBeGreaterThanOrEqual(1);

			expect((await series('store_backend')).map((s) => s.labels)).toEqual([{ host: 'sfu-test', backend: 'memory', state: 'ready' }]);
			expect((await series('store_written_points_total'))[0]?.value).toBeGreaterThan(0);
			expect((await series('store_dropped_points_total'))[0]?.value).toBe(0);
			const requests = await series('profiler_requests_total');
			expect(requests.find((s) => s.labels.kind === 'producerStats')?.value).toBeGreaterThan(0);
			expect((await series('profiler_cpu_seconds_total'))[0]?.value).toBeGreaterThan(0);
			const text = await registry.metrics();
			expect(text).toContain('# TYPE foresight_profiler_requests_total counter');
			expect(text).toContain('# TYPE foresight_decision_seconds histogram');

			// The worker dies; its replacement takes slot 0 again, with a new pid.
			const died = new Promise<Error>((r) => worker.once('died', r));
			process.kill(worker.pid, 'SIGKILL');
			await died;
			await waitFor(() => !foresight.registry.has(String(worker.pid)), 5000, 'dead worker forgotten');
			expect((await series('worker_info')).map((s) => s.labels.worker)).toEqual(['edge']);
			const replacement = await mediasoup.createWorker({ logLevel: 'warn' });
			try {
				await waitFor(() => foresight.registry.has(String(replacement.pid)), 5000, 'replacement registered');
				expect((await series('worker_info')).map((s) => s.labels).sort((a, b) => String(a.worker).localeCompare(String(b.worker)))).toEqual([
					{ host: 'sfu-test', worker: '0', pid: String(replacement.pid) },
					{ host: 'sfu-test', worker: 'edge', pid: String(named.pid) },
				]);
			} finally {
				replacement.close();
			}
		} finally {
			send.sender.stop();
			recv.sink.close();
			worker.close();
			named.close();
		}
	});

	test('unregister() removes every metric and listener', async () => {
		const before = ['workerLoad', 'profiles', 'workerDied', 'predictions', 'audit', 'decision'].map((e) => foresight.listenerCount(e as 'audit'));
		metrics.unregister();
		expect(await registry.getMetricsAsJSON()).toEqual([]);
		const after = ['workerLoad', 'profiles', 'workerDied', 'predictions', 'audit', 'decision'].map((e) => foresight.listenerCount(e as 'audit'));
		expect(after).toEqual(before.map((n) => n - 1));
		metrics = registerMetrics(foresight, registry);
		expect((await registry.getMetricsAsJSON()).length).toBe(Object.keys(METRICS).length);
	});
});

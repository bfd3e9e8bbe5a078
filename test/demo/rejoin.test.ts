import type { Browser, Page } from 'playwright-core';
import type { HealingEvent } from '../../plugin';
import { startDemo, type DemoServer } from '../../demo/server';
import { launchChromium } from './browser';

/**
 * A page whose worker dies re-joins on another worker by itself: Foresight heals
 * (replacement worker, admission, the demo's rejoinPeers hook), the page re-publishes
 * its camera and mic, plays the bot's video again and shows a short notice. Then the
 * degraded path: told to come back audio only, it publishes only its mic and
 * consumes only audio, and says so.
 */
jest.setTimeout(120_000);

interface PageState {
	peerId: string;
	joined: boolean;
	producers: Record<string, string>;
	rejoins: number;
	audioOnly: boolean;
	notice: string;
	errors: string[];
}

let demo: DemoServer;
let browser: Browser;

beforeAll(async () => {
	demo = await startDemo({ port: 0, workers: 2, logLevel: 'warn' }, {});
	browser = await launchChromium();
});

afterAll(async () => {
	await browser?.close();
	await demo?.close();
});

const stateOf = (page: Page): Promise<PageState> => page.evaluate(() => (window as unknown as { demo: PageState }).demo);
/** Frames the page's remote video elements have shown in total. */
const framesOf = (page: Page): Promise<number> =>
	page.evaluate(() => Array.from(document.querySelectorAll<HTMLVideoElement>('#remotes video')).reduce((s, v) => s + v.getVideoPlaybackQuality().totalVideoFrames, 0));

test('a page on a killed worker re-joins on another one; audio only when told so', async () => {
	const healing: HealingEvent[] = [];
	demo.foresight.on('healing', (e) => healing.push(e));
	await demo.bots.add();
	const page = await browser.newPage();
	await page.goto(`${demo.url}/?name=alice`);
	await page.waitForFunction(() => (window as unknown as { demo: PageState }).demo.joined, undefined, { timeout: 20_000 });
	await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLVideoElement>('#remotes video')).some((v) => v.videoWidth > 0), undefined, { timeout: 15_000 });
	const before = await stateOf(page);
	const camera = demo.foresight.registry.get('producer', before.producers.video!)!;
	const deadPid = Number(camera.workerId);

	process.kill(deadPid, 'SIGKILL');
	await page.waitForFunction(() => (window as unknown as { demo: PageState }).demo.rejoins >= 1, undefined, { timeout: 20_000 });
	const after = await stateOf(page);
	expect(after.errors).toEqual([]);
	expect(after.notice).toMatch(/^Reconnected to another media server$/);
	expect(await page.locator('#notice').isVisible()).toBe(true);
	// The camera was published again, on a live worker.
	expect(after.producers.video).toBeDefined();
	expect(after.producers.video).not.toBe(before.producers.video);
	const newCamera = demo.foresight.registry.get('producer', after.producers.video!);
	expect(newCamera).toBeDefined();
	expect(newCamera!.workerId).not.toBe(String(deadPid));
	// And the bot's video plays again.
	const frames = await framesOf(page);
	await page.waitForFunction((f) => Array.from(document.querySelectorAll<HTMLVideoElement>('#remotes video')).reduce((s, v) => s + v.getVideoPlaybackQuality().totalVideoFrames, 0) > f + 10, frames, { timeout: 15_000 });
	const healed = healing.find((e) => e.type === 'healed');
	expect(healed).toMatchObject({ workerId: String(deadPid), failed: 0, refused: 0 });
	expect(healed?.type === 'healed' && healed.rejoined).toBeGreaterThanOrEqual(1);
	expect(demo.workers.every((w) => !w.closed && w.pid !== deadPid)).toBe(true);
	expect(demo.workers).toHaveLength(2);

	// Degraded: its transports are gone (as with a dead worker) and it is to come back audio only.
	const peer = demo.room.peers.get(after.peerId)!;
	const lost = { transports: [...peer.transports.keys()], producers: [...peer.producers.keys()], consumers: [...peer.consumers.keys()], data: [...peer.dataProducers.keys()], dataConsumers: [...peer.dataConsumers.keys()] };
	for (const t of [...peer.transports.values()]) t.close();
	const router = peer.router!;
	await demo.room.rejoins.rejoin(peer, {
		peerId: peer.id,
		roomId: demo.room.id,
		router,
		workerId: String(router.appData.workerPid),
		mode: 'audioOnly',
		priority: 200,
		lostTransportIds: lost.transports,
		lostProducerIds: lost.producers,
		lostConsumerIds: lost.consumers,
		lostDataProducerIds: lost.data,
		lostDataConsumerIds: lost.dataConsumers,
	});
	// The server is done once the page's 'rejoined' request arrives; the page counts the re-join when the answer comes back.
	await page.waitForFunction(() => (window as unknown as { demo: PageState }).demo.rejoins >= 2, undefined, { timeout: 5_000 });
	const degraded = await stateOf(page);
	expect(degraded.rejoins).toBe(2);
	expect(degraded.audioOnly).toBe(true);
	expect(degraded.notice).toMatch(/audio only/);
	expect(degraded.errors).toEqual([]);
	expect([...peer.producers.values()].map((p) => p.kind)).toEqual(['audio']);
	await page.waitForFunction(() => document.querySelectorAll('#remotes video').length === 0 && document.querySelectorAll('#remotes audio').length > 0, undefined, { timeout: 10_000 });
	expect([...peer.consumers.values()].every((c) => c.kind === 'audio')).toBe(true);
	// The server holds it to audio only: a new video producer is not offered to it.
	await demo.bots.add();
	await page.waitForTimeout(1500);
	expect([...peer.consumers.values()].every((c) => c.kind === 'audio')).toBe(true);
	expect((await stateOf(page)).errors).toEqual([]);
});

export default async function globalTeardown(): Promise<void> {
	await globalThis.__FORESIGHT_INFLUXD__?.destroy();
}

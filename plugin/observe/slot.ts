/**
 * A worker's slot: a label that outlives the worker's process, so a dashboard's series
 * and an operator's alerts follow "worker 2" across restarts instead of a new pid each
 * time. The app names it with `appData.slot` (or `appData.name`) when it creates the
 * worker; otherwise the lowest index no live worker holds, so a replacement created
 * after a death takes the dead worker's index.
 */
export function chooseWorkerSlot(appData: unknown, taken: ReadonlySet<string>): { slot: string; conflict?: string } {
	const named = appSlot(appData);
	if (named !== undefined && !taken.has(named)) return { slot: named };
	let index = 0;
	while (taken.has(String(index))) index++;
	return named === undefined ? { slot: String(index) } : { slot: String(index), conflict: named };
}

function appSlot(appData: unknown): string | undefined {
	if (!appData || typeof appData !== 'object') return undefined;
	const { slot, name } = appData as { slot?: unknown; name?: unknown };
	for (const v of [slot, name]) {
		if (typeof v === 'string' && v.trim() !== '') return v.trim();
		if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return String(v);
	}
	return undefined;
}

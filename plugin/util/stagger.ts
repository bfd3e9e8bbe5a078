/**
 * When a per-entity periodic task (a getStats() call, a statistics rebuild) is next due.
 * The first time at a random phase within the period, so entities created together (a room
 * joining) spread their work over it instead of all falling due in the same round; then
 * every period.
 */
export function nextDueMs(atMs: number, everyMs: number, first: boolean): number {
	return atMs + (first ? Math.random() * everyMs : everyMs);
}

/**
 * appData key marking entities Foresight creates for itself (payload taps, pipe
 * helpers). They are kept out of the registry — it mirrors the app's graph —
 * while their cost still shows in the worker's measured CPU.
 */
export const INTERNAL_APPDATA_KEY = '__foresightInternal';

export const INTERNAL_APPDATA = { [INTERNAL_APPDATA_KEY]: true } as const;

export function isInternal(entity: { appData?: unknown }): boolean {
	const appData = entity.appData as Record<string, unknown> | undefined;
	return appData?.[INTERNAL_APPDATA_KEY] === true;
}

/**
 * Optional peer dependencies: an app installs them only for the feature that needs them,
 * so they are required at first use, never at import. Ranges as in package.json's
 * peerDependencies (a test keeps the two in step).
 */
export const OPTIONAL_PEERS = {
	'@tensorflow/tfjs': '^4.22.0',
	influx: '^5.12.0',
	'prom-client': '^15.1.3',
} as const;

export type OptionalPeer = keyof typeof OPTIONAL_PEERS;

/** A feature was used whose optional peer dependency is not installed. */
export class MissingPeerError extends Error {
	readonly code = 'FORESIGHT_MISSING_PEER';

	constructor(
		/** The npm package to install. */
		readonly packageName: OptionalPeer,
		/** What needed it, e.g. "InfluxStore (InfluxDB 1.x)". */
		readonly feature: string,
	) {
		super(`${feature} needs the optional peer dependency ${packageName}, which is not installed: npm install ${packageName}@"${OPTIONAL_PEERS[packageName]}"`);
		this.name = 'MissingPeerError';
	}
}

/** require() of an optional peer; a MissingPeerError naming the package when it (not one of its own dependencies) is absent. */
export function requirePeer<T>(packageName: OptionalPeer, feature: string, load: (id: string) => unknown = require): T {
	try {
		return load(packageName) as T;
	} catch (error) {
		if (isMissing(error, packageName)) throw new MissingPeerError(packageName, feature);
		throw error;
	}
}

/** Whether a require() failure means `id` itself is absent (a broken install of it fails differently). */
export function isMissing(error: unknown, id: string): boolean {
	const e = error as { code?: string; message?: string } | undefined;
	return e?.code === 'MODULE_NOT_FOUND' && typeof e.message === 'string' && e.message.includes(`'${id}'`);
}

import type * as Tf from '@tensorflow/tfjs';
import { isMissing, requirePeer } from '../util/optionalPeer';

export type TfModule = typeof Tf;
export type TfFlavour = 'tfjs-node' | 'tfjs';

export interface LoadedTf {
	tf: TfModule;
	flavour: TfFlavour;
	/** Why an installed @tensorflow/tfjs-node was not used (it failed the probe), if it was not. */
	nodeRejected?: string;
}

let loaded: LoadedTf | undefined;

/**
 * TensorFlow.js, loaded on first use rather than at import: the native tfjs-node binding
 * when the app installed it and it passes a real operation, else pure JS (the optional
 * peer @tensorflow/tfjs). The probe is needed because loading succeeding proves little:
 * tfjs-node 4.22 calls util.isNullOrUndefined, which Node 23 removed, and that only
 * fails once an op runs. PROD mode silences tfjs' console advice to install tfjs-node
 * (plugin code never prints).
 */
export function loadTf(load: (id: string) => unknown = require): LoadedTf {
	if (loaded) return loaded;
	let nodeRejected: string | undefined;
	try {
		const tf = load('@tensorflow/tfjs-node') as TfModule;
		probe(tf);
		loaded = { tf, flavour: 'tfjs-node' };
		return loaded;
	} catch (error) {
		if (!isMissing(error, '@tensorflow/tfjs-node')) nodeRejected = (error as Error).message ?? String(error);
	}
	const tf = requirePeer<TfModule>('@tensorflow/tfjs', 'Foresight’s trained models and retraining (modelDir, retraining)', load);
	if (nodeRejected !== undefined && tf.findBackend('tensorflow')) {
		// tfjs-node registered its native backend in the tfjs engine both packages share; it would still be picked.
		tf.removeBackend('tensorflow');
		// The cpu backend initializes synchronously, so it is selected before this returns.
		void tf.setBackend('cpu');
	}
	probe(tf);
	loaded = { tf, flavour: 'tfjs', ...(nodeRejected !== undefined ? { nodeRejected } : {}) };
	return loaded;
}

/** A small dense-layer forward pass, the operations a served model runs; throws unless the backend computes it right. */
function probe(tf: TfModule): void {
	tf.env().set('PROD', true);
	// Initializes the best registered backend now, so getBackend() names it.
	tf.backend();
	const out = tf.tidy(() => tf.relu(tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).add(tf.scalar(-1))).dataSync());
	if (out.length !== 1 || out[0] !== 10) throw new Error(`tfjs probe computed ${Array.from(out).join(',')} instead of 10`);
}

/** For tests: forget the loaded module so loadTf() probes again. */
export function resetTfForTests(): void {
	loaded = undefined;
}

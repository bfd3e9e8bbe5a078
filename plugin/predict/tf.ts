import type * as Tf from '@tensorflow/tfjs';

export type TfModule = typeof Tf;
export type TfFlavour = 'tfjs-node' | 'tfjs';

let loaded: { tf: TfModule; flavour: TfFlavour } | undefined;

/**
 * TensorFlow.js, loaded on first use rather than at import: the native tfjs-node
 * binding when it is installed and built, else pure JS. PROD mode silences tfjs'
 * console advice to install tfjs-node (plugin code never prints).
 */
export function loadTf(): { tf: TfModule; flavour: TfFlavour } {
	if (loaded) return loaded;
	let tf: TfModule;
	let flavour: TfFlavour;
	try {
		tf = require('@tensorflow/tfjs-node') as TfModule;
		flavour = 'tfjs-node';
	} catch {
		tf = require('@tensorflow/tfjs') as TfModule;
		flavour = 'tfjs';
	}
	tf.env().set('PROD', true);
	// Initializes the best registered backend now, so getBackend() names it.
	tf.backend();
	loaded = { tf, flavour };
	return loaded;
}

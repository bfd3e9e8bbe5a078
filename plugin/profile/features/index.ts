/**
 * Pure feature extraction for connection profiles: payload parsers, windows,
 * variance, spikes, entropy, complexity and classification. No I/O; every
 * parser returns undefined on malformed input instead of throwing.
 */
export * from './audioLevel';
export * from './classify';
export * from './complexity';
export * from './dataMessages';
export * from './entropy';
export * from './frames';
export * from './h264';
export * from './layerFrames';
export * from './opus';
export * from './payload';
export * from './rtp';
export * from './spikes';
export * from './stats';
export * from './variance';
export * from './vp8';
export * from './vp9';
export * from './windows';
export { BitReader } from './bits';

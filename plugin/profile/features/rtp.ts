/**
 * RTP fixed header (RFC 3550 §5.1) and header extensions (RFC 8285), parsed from
 * the bytes a tap or trace hands over. Malformed input yields undefined, never an
 * exception: the sampler runs on untrusted network data.
 */

/** RFC 8285 §4.2: one-byte header elements. */
export const ONE_BYTE_EXTENSION_PROFILE = 0xbede;
/** RFC 8285 §4.3: two-byte header elements; the low 4 bits ("appbits") are free. */
export const TWO_BYTE_EXTENSION_PROFILE_MASK = 0xfff0;
export const TWO_BYTE_EXTENSION_PROFILE = 0x1000;

const FIXED_HEADER_BYTES = 12;

export interface RtpPacket {
	version: 2;
	padding: boolean;
	marker: boolean;
	payloadType: number;
	sequenceNumber: number;
	timestamp: number;
	ssrc: number;
	csrcs: number[];
	/** The 16-bit "defined by profile" field when the X bit is set. */
	extensionProfile?: number;
	/** Extension elements by id (RFC 8285); empty for other extension profiles. Values are views into the input. */
	extensions: Map<number, Uint8Array>;
	payloadOffset: number;
	/** Trailing padding bytes, including the count byte itself. */
	paddingLength: number;
	/** View into the input: the bytes between the header and the padding. */
	payload: Uint8Array;
}

export function parseRtp(packet: Uint8Array): RtpPacket | undefined {
	if (packet.length < FIXED_HEADER_BYTES) return undefined;
	const b0 = packet[0] as number;
	const b1 = packet[1] as number;
	if (b0 >> 6 !== 2) return undefined;
	const hasPadding = (b0 & 0x20) !== 0;
	const hasExtension = (b0 & 0x10) !== 0;
	const csrcCount = b0 & 0x0f;
	const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);

	let offset = FIXED_HEADER_BYTES + 4 * csrcCount;
	if (offset > packet.length) return undefined;
	const csrcs: number[] = [];
	for (let i = 0; i < csrcCount; i++) csrcs.push(view.getUint32(FIXED_HEADER_BYTES + 4 * i));

	let extensionProfile: number | undefined;
	let extensions = new Map<number, Uint8Array>();
	if (hasExtension) {
		if (offset + 4 > packet.length) return undefined;
		extensionProfile = view.getUint16(offset);
		const extensionBytes = 4 * view.getUint16(offset + 2);
		const start = offset + 4;
		offset = start + extensionBytes;
		if (offset > packet.length) return undefined;
		const parsed = parseExtensionElements(packet.subarray(start, offset), extensionProfile);
		if (!parsed) return undefined;
		extensions = parsed;
	}

	let paddingLength = 0;
	if (hasPadding) {
		paddingLength = packet[packet.length - 1] as number;
		if (paddingLength === 0 || offset + paddingLength > packet.length) return undefined;
	}

	return {
		version: 2,
		padding: hasPadding,
		marker: (b1 & 0x80) !== 0,
		payloadType: b1 & 0x7f,
		sequenceNumber: view.getUint16(2),
		timestamp: view.getUint32(4),
		ssrc: view.getUint32(8),
		csrcs,
		extensionProfile,
		extensions,
		payloadOffset: offset,
		paddingLength,
		payload: packet.subarray(offset, packet.length - paddingLength),
	};
}

/**
 * Elements of an RFC 8285 extension block. Unknown profiles give an empty map (the
 * packet is still valid RTP); an element overrunning the block makes the packet invalid.
 */
function parseExtensionElements(block: Uint8Array, profile: number): Map<number, Uint8Array> | undefined {
	const elements = new Map<number, Uint8Array>();
	const oneByte = profile === ONE_BYTE_EXTENSION_PROFILE;
	const twoByte = (profile & TWO_BYTE_EXTENSION_PROFILE_MASK) === TWO_BYTE_EXTENSION_PROFILE;
	if (!oneByte && !twoByte) return elements;
	let i = 0;
	while (i < block.length) {
		const first = block[i] as number;
		if (first === 0) {
			i++; // padding between elements
			continue;
		}
		let id: number;
		let length: number;
		if (oneByte) {
			id = first >> 4;
			// RFC 8285 §4.2: id 15 is reserved and ends processing of the block;
			// id 0 is only valid as a whole zero (padding) byte.
			if (id === 15) break;
			if (id === 0) return undefined;
			length = (first & 0x0f) + 1;
			i += 1;
		} else {
			if (i + 1 >= block.length) return undefined;
			id = first;
			length = block[i + 1] as number;
			i += 2;
		}
		if (i + length > block.length) return undefined;
		// The first occurrence wins; RFC 8285 forbids repeats, so later ones are noise.
		if (!elements.has(id)) elements.set(id, block.subarray(i, i + length));
		i += length;
	}
	return elements;
}

/** Serial-number distance b − a of 16-bit RTP sequence numbers (RFC 1982), in −32768..32767. */
export function seqDelta(a: number, b: number): number {
	return ((((b - a) & 0xffff) + 0x8000) & 0xffff) - 0x8000;
}

/** Signed distance b − a of 32-bit RTP timestamps, handling wrap-around. */
export function timestampDelta(a: number, b: number): number {
	return ((b - a) | 0);
}

/** The child side of SenderProcess: a Replayer without mediasoup, sending copies it is handed. */
import { decodeRecording } from '../record/format';
import { prepare, type PreparedRecording } from './prepared';
import { Replayer, type Publisher, type ReplayerOptions } from './replayer';
import type { SenderReply, SenderRequest } from './senderProcess';

const options = JSON.parse(process.argv[2] ?? '{}') as Pick<ReplayerOptions, 'seed' | 'tickMs'>;
const replayer = new Replayer(options);
const recordings = new Map<string, PreparedRecording>();
const copies = new Map<number, Publisher>();
let nextId = 1;

async function handle(message: SenderRequest): Promise<unknown> {
	switch (message.type) {
		case 'recording':
			recordings.set(message.name, prepare(decodeRecording(Buffer.from(message.encoded.buffer, message.encoded.byteOffset, message.encoded.byteLength))));
			return undefined;
		case 'publish': {
			const prepared = recordings.get(message.name);
			if (!prepared) throw new Error(`unknown recording ${message.name}`);
			const id = nextId++;
			copies.set(id, await replayer.adopt(prepared, message.copy));
			return id;
		}
		case 'start': {
			const copy = copies.get(message.id);
			if (!copy) throw new Error(`unknown copy ${message.id}`);
			replayer.start(copy);
			return undefined;
		}
		case 'unpublish': {
			const copy = copies.get(message.id);
			copies.delete(message.id);
			if (copy) replayer.unpublish(copy);
			return undefined;
		}
		case 'sinkPort':
			return replayer.sinkPort();
		case 'stats':
			return replayer.stats();
	}
}

process.on('message', ({ seq, message }: { seq: number; message: SenderRequest }) => {
	handle(message).then(
		(value) => process.send?.({ seq, ok: true, value } satisfies SenderReply),
		(error: unknown) => process.send?.({ seq, ok: false, error: error instanceof Error ? error.message : String(error) } satisfies SenderReply),
	);
});
process.on('SIGTERM', () => {
	replayer.close();
	process.exit(0);
});
process.on('disconnect', () => process.exit(0));

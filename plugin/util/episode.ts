import pino from 'pino';

/** What an episode logs through: pino's Logger fits, and so does any { warn, info } pair. */
export interface EpisodeLog {
	warn(obj: object, msg: string): void;
	info(obj: object, msg: string): void;
}

/**
 * A recurring error logged once per episode. A UDP socket whose peer is gone
 * errors on every datagram (ICMP port unreachable comes back as ECONNREFUSED):
 * the first error of an episode is logged with its cause, the rest only counted,
 * and end() — the resource worked again, or was closed — logs how many followed.
 */
export class ErrorEpisode {
	/** Errors in the current episode (0: none open). */
	private count = 0;
	/** Errors over the episode's whole life, for stats and tests. */
	total = 0;

	constructor(
		private readonly log: EpisodeLog,
		/** Who errs, e.g. "replay socket": the start of each line. */
		private readonly what: string,
		private readonly context: Record<string, unknown> = {},
	) {}

	get open(): boolean {
		return this.count > 0;
	}

	error(error: unknown): void {
		this.total++;
		if (this.count++ > 0) return;
		const e = error as { message?: unknown; code?: unknown } | undefined;
		this.log.warn(
			{ ...this.context, err: typeof e?.message === 'string' ? e.message : String(error), code: e?.code },
			`${this.what}: error (logged once until it recovers or closes)`,
		);
	}

	end(): void {
		if (this.count === 0) return;
		this.log.info({ ...this.context, errors: this.count }, `${this.what}: error episode over`);
		this.count = 0;
	}
}

/** The 'error' and 'message' sides of a dgram socket, for guardSocket(). */
interface DatagramSocket {
	on(event: 'error', listener: (error: Error) => void): unknown;
	on(event: 'message', listener: (msg: Buffer) => void): unknown;
	on(event: 'close', listener: () => void): unknown;
}

/**
 * Contains a socket's errors to the socket: every error goes to one episode
 * (no 'error' event is ever left unhandled, which would end the process), and a
 * datagram received, or the socket closing, ends the episode.
 */
export function guardSocket(socket: DatagramSocket, episode: ErrorEpisode): void {
	socket.on('error', (error) => episode.error(error));
	socket.on('message', () => {
		if (episode.open) episode.end();
	});
	socket.on('close', () => episode.end());
}

const stderrLogs = new Map<string, EpisodeLog>();

/** Warnings on stderr for tools without a logger of their own (a bench prints its result on stdout); one per name. */
export function stderrLog(name: string): EpisodeLog {
	let log = stderrLogs.get(name);
	if (!log) stderrLogs.set(name, (log = pino({ name, level: 'warn' }, pino.destination(2))));
	return log;
}

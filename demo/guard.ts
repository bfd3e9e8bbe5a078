import type { Logger } from 'pino';

/** What slipped past every handler since the guard was installed. */
export interface ProcessFaults {
	unhandledRejections: number;
	uncaughtExceptions: number;
}

export interface ProcessGuard {
	readonly faults: Readonly<ProcessFaults>;
	/** Removes the guard's process listeners. */
	uninstall(): void;
}

/**
 * The demo server's last line of defence: an error no handler contained is logged
 * at fatal with its stack and counted (GET /api/status shows the counts, the fault
 * suite requires them to stay 0), and the SFU keeps serving the rooms it still can
 * instead of dropping every one of them. Each count is a bug to fix where it arose.
 *
 * Only the demo's entry point and the fault bench install it: tests do not, so an
 * unhandled error there still fails the test that caused it.
 */
export function installProcessGuard(log: Logger): ProcessGuard {
	if (installed) throw new Error('a process guard is installed already');
	const faults: ProcessFaults = { unhandledRejections: 0, uncaughtExceptions: 0 };
	const onRejection = (reason: unknown): void => {
		faults.unhandledRejections++;
		log.fatal({ err: reason instanceof Error ? reason : new Error(String(reason)), count: faults.unhandledRejections }, 'unhandled promise rejection (a bug: contained, not fixed)');
	};
	const onException = (error: Error, origin: string): void => {
		faults.uncaughtExceptions++;
		log.fatal({ err: error, origin, count: faults.uncaughtExceptions }, 'uncaught exception (a bug: contained, not fixed)');
	};
	process.on('unhandledRejection', onRejection);
	process.on('uncaughtException', onException);
	const guard: ProcessGuard = {
		faults,
		uninstall() {
			process.off('unhandledRejection', onRejection);
			process.off('uncaughtException', onException);
			if (installed === guard) installed = undefined;
		},
	};
	installed = guard;
	return guard;
}

let installed: ProcessGuard | undefined;

/** The installed guard's counts (for /api/status), or undefined when none is installed. */
export function processFaults(): Readonly<ProcessFaults> | undefined {
	return installed?.faults;
}

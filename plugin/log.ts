import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * Foresight's loggers are children of one root so an app can pass its own pino
 * instance and keep a single stream. A child inherits the app logger's level unless
 * Foresight's level was set explicitly (option or FORESIGHT_LOG_LEVEL): an app that
 * silenced its logger is not made verbose by a default. Nothing is created or printed
 * at import time.
 */
export function createLogger(level: LevelWithSilent | undefined, parent?: Logger): Logger {
	if (parent) return level === undefined ? parent.child({ lib: 'foresight' }) : parent.child({ lib: 'foresight' }, { level });
	return pino({ name: 'foresight', level: level ?? 'info' });
}

import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * Foresight's loggers are children of one root so an app can pass its own pino
 * instance and keep a single stream. Nothing is created or printed at import time.
 */
export function createLogger(level: LevelWithSilent, parent?: Logger): Logger {
	if (parent) return parent.child({ lib: 'foresight' }, { level });
	return pino({ name: 'foresight', level });
}

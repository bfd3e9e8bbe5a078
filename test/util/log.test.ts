import pino from 'pino';
import { Writable } from 'node:stream';
import { createLogger } from '../../plugin/log';

function appLogger(level: pino.LevelWithSilent): { logger: pino.Logger; lines: () => { level: number; msg: string; lib?: string }[] } {
	const chunks: string[] = [];
	const sink = new Writable({
		write(chunk: Buffer, _enc, done) {
			chunks.push(chunk.toString());
			done();
		},
	});
	const logger = pino({ level }, sink);
	return { logger, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; lib?: string }) };
}

describe('createLogger', () => {
	test('without an explicit level, Foresight inherits the app logger’s level (a stricter app is not made verbose)', () => {
		const app = appLogger('warn');
		const log = createLogger(undefined, app.logger);
		expect(log.level).toBe('warn');
		log.info('not shown');
		log.warn('shown');
		expect(app.lines().map((l) => [l.msg, l.lib])).toEqual([['shown', 'foresight']]);
	});

	test('an explicit level (option or FORESIGHT_LOG_LEVEL) wins over the app’s', () => {
		const app = appLogger('warn');
		const log = createLogger('debug', app.logger);
		expect(log.level).toBe('debug');
		log.debug('shown');
		expect(app.lines().map((l) => l.msg)).toEqual(['shown']);
		expect(app.logger.level).toBe('warn');
	});

	test('without an app logger: the given level, else info', () => {
		expect(createLogger(undefined).level).toBe('info');
		expect(createLogger('error').level).toBe('error');
	});
});

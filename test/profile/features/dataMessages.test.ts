import { DataMessageStats, isStringPpid } from '../../../plugin/profile/features/dataMessages';
import { dataSchema } from '../../../plugin/profile/schema';

describe('DataMessageStats', () => {
	it('counts messages, bytes and the string share exactly over the window', () => {
		const stats = new DataMessageStats({ windowMs: 10_000 });
		const messages = Array.from({ length: 100 }, (_, i) => ({ t: 100 * i + 50, bytes: 10 + (i % 7) * 100, isString: i % 4 !== 0 }));
		for (const m of messages) stats.add(m.t, m.bytes, m.isString);
		const summary = stats.summary(10_000);
		const total = messages.reduce((a, m) => a + m.bytes, 0);
		expect(summary.messagesPerS).toBe(10);
		expect(summary.bytesPerS).toBe(total / 10);
		expect(summary.meanBytes).toBe(total / 100);
		expect(summary.p95Bytes).toBe(610);
		expect(summary.stringShare).toBe(0.75);
		expect(summary.keywordCounts).toBeUndefined();
		expect(dataSchema.safeParse(summary).success).toBe(true);
		expect(stats.summary(30_000)).toMatchObject({ messagesPerS: 0, bytesPerS: 0, stringShare: 0 });
	});

	it('counts configured keywords as whole words, case-insensitively, in string messages only', () => {
		const stats = new DataMessageStats({ keywords: ['help', 'a.b'] });
		stats.add(0, 20, true, 'Help! I need help, not helpers');
		stats.add(1, 20, false, 'help');
		stats.add(2, 20, true, 'axb a.b');
		expect(stats.summary(2).keywordCounts).toEqual({ help: 2, 'a.b': 1 });
	});

	it('maps WebRTC PPIDs to string or binary', () => {
		expect([51, 56, 53, 57, 50].map(isStringPpid)).toEqual([true, true, false, false, undefined]);
	});
});

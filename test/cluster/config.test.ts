import { ForesightConfigError, optionsFromEnv, parseOptions } from '../../plugin/config';

test('cluster options: off by default, defaults documented in config.ts', () => {
	expect(parseOptions({}).cluster).toEqual({ reportIntervalMs: 1000, silentAfterMs: 3000, reservationTtlMs: 10_000, newRoomFreeShare: 0.2 });
});

test('cluster options from the environment', () => {
	const o = optionsFromEnv({
		FORESIGHT_CLUSTER_HOST_ID: 'sfu-2',
		FORESIGHT_CLUSTER_ENDPOINT: 'ws://10.0.0.2:3000/ws',
		FORESIGHT_CLUSTER_REPORT_MS: '500',
		FORESIGHT_CLUSTER_SILENT_AFTER_MS: '1500',
		FORESIGHT_CLUSTER_RESERVATION_TTL_MS: '4000',
	});
	expect(o.cluster).toEqual({ hostId: 'sfu-2', endpoint: 'ws://10.0.0.2:3000/ws', reportIntervalMs: 500, silentAfterMs: 1500, reservationTtlMs: 4000, newRoomFreeShare: 0.2 });
});

test('a silence bound under two report intervals, a bad host id or a reservation over 60 s is refused with the field named', () => {
	const fields = (input: unknown): string[] => {
		try {
			parseOptions(input);
			return [];
		} catch (e) {
			return (e as ForesightConfigError).fields;
		}
	};
	expect(fields({ cluster: { reportIntervalMs: 1000, silentAfterMs: 1500 } })).toEqual(['cluster.silentAfterMs']);
	expect(fields({ cluster: { hostId: 'a b' } })).toEqual(['cluster.hostId']);
	expect(fields({ cluster: { reservationTtlMs: 120_000 } })).toEqual(['cluster.reservationTtlMs']);
	expect(() => optionsFromEnv({ FORESIGHT_CLUSTER_SILENT_AFTER_MS: 'soon' })).toThrow(/FORESIGHT_CLUSTER_SILENT_AFTER_MS/);
});

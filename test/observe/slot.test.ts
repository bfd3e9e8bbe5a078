import { chooseWorkerSlot } from '../../plugin/observe/slot';

describe('chooseWorkerSlot', () => {
	test('the lowest index no live worker holds, so a replacement takes the dead worker’s', () => {
		expect(chooseWorkerSlot({}, new Set())).toEqual({ slot: '0' });
		expect(chooseWorkerSlot({}, new Set(['0', '1', '3']))).toEqual({ slot: '2' });
		expect(chooseWorkerSlot(undefined, new Set(['1']))).toEqual({ slot: '0' });
	});

	test('the app’s appData.slot (string or index) wins, then appData.name', () => {
		expect(chooseWorkerSlot({ slot: 'edge-a' }, new Set(['0']))).toEqual({ slot: 'edge-a' });
		expect(chooseWorkerSlot({ slot: 7 }, new Set())).toEqual({ slot: '7' });
		expect(chooseWorkerSlot({ name: 'w2' }, new Set())).toEqual({ slot: 'w2' });
		expect(chooseWorkerSlot({ slot: 'a', name: 'b' }, new Set())).toEqual({ slot: 'a' });
	});

	test('unusable app values are ignored; a slot a live worker holds is reported and replaced by a free index', () => {
		expect(chooseWorkerSlot({ slot: '  ', name: -1 }, new Set())).toEqual({ slot: '0' });
		expect(chooseWorkerSlot({ slot: 1.5 }, new Set())).toEqual({ slot: '0' });
		expect(chooseWorkerSlot({ slot: 'a' }, new Set(['a', '0']))).toEqual({ slot: '1', conflict: 'a' });
		// An automatic index never collides with an app-named numeric slot.
		expect(chooseWorkerSlot({}, new Set(['0']))).toEqual({ slot: '1' });
	});
});

/** Fixed-capacity FIFO: pushing onto a full ring overwrites the oldest item. */
export class Ring<T> {
	private readonly items: (T | undefined)[];
	private start = 0;
	private count = 0;

	constructor(readonly capacity: number) {
		if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('ring capacity must be a positive integer');
		this.items = new Array<T | undefined>(capacity);
	}

	get size(): number {
		return this.count;
	}

	/** Returns the item it overwrote, if the ring was full. */
	push(item: T): T | undefined {
		if (this.count < this.capacity) {
			this.items[(this.start + this.count) % this.capacity] = item;
			this.count++;
			return undefined;
		}
		const evicted = this.items[this.start];
		this.items[this.start] = item;
		this.start = (this.start + 1) % this.capacity;
		return evicted;
	}

	/** i = 0 is the oldest item. */
	at(i: number): T | undefined {
		if (i < 0 || i >= this.count) return undefined;
		return this.items[(this.start + i) % this.capacity];
	}

	set(i: number, item: T): void {
		if (i < 0 || i >= this.count) throw new RangeError('ring index out of range');
		this.items[(this.start + i) % this.capacity] = item;
	}

	last(): T | undefined {
		return this.at(this.count - 1);
	}

	*[Symbol.iterator](): IterableIterator<T> {
		for (let i = 0; i < this.count; i++) yield this.items[(this.start + i) % this.capacity]!;
	}
}

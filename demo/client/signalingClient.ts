/** Request/response over the signaling WebSocket, plus server notifications. */
export class SignalingClient {
	private nextId = 1;
	private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
	private readonly handlers = new Map<string, (data: Record<string, unknown>) => void>();

	private constructor(private readonly ws: WebSocket) {
		ws.addEventListener('message', (event) => {
			const msg = JSON.parse(String(event.data)) as { id?: number | null; ok?: boolean; data?: unknown; error?: string; notification?: string };
			if (msg.notification) return this.handlers.get(msg.notification)?.(msg.data as Record<string, unknown>);
			const p = msg.id != null ? this.pending.get(msg.id) : undefined;
			if (!p) return;
			this.pending.delete(msg.id!);
			if (msg.ok) p.resolve(msg.data);
			else p.reject(new Error(msg.error ?? 'request failed'));
		});
	}

	static open(url: string): Promise<SignalingClient> {
		return new Promise((resolve, reject) => {
			const ws = new WebSocket(url);
			ws.addEventListener('open', () => resolve(new SignalingClient(ws)), { once: true });
			ws.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)), { once: true });
		});
	}

	request<T>(method: string, data: Record<string, unknown> = {}): Promise<T> {
		const id = this.nextId++;
		return new Promise<T>((resolve, reject) => {
			this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
			this.ws.send(JSON.stringify({ id, method, data }));
		});
	}

	on(notification: string, handler: (data: Record<string, unknown>) => void): void {
		this.handlers.set(notification, handler);
	}
}

/**
 * Lease keep-alives for the etcd store: one LeaseKeepAlive stream shared by every lease, each
 * request answered in order for its lease id (TTL 0 = the lease is gone: StoreLeaseNotFoundError).
 * A request unanswered within the deadline, or a broken stream, fails every waiting request with a
 * recoverable etcd error (the store retries keep-alives, which are idempotent) and the next
 * request opens a new stream, on whichever member the client picks.
 */
import { GRPCDeadlineExceededError } from 'etcd3';
import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import { StoreLeaseNotFoundError, StoreUnavailableError } from './store.js';

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

export class KeepAlives {
  private stream: KeepAliveStream | undefined;
  private opening: Promise<KeepAliveStream> | undefined;
  private readonly waiting = new Map<string, { resolve: () => void; reject: (err: Error) => void }[]>();

  constructor(
    private readonly client: Etcd3,
    private readonly timeoutMs: number,
  ) {}

  async once(lease: string): Promise<void> {
    const stream = await this.open();
    await new Promise<void>((resolve, reject) => {
      const list = this.waiting.get(lease) ?? [];
      this.waiting.set(lease, list);
      const w = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        const i = list.indexOf(w);
        if (i >= 0) list.splice(i, 1);
        this.drop(stream, new GRPCDeadlineExceededError(`lease keep-alive got no answer within ${this.timeoutMs} ms`));
        reject(new GRPCDeadlineExceededError(`lease keep-alive got no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      list.push(w);
      stream.write({ ID: lease });
    });
  }

  close(): void {
    if (this.stream !== undefined) this.drop(this.stream, new StoreUnavailableError('the etcd store is closed'));
  }

  private open(): Promise<KeepAliveStream> {
    if (this.stream !== undefined) return Promise.resolve(this.stream);
    this.opening ??= this.client.leaseClient
      .leaseKeepAlive()
      .then((stream) => {
        this.stream = stream;
        stream.on('data', (res) => {
          const w = this.waiting.get(res.ID)?.shift();
          if (w === undefined) return;
          if (res.TTL === '0') w.reject(new StoreLeaseNotFoundError(res.ID));
          else w.resolve();
        });
        stream.on('error', (err) => this.drop(stream, err));
        stream.on('end', () => this.drop(stream, new GRPCDeadlineExceededError('the lease keep-alive stream ended')));
        return stream;
      })
      .finally(() => (this.opening = undefined));
    return this.opening;
  }

  private drop(stream: KeepAliveStream, err: Error): void {
    if (stream !== this.stream) return;
    this.stream = undefined;
    stream.cancel();
    const all = [...this.waiting.values()].flat();
    this.waiting.clear();
    for (const w of all) w.reject(err);
  }
}

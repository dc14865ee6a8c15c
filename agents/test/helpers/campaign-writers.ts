import { BLOCK, type VolumeLedger } from './campaign-blocks.ts';
import type { Rng } from './campaign-rng.ts';
import { NbdPipe } from './nbd-pipe.ts';

/** Where a writer writes: one export of an agent, and the ledger of that volume. */
export interface WriteTarget {
  /** The agent's name in the campaign (its site), for waiting on its connections after a kill. */
  agent: string;
  ledger: VolumeLedger;
  /** Current NBD address of the agent (it keeps its port across restarts). */
  address(): { host: string; port: number };
}

export interface WriterStats {
  issued: number;
  acked: number;
  ackedFua: number;
  /** Writes without an answer (connection lost) or answered with an error. */
  unknown: number;
  errors: number;
  reconnects: number;
}

/** Writes of 4 KiB concentrate on this many "hot" blocks half the time (overwrites: later generations over earlier ones). */
const HOT_BLOCKS = 512;

/**
 * Host writers over real NBD connections: `connections` TCP connections
 * (spread over the targets), each keeping `queueDepth` writes of 4 KiB in
 * flight at random 4 KiB-aligned offsets, about half of them with FUA, never
 * two at once to the same block. Every write is self-describing and goes in
 * its volume's ledger. A connection that dies (the agent was killed) loses
 * what it had in flight (unknown in the ledger) and is dialled again until
 * the agent is back.
 */
export class CampaignWriters {
  readonly stats: WriterStats = { issued: 0, acked: 0, ackedFua: 0, unknown: 0, errors: 0, reconnects: 0 };
  private readonly pipes = new Map<number, NbdPipe | null>();
  private readonly hot = new Map<VolumeLedger, number[]>();
  private running = false;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly targets: WriteTarget[],
    private readonly rng: Rng,
    private readonly options: { connections: number; queueDepth: number; fuaShare?: number; log?: (line: string) => void },
  ) {
    for (const target of targets) {
      const blocks = Array.from({ length: Math.min(HOT_BLOCKS, target.ledger.blockCount) }, () => rng.int(0, target.ledger.blockCount - 1));
      this.hot.set(target.ledger, blocks);
    }
  }

  get active(): boolean {
    return this.running;
  }

  /** Starts writing (again). */
  start(): void {
    if (this.running) return;
    this.running = true;
    const connections = Math.max(this.options.connections, this.targets.length);
    this.done = Promise.all(Array.from({ length: connections }, (_, index) => this.connection(index, this.targets[index % this.targets.length]))).then(() => {});
  }

  /** Stops issuing and waits until every write in flight is answered or lost; connections are closed. */
  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  /** Waits until no connection to `agent` is alive (after it was killed, its last answers read). */
  async disconnectedFrom(agent: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const alive = [...this.pipes.entries()].some(([index, pipe]) => pipe?.alive && this.targetOf(index).agent === agent);
      if (!alive) return;
      if (Date.now() > deadline) throw new Error(`NBD connections to ${agent} still alive ${timeoutMs} ms after it was killed`);
      await sleep(20);
    }
  }

  private targetOf(index: number): WriteTarget {
    return this.targets[index % this.targets.length];
  }

  private async connection(index: number, target: WriteTarget): Promise<void> {
    const ledger = target.ledger;
    while (this.running) {
      let pipe: NbdPipe;
      try {
        const { host, port } = target.address();
        pipe = await NbdPipe.connect(host, port, ledger.name);
      } catch {
        // The agent is down (killed, restarting): dial again shortly.
        await sleep(100);
        continue;
      }
      this.pipes.set(index, pipe);
      const slots = Array.from({ length: this.options.queueDepth }, () => this.slot(pipe, target));
      await Promise.all(slots);
      this.pipes.set(index, null);
      if (pipe.alive) await pipe.close().catch(() => pipe.destroy());
      else if (this.running) this.stats.reconnects++;
    }
  }

  /** One queue slot: a write at a time on `pipe` until the writers stop or the connection dies. */
  private async slot(pipe: NbdPipe, target: WriteTarget): Promise<void> {
    const ledger = target.ledger;
    const hot = this.hot.get(ledger)!;
    const fuaShare = this.options.fuaShare ?? 0.5;
    while (this.running && pipe.alive) {
      let block = -1;
      for (let attempt = 0; attempt < 16 && block < 0; attempt++) {
        const candidate = this.rng.chance(0.5) ? this.rng.pick(hot) : this.rng.int(0, ledger.blockCount - 1);
        if (!ledger.isBusy(candidate)) block = candidate;
      }
      if (block < 0) {
        await sleep(1);
        continue;
      }
      const fua = this.rng.chance(fuaShare);
      const { generation, data } = ledger.issue(block, fua);
      this.stats.issued++;
      try {
        await pipe.write(block * BLOCK, data, { fua });
        ledger.acknowledged(block, generation, fua);
        this.stats.acked++;
        if (fua) this.stats.ackedFua++;
      } catch (error) {
        ledger.unacknowledged(block);
        this.stats.unknown++;
        if (pipe.alive) {
          // An error answer on a living connection: the agent refused the write (unexpected here; counted and reported).
          this.stats.errors++;
          if (this.stats.errors <= 5) this.options.log?.(`write to ${ledger.name} block ${block} failed: ${(error as Error).message}`);
          await sleep(50);
        }
      }
      // A host's next request arrives by the network, in a later turn of the event loop.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

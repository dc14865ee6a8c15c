import type { BlockDevice } from '../../src/storage/block-device.ts';

/** One write of the stamped writer: stamp `stamp` into `slot` of volume a or b. */
export interface Stamp {
  volume: 'a' | 'b';
  slot: number;
  stamp: number;
  issuedAt: number;
  ackedAt: number;
}

const BLOCK = 4096;
export const SLOTS = 32;

/**
 * A host writer whose writes depend on each other across two volumes:
 * stamp i goes to volume a, then (after a's acknowledgement) to volume b.
 * It keeps the log of every write, so a replica sampled at a reported
 * consistency time can be checked against the exact prefix of writes that
 * time allows.
 */
export class StampedWriter {
  readonly writes: Stamp[] = [];
  private writing = false;
  private running: Promise<void> = Promise.resolve();

  /** `spacing`: bytes between slots (a block, or a track to spread writes over tracks). */
  constructor(private readonly spacing: number) {}

  /**
   * `stampIntervalMs` (optional) bounds the write rate: stamp i is not issued
   * before start + (i - 1) * stampIntervalMs, so by any time t at most
   * t / stampIntervalMs + 1 stamps (one block per volume each) were issued,
   * however fast the machine. Without it the writer writes as fast as it can.
   */
  start(devices: { a: BlockDevice; b: BlockDevice }, options: { stampIntervalMs?: number } = {}): void {
    this.writing = true;
    const startedAt = Date.now();
    const interval = options.stampIntervalMs ?? 0;
    this.running = (async () => {
      for (let stamp = 1; this.writing; stamp++) {
        // Writes can complete without leaving the microtask queue (page cache): let timers run.
        await new Promise((resolve) => setImmediate(resolve));
        const wait = startedAt + (stamp - 1) * interval - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        if (!this.writing) break;
        for (const volume of ['a', 'b'] as const) {
          const slot = (stamp * 7 + (volume === 'a' ? 0 : 3)) % SLOTS;
          const issuedAt = Date.now();
          await devices[volume].write(slot * this.spacing, block(stamp));
          this.writes.push({ volume, slot, stamp, issuedAt, ackedAt: Date.now() });
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.writing = false;
    await this.running;
  }

  /** The stamps a replica volume holds, per slot (0 = never written). */
  async stampsOf(device: BlockDevice): Promise<number[]> {
    const data = Buffer.alloc(8);
    const stamps: number[] = [];
    for (let slot = 0; slot < SLOTS; slot++) {
      await device.readInto(slot * this.spacing, data);
      stamps.push(Number(data.readBigUInt64BE(0)));
    }
    return stamps;
  }

  /**
   * Whether replica stamps equal the image after some prefix of the writes
   * allowed by a cut at `cut` (ms): every write acknowledged before it, and
   * possibly the one in flight across it.
   */
  matchesCut(cut: number, stampsA: number[], stampsB: number[]): { match: boolean; lowest: number; highest: number } {
    const lowest = this.writes.filter((w) => w.ackedAt < cut).length;
    const highest = this.writes.filter((w) => w.issuedAt <= cut).length;
    for (let count = lowest; count <= highest; count++) {
      const image = { a: new Array<number>(SLOTS).fill(0), b: new Array<number>(SLOTS).fill(0) };
      for (const write of this.writes.slice(0, count)) image[write.volume][write.slot] = write.stamp;
      if (image.a.every((v, i) => v === stampsA[i]) && image.b.every((v, i) => v === stampsB[i])) {
        return { match: true, lowest, highest };
      }
    }
    return { match: false, lowest, highest };
  }
}

function block(stamp: number): Buffer {
  const data = Buffer.alloc(BLOCK);
  for (let offset = 0; offset < BLOCK; offset += 8) data.writeBigUInt64BE(BigInt(stamp), offset);
  return data;
}

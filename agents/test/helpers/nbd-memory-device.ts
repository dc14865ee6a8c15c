import { ProblemError } from '@tandem/contract';
import type {
  AllocationRun,
  BlockDevice,
  ExportCatalog,
  IoOptions,
  WriteZeroesOptions,
} from '../../src/storage/block-device.ts';

/**
 * A small sparse in-memory BlockDevice, used only while the storage engine
 * is not available. Tracks are allocated on first write and released by
 * trim/write-zeroes over whole tracks, like the engine.
 */
export class MemoryDevice implements BlockDevice {
  readonly tracks = new Map<number, Buffer>();
  retained = 0;

  constructor(
    readonly name: string,
    readonly sizeBytes: number,
    readonly trackSize = 64 * 1024,
    readonly readOnly = false,
  ) {}

  private check(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.sizeBytes) {
      throw new ProblemError('out-of-range', `range ${offset}+${length} past ${this.sizeBytes}`);
    }
  }

  async readInto(offset: number, target: Buffer): Promise<void> {
    this.check(offset, target.length);
    let done = 0;
    while (done < target.length) {
      const position = offset + done;
      const track = Math.floor(position / this.trackSize);
      const within = position % this.trackSize;
      const take = Math.min(this.trackSize - within, target.length - done);
      const data = this.tracks.get(track);
      if (data) data.copy(target, done, within, within + take);
      else target.fill(0, done, done + take);
      done += take;
    }
  }

  async write(offset: number, data: Buffer, _options?: IoOptions): Promise<void> {
    if (this.readOnly) throw new ProblemError('read-only', 'read-only');
    this.check(offset, data.length);
    let done = 0;
    while (done < data.length) {
      const position = offset + done;
      const track = Math.floor(position / this.trackSize);
      const within = position % this.trackSize;
      const take = Math.min(this.trackSize - within, data.length - done);
      let stored = this.tracks.get(track);
      if (!stored) {
        stored = Buffer.alloc(this.trackSize);
        this.tracks.set(track, stored);
      }
      data.copy(stored, within, done, done + take);
      done += take;
    }
  }

  async trim(offset: number, length: number, options?: IoOptions): Promise<void> {
    await this.writeZeroes(offset, length, options);
  }

  async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    if (this.readOnly) throw new ProblemError('read-only', 'read-only');
    this.check(offset, length);
    let done = 0;
    while (done < length) {
      const position = offset + done;
      const track = Math.floor(position / this.trackSize);
      const within = position % this.trackSize;
      const take = Math.min(this.trackSize - within, length - done);
      const stored = this.tracks.get(track);
      if (take === this.trackSize && !options?.noHole) this.tracks.delete(track);
      else if (stored) stored.fill(0, within, within + take);
      else if (options?.noHole) this.tracks.set(track, Buffer.alloc(this.trackSize));
      done += take;
    }
  }

  async flush(): Promise<void> {}

  allocationMap(offset: number, length: number): AllocationRun[] {
    this.check(offset, length);
    const runs: AllocationRun[] = [];
    let position = offset;
    const end = offset + length;
    while (position < end) {
      const track = Math.floor(position / this.trackSize);
      const next = Math.min((track + 1) * this.trackSize, end);
      const allocated = this.tracks.has(track);
      const last = runs[runs.length - 1];
      if (last && last.allocated === allocated) last.length += next - position;
      else runs.push({ length: next - position, allocated });
      position = next;
    }
    return runs;
  }

  retain(): void {
    this.retained++;
  }

  release(): void {
    this.retained--;
  }
}

export class MemoryCatalog implements ExportCatalog {
  readonly devices = new Map<string, MemoryDevice>();

  add(device: MemoryDevice): MemoryDevice {
    this.devices.set(device.name, device);
    return device;
  }

  listExports(): Array<{ name: string; description?: string }> {
    return [...this.devices.keys()].map((name) => ({ name, description: `volume ${name}` }));
  }

  openExport(name: string): BlockDevice {
    const device = this.devices.get(name);
    if (!device) throw new ProblemError('not-found', `no volume ${name}`);
    return device;
  }
}

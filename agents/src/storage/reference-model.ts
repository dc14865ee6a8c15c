/**
 * The plain reference model of volumes that the storage property tests
 * (engine, flash copy) compare the engine with: per volume the current
 * content of each track and, per track touched since the last durable
 * point, every content it had since then (what a crash may leave).
 */

export interface ModelVolume {
  size: number;
  /** Current content per track (absent = zeroes). */
  tracks: Map<number, Buffer>;
  /** Per track touched since the last durable point: every content it had since then. */
  versions: Map<number, Buffer[]>;
}

export class Model {
  readonly volumes = new Map<string, ModelVolume>();
  constructor(readonly trackSize: number) {}

  read(name: string, offset: number, length: number): Buffer {
    const volume = this.volumes.get(name)!;
    const out = Buffer.alloc(length);
    for (let position = offset; position < offset + length; ) {
      const track = Math.floor(position / this.trackSize);
      const within = position - track * this.trackSize;
      const take = Math.min(this.trackSize - within, offset + length - position);
      const content = volume.tracks.get(track);
      if (content) content.copy(out, position - offset, within, within + take);
      position += take;
    }
    return out;
  }

  write(name: string, offset: number, data: Buffer | null, length: number): void {
    const volume = this.volumes.get(name)!;
    for (let position = offset; position < offset + length; ) {
      const track = Math.floor(position / this.trackSize);
      const within = position - track * this.trackSize;
      const take = Math.min(this.trackSize - within, offset + length - position);
      const before = volume.tracks.get(track) ?? Buffer.alloc(this.trackSize);
      if (!volume.versions.has(track)) volume.versions.set(track, [before]);
      const after = Buffer.from(before);
      if (data) data.copy(after, within, position - offset, position - offset + take);
      else after.fill(0, within, within + take);
      volume.tracks.set(track, after);
      volume.versions.get(track)!.push(after);
      position += take;
    }
  }

  /** Every volume's content is durable (a flush, FUA, or an admin change that commits). */
  durable(): void {
    for (const volume of this.volumes.values()) volume.versions.clear();
  }

  /**
   * After a crash: reads every track touched since the last durable point
   * through `read`, takes what it holds as the track's content and makes
   * everything durable. Returns one line per track that holds none of the
   * contents it had since then (empty when the crash lost nothing it may not).
   */
  async afterCrash(read: (name: string, offset: number, into: Buffer) => Promise<unknown>): Promise<string[]> {
    const unmatched: string[] = [];
    for (const [name, volume] of this.volumes) {
      for (const [track, versions] of volume.versions) {
        const start = track * this.trackSize;
        const length = Math.min(this.trackSize, volume.size - start);
        const actual = Buffer.alloc(length);
        await read(name, start, actual);
        if (!versions.some((v) => v.subarray(0, length).equals(actual))) {
          unmatched.push(`track ${track} of ${name} after a crash holds none of its ${versions.length} versions`);
        }
        if (actual.every((b) => b === 0)) volume.tracks.delete(track);
        else volume.tracks.set(track, Buffer.concat([actual, Buffer.alloc(this.trackSize - length)]));
      }
    }
    this.durable();
    return unmatched;
  }
}

/** Deterministic pseudo-random bytes. */
export function pattern(seed: number, length: number, salt: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761 + salt * 40503 + 1) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

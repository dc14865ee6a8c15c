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

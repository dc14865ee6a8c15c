import fsp from 'node:fs/promises';
import path from 'node:path';
import { ProblemError } from '@tandem/contract';
import { writeFileDurably } from '../storage/durable-file.ts';
import type { StorageEngine } from '../storage/engine.ts';
import type { GroupEntry } from './async-groups.ts';
import type { PairRecord } from './session-store.ts';
import { SessionQueue } from './session-queue.ts';

interface StagedGroup {
  session: string;
  group: number;
  time: number;
  entries: GroupEntry[];
}

/**
 * The target side of async sessions: each consistency group is first staged
 * durably (a file in DATA/staging, fsync'd, then renamed into place), then
 * applied to the volumes, flushed, and only then unstaged. A crash in the
 * middle re-applies the staged group at start, so a group is applied
 * all-or-nothing and the target image is always the source's image at the
 * last applied group's time.
 */
export class GroupApplier {
  private readonly dir: string;
  private readonly queue = new SessionQueue();

  constructor(
    private readonly engine: StorageEngine,
    private readonly pairsOf: (session: string) => PairRecord[],
    private readonly onApplied: (session: string, time: number) => void,
  ) {
    this.dir = path.join(engine.paths.root, 'staging');
  }

  private file(session: string, group: number): string {
    return path.join(this.dir, `${session}-${String(group).padStart(12, '0')}.grp`);
  }

  apply(staged: StagedGroup, payload: Buffer | null): Promise<void> {
    return this.queue.run(staged.session, async () => {
      await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
      const header = Buffer.from(JSON.stringify(staged));
      const length = Buffer.alloc(4);
      length.writeUInt32BE(header.length, 0);
      const target = this.file(staged.session, staged.group);
      await writeFileDurably(target, payload ? [length, header, payload] : [length, header]);
      await this.applyStaged(staged, payload ?? Buffer.alloc(0));
      await fsp.unlink(target);
    });
  }

  private async applyStaged(staged: StagedGroup, payload: Buffer): Promise<void> {
    const pairs = new Map(this.pairsOf(staged.session).map((pair) => [pair.id, pair]));
    const touched = new Set<string>();
    for (const entry of staged.entries) {
      const pair = pairs.get(entry.pair);
      if (!pair) throw new ProblemError('not-found', `consistency group ${staged.group} names an unknown pair ${entry.pair}`);
      const device = this.engine.device(pair.localVolume);
      touched.add(pair.localVolume);
      if (entry.kind === 'write') await device.write(entry.offset, payload.subarray(entry.dataOffset, entry.dataOffset + entry.length));
      else if (entry.kind === 'zeroes') await device.writeZeroes(entry.offset, entry.length);
      else await device.trim(entry.offset, entry.length);
    }
    // One commit makes the whole group durable before it is unstaged.
    if (touched.size > 0) await this.engine.flush();
    this.onApplied(staged.session, staged.time);
  }

  /** Re-applies groups staged before a crash, in order. */
  async recover(): Promise<number> {
    const names = await fsp.readdir(this.dir).catch(() => [] as string[]);
    let applied = 0;
    for (const name of names.sort()) {
      const file = path.join(this.dir, name);
      if (name.endsWith('.tmp')) {
        await fsp.unlink(file); // never completely staged: the source still has it marked
        continue;
      }
      if (!name.endsWith('.grp')) continue;
      const data = await fsp.readFile(file);
      const headerLength = data.readUInt32BE(0);
      const staged = JSON.parse(data.subarray(4, 4 + headerLength).toString('utf8')) as StagedGroup;
      await this.queue.run(staged.session, () => this.applyStaged(staged, data.subarray(4 + headerLength)));
      await fsp.unlink(file);
      applied++;
    }
    return applied;
  }

  /**
   * Holds a session's applies (after the one in progress) until the returned
   * release is called: while held, the target volumes are a consistent image.
   */
  freeze(session: string): Promise<() => void> {
    return this.queue.freeze(session);
  }
}

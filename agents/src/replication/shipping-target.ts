import fsp from 'node:fs/promises';
import path from 'node:path';
import { ProblemError } from '@tandem/contract';
import { syncDirectory } from '../storage/checkpoint.ts';
import type { BlockDevice } from '../storage/block-device.ts';
import type { StorageEngine } from '../storage/engine.ts';
import type { HeldCopySet } from './session-store.ts';
import type { ShippedEntry } from './shipping-source.ts';
import { SessionQueue } from './session-queue.ts';
import { localVolumeName } from './copy-set-volumes.ts';

interface OpenCycle {
  epoch: string;
  cycle: number;
  handle: fsp.FileHandle;
  size: number;
  entries: ShippedEntry[];
}

interface Manifest {
  session: string;
  cycle: number;
  time: number;
  entries: ShippedEntry[];
}

/**
 * The target side of snapshot-shipping sessions. A cycle's tracks are
 * appended to a staging file (DATA/shipping/SESSION.data) as they arrive;
 * the volumes are not touched. On commit the file is made durable, a
 * manifest is written (fsync'd, renamed into place: the commit point), and
 * only then are the tracks written to the volumes and flushed, after which
 * the manifest goes. A crash after the commit point re-applies the manifest
 * at start; a cycle cut off before it is dropped. So the target volumes
 * always hold the last committed cycle's image (the consistency time).
 */
export class ShippingReceiver {
  private readonly dir: string;
  private readonly open = new Map<string, OpenCycle>();
  private readonly queue = new SessionQueue();

  constructor(
    private readonly engine: StorageEngine,
    private readonly pairsOf: (session: string) => HeldCopySet[],
    private readonly onApplied: (session: string, time: number) => void,
    /** Where a copy set's tracks are written (its session's journal when it has one, else the volume). */
    private readonly deviceOf: (pair: HeldCopySet) => BlockDevice = (pair) => engine.device(localVolumeName(engine, pair)),
  ) {
    this.dir = path.join(engine.paths.root, 'shipping');
  }

  private dataFile(session: string): string {
    return path.join(this.dir, `${session}.data`);
  }

  private manifestFile(session: string): string {
    return path.join(this.dir, `${session}.manifest`);
  }

  private current(session: string, epoch: string, cycle: number): OpenCycle {
    const open = this.open.get(session);
    if (!open || open.epoch !== epoch || open.cycle !== cycle) {
      throw new ProblemError('invalid-state', `shipping cycle ${cycle} of session ${session} is not open here`);
    }
    return open;
  }

  /** A new cycle: whatever an earlier cycle left staged and uncommitted is dropped. */
  begin(session: string, epoch: string, cycle: number): Promise<void> {
    return this.queue.run(session, async () => {
      await this.closeOpen(session);
      await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
      const handle = await fsp.open(this.dataFile(session), 'w', 0o600);
      this.open.set(session, { epoch, cycle, handle, size: 0, entries: [] });
    });
  }

  /** Appends a chunk of the cycle's tracks to the staging file. */
  chunk(session: string, epoch: string, cycle: number, entries: ShippedEntry[], payload: Buffer | null): Promise<void> {
    return this.queue.run(session, async () => {
      const open = this.current(session, epoch, cycle);
      const bytes = payload?.length ?? 0;
      for (const entry of entries) {
        if (entry.kind === 'write' && entry.dataOffset + entry.length > bytes) {
          throw new ProblemError('bad-request', `ship.chunk entry at ${entry.offset} reaches past its payload`);
        }
      }
      if (payload && bytes > 0) await open.handle.write(payload, 0, bytes, open.size);
      for (const entry of entries) open.entries.push({ ...entry, dataOffset: open.size + entry.dataOffset });
      open.size += bytes;
    });
  }

  /** Makes the cycle durable (the commit point), then applies it to the volumes. */
  commit(session: string, epoch: string, cycle: number, time: number): Promise<void> {
    return this.queue.run(session, async () => {
      const open = this.current(session, epoch, cycle);
      await open.handle.datasync();
      await open.handle.close();
      this.open.delete(session);
      const manifest: Manifest = { session, cycle, time, entries: open.entries };
      const file = this.manifestFile(session);
      await fsp.writeFile(`${file}.part`, JSON.stringify(manifest), { mode: 0o600, flush: true });
      await fsp.rename(`${file}.part`, file);
      await syncDirectory(this.dir);
      await this.applyManifest(manifest);
    });
  }

  private async applyManifest(manifest: Manifest): Promise<void> {
    const pairs = new Map(this.pairsOf(manifest.session).map((pair) => [pair.id, pair]));
    const handle = await fsp.open(this.dataFile(manifest.session), 'r');
    try {
      for (const entry of manifest.entries) {
        const pair = pairs.get(entry.pair);
        if (!pair) throw new ProblemError('not-found', `shipping cycle ${manifest.cycle} names an unknown copy set ${entry.pair}`);
        const device = this.deviceOf(pair);
        if (entry.kind === 'trim') {
          await device.trim(entry.offset, entry.length);
          continue;
        }
        const data = Buffer.allocUnsafe(entry.length);
        const { bytesRead } = await handle.read(data, 0, entry.length, entry.dataOffset);
        if (bytesRead !== entry.length) throw new ProblemError('internal-error', `staged data of cycle ${manifest.cycle} is short`);
        await device.write(entry.offset, data);
      }
    } finally {
      await handle.close();
    }
    // One commit makes the whole cycle durable before the manifest goes (a journal's appends, each logged when its
    // write resolved, with it).
    await this.engine.flush();
    this.onApplied(manifest.session, manifest.time);
    await fsp.unlink(this.manifestFile(manifest.session));
    await fsp.unlink(this.dataFile(manifest.session)).catch(() => {});
  }

  private async closeOpen(session: string): Promise<void> {
    const open = this.open.get(session);
    if (!open) return;
    this.open.delete(session);
    await open.handle.close().catch(() => {});
    await fsp.unlink(this.dataFile(session)).catch(() => {});
  }

  /** Drops an uncommitted cycle (failover, terminate): the volumes keep the last committed image. */
  discard(session: string): Promise<void> {
    return this.queue.run(session, () => this.closeOpen(session));
  }

  /** At start: re-applies cycles committed before a crash, drops cycles cut off before their commit. */
  async recover(): Promise<number> {
    const names = await fsp.readdir(this.dir).catch(() => [] as string[]);
    let applied = 0;
    for (const name of names) {
      if (!name.endsWith('.manifest')) continue;
      const manifest = JSON.parse(await fsp.readFile(path.join(this.dir, name), 'utf8')) as Manifest;
      await this.queue.run(manifest.session, () => this.applyManifest(manifest));
      applied++;
    }
    for (const name of await fsp.readdir(this.dir).catch(() => [] as string[])) {
      if (name.endsWith('.data') || name.endsWith('.part')) await fsp.unlink(path.join(this.dir, name)).catch(() => {});
    }
    return applied;
  }

  /** Holds a session's commits (after the one in progress) until released: the target volumes are a complete image meanwhile. */
  freeze(session: string): Promise<() => void> {
    return this.queue.freeze(session);
  }
}

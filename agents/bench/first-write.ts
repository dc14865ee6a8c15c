import fs from 'node:fs';
import path from 'node:path';
import { startQemuNbd } from './anchors.ts';
import { jobs, rand4kQd1, runFio, type FioResult } from './fio.ts';
import { describeRun, progress, rotate } from './interleave.ts';
import { run } from './procs.ts';
import type { SnapshotApi } from './snap-api.ts';
import type { TandemAgent } from './tandem.ts';

/** 4K qd1 IOPS right after a plain overwrite pass vs right after a snapshot (or into a fresh qcow2 overlay). */
export interface FirstWrite {
  tandemPlain: FioResult[];
  tandemAfter: FioResult[];
  qcowPlain: FioResult[];
  qcowAfter: FioResult[];
}

export const overwrite = (uri: string): Promise<FioResult> => runFio(uri, jobs[1], { runtime: null });

/**
 * First writes, not the overwrites that follow them: 2048 random 4K writes
 * (8 MiB) over a 1 GiB volume of 16384 64 KiB tracks, so ~94 % of them land
 * on a track not written since the snapshot/flash (a time-based run at
 * 10-30k IOPS would mostly rewrite tracks already copied and overstate the
 * ratio). The plain and qcow2 runs use the same count, so ratios compare like
 * with like.
 */
export const FIRST_WRITES = { runtime: null, extra: ['--io_size=8M'] } as const;
export const firstWrites = (uri: string): Promise<FioResult> => runFio(uri, rand4kQd1, { ...FIRST_WRITES, extra: [...FIRST_WRITES.extra] });

async function tandemRep(tandem: TandemAgent, snaps: SnapshotApi, volume: string, rep: number, out: FirstWrite): Promise<void> {
  const uri = tandem.endpoint(volume).uri;
  await overwrite(uri);
  const plain = await firstWrites(uri);
  await overwrite(uri);
  const name = `fw${rep}`;
  await snaps.create(volume, name);
  const after = await firstWrites(uri);
  await snaps.delete(name);
  out.tandemPlain.push(plain);
  out.tandemAfter.push(after);
  progress(`[first-write ${rep + 1}] ${describeRun('tandem', rand4kQd1, plain)} | after snapshot ${after.iops.toFixed(0)} IOPS`);
}

async function qcowRep(base: string, dir: string, logDir: string, rep: number, out: FirstWrite): Promise<void> {
  const raw = await startQemuNbd(base, logDir, 'base', 'raw', 'qemu-nbd-base');
  let plain: FioResult;
  try {
    await overwrite(raw.uri);
    plain = await firstWrites(raw.uri);
  } finally {
    await raw.stop();
  }
  const overlay = path.join(dir, `overlay-${rep}.qcow2`);
  const created = await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay]);
  if (created.code !== 0) throw new Error(`qemu-img create failed: ${created.stderr}`);
  const qcow = await startQemuNbd(overlay, logDir, 'overlay', 'qcow2', 'qemu-nbd-overlay');
  try {
    const after = await firstWrites(qcow.uri);
    out.qcowPlain.push(plain);
    out.qcowAfter.push(after);
    progress(`[first-write ${rep + 1}] ${describeRun('qemu raw', rand4kQd1, plain)} | qcow2 overlay ${after.iops.toFixed(0)} IOPS`);
  } finally {
    await qcow.stop();
    fs.rmSync(overlay, { force: true });
  }
}

export async function firstWrite(
  tandem: TandemAgent | null,
  snaps: SnapshotApi | null,
  volume: string,
  base: string,
  dir: string,
  logDir: string,
  reps: number,
): Promise<FirstWrite> {
  const out: FirstWrite = { tandemPlain: [], tandemAfter: [], qcowPlain: [], qcowAfter: [] };
  for (let rep = 0; rep < reps; rep++) {
    for (const which of rotate([0, 1], rep)) {
      if (which === 0) {
        if (tandem && snaps) await tandemRep(tandem, snaps, volume, rep, out);
      } else await qcowRep(base, dir, logDir, rep, out);
    }
  }
  return out;
}

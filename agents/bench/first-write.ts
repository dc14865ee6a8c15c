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

const overwrite = (uri: string): Promise<FioResult> => runFio(uri, jobs[1], { runtime: null });

async function tandemRep(tandem: TandemAgent, snaps: SnapshotApi, volume: string, rep: number, runtime: number, out: FirstWrite): Promise<void> {
  const uri = tandem.endpoint(volume).uri;
  await overwrite(uri);
  const plain = await runFio(uri, rand4kQd1, { runtime });
  await overwrite(uri);
  const name = `fw${rep}`;
  await snaps.create(volume, name);
  const after = await runFio(uri, rand4kQd1, { runtime });
  await snaps.delete(name);
  out.tandemPlain.push(plain);
  out.tandemAfter.push(after);
  progress(`[first-write ${rep + 1}] ${describeRun('tandem', rand4kQd1, plain)} | after snapshot ${after.iops.toFixed(0)} IOPS`);
}

async function qcowRep(base: string, dir: string, logDir: string, rep: number, runtime: number, out: FirstWrite): Promise<void> {
  const raw = await startQemuNbd(base, logDir, 'base', 'raw', 'qemu-nbd-base');
  let plain: FioResult;
  try {
    await overwrite(raw.uri);
    plain = await runFio(raw.uri, rand4kQd1, { runtime });
  } finally {
    await raw.stop();
  }
  const overlay = path.join(dir, `overlay-${rep}.qcow2`);
  const created = await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay]);
  if (created.code !== 0) throw new Error(`qemu-img create failed: ${created.stderr}`);
  const qcow = await startQemuNbd(overlay, logDir, 'overlay', 'qcow2', 'qemu-nbd-overlay');
  try {
    const after = await runFio(qcow.uri, rand4kQd1, { runtime });
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
  runtime: number,
): Promise<FirstWrite> {
  const out: FirstWrite = { tandemPlain: [], tandemAfter: [], qcowPlain: [], qcowAfter: [] };
  for (let rep = 0; rep < reps; rep++) {
    for (const which of rotate([0, 1], rep)) {
      if (which === 0) {
        if (tandem && snaps) await tandemRep(tandem, snaps, volume, rep, runtime, out);
      } else await qcowRep(base, dir, logDir, rep, runtime, out);
    }
  }
  return out;
}

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { firstWrite, type FirstWrite } from './first-write.ts';
import { GiB } from './fresh.ts';
import { median, num, ratio, table } from './format.ts';
import { progress } from './interleave.ts';
import type { Bench } from './setup.ts';
import { volumeName } from './setup.ts';
import { makeSparseVolume, sizes, timeCreates, type CreateTimes } from './snap-create.ts';
import { SnapshotApi } from './snap-api.ts';
import { firstWriteMinRatio, snapshotCreateMaxMs, verdict } from './targets.ts';

export interface SnapshotResults {
  create: CreateTimes;
  firstWrite: FirstWrite;
  tandemError: string | null;
}

/** A 1 GiB raw file full of data (qcow2 backing) and a 1 TiB sparse one. */
function makeBases(dir: string): Record<(typeof sizes)[number], string> {
  const full = path.join(dir, 'base-1g.raw');
  const fd = fs.openSync(full, 'w');
  const block = crypto.randomBytes(1024 * 1024);
  for (let i = 0; i < GiB / block.length; i++) fs.writeSync(fd, block);
  fs.closeSync(fd);
  const sparse = path.join(dir, 'base-1t.raw');
  fs.writeFileSync(sparse, '');
  fs.truncateSync(sparse, 1024 * GiB);
  return { '1 GiB full': full, '1 TiB sparse': sparse };
}

export async function snapshotSection(bench: Bench, samples: number, reps: number): Promise<SnapshotResults> {
  const bases = makeBases(bench.dir);
  let snaps: SnapshotApi | null = null;
  let tandemError: string | null = null;
  const sources = { '1 GiB full': volumeName, '1 TiB sparse': 'sparse1t' };
  if (bench.tandem) {
    try {
      progress('tandem: 1 TiB thin volume with 64 MiB of random writes');
      await makeSparseVolume(bench.tandem, sources['1 TiB sparse']);
      snaps = new SnapshotApi(await bench.tandem.api());
      await snaps.create(volumeName, 'probe');
      await snaps.delete('probe');
    } catch (error) {
      tandemError = (error as Error).message;
      progress(`tandem snapshots unavailable: ${tandemError}`);
      snaps = null;
    }
  }
  const tandem = snaps ? bench.tandem : null;
  const create = await timeCreates(snaps, tandem, sources, bases, samples, bench.dir);
  const fw = await firstWrite(tandem, snaps, volumeName, bases['1 GiB full'], bench.dir, bench.logDir, reps);
  return { create, firstWrite: fw, tandemError };
}

const med = (values: number[]): number | null => (values.length ? median(values) : null);
const ms = (value: number | null): string => (value === null ? '—' : `${num(value)} ms`);

export function renderSnapshots(r: SnapshotResults, samples: number): string {
  const c = r.create;
  const api = sizes.map((s) => med(c.apiMs[s]));
  const within = (v: number | null): boolean | null => (v === null ? null : v <= snapshotCreateMaxMs);
  const both = api.every((v) => v !== null) ? api.every((v) => within(v)) : null;
  const createRows = [
    [`tandem snapshot create, API round trip (median of ${samples})`, ...api.map(ms), `≤ ${snapshotCreateMaxMs} ms`, verdict(both)],
    ['tandem, inside the agent (fastify responseTime, agent log)', ...sizes.map((s) => ms(med(c.engineMs[s]))), '', ''],
    ['tandem, GET /v1/agent round trip / inside the agent', `${ms(med(c.getMs))} / ${ms(med(c.agentGetMs))}`, '', '', ''],
    [`anchor: qemu-img create -f qcow2 -b (whole process)`, ...sizes.map((s) => ms(med(c.qemuImgMs[s]))), '15–17 ms', ''],
    ['info: tandem-agent snapshot create (CLI process)', ms(med(c.cliMs)), '', '', ''],
  ];
  const fw = r.firstWrite;
  const iops = (list: { iops: number }[]): number | null => med(list.map((x) => x.iops));
  const tRatio = iops(fw.tandemAfter) !== null && iops(fw.tandemPlain) ? iops(fw.tandemAfter)! / iops(fw.tandemPlain)! : null;
  const qRatio = iops(fw.qcowAfter) !== null && iops(fw.qcowPlain) ? iops(fw.qcowAfter)! / iops(fw.qcowPlain)! : null;
  const fwRows = [
    ['tandem: after snapshot / after overwrite pass', num(iops(fw.tandemPlain)), num(iops(fw.tandemAfter)), ratio(tRatio), `≥ ${firstWriteMinRatio}×`, verdict(tRatio === null ? null : tRatio >= firstWriteMinRatio)],
    ['anchor: qemu-nbd qcow2 overlay / raw', num(iops(fw.qcowPlain)), num(iops(fw.qcowAfter)), ratio(qRatio), '0.39× (BENCHMARKS)', ''],
  ];
  return [
    table(['snapshot establish', ...sizes, 'target', ''], createRows),
    '',
    table(['first write, 4K rand qd1, 2048 writes (IOPS)', 'plain', 'first write', 'ratio', 'target', ''], fwRows),
    ...(r.tandemError ? ['', `tandem snapshot part skipped: ${r.tandemError}`] : []),
  ].join('\n');
}

/**
 * The measurements of bench:flash: establish time through the API and
 * inside the agent against `qemu-img create -f qcow2 -b`; the first 4K qd1
 * source writes after an establish against plain writes (and a qcow2 overlay
 * against raw, via first-write.ts); the background copy's throughput
 * against the disk's sequential write bandwidth.
 */
import fs from 'node:fs';
import path from 'node:path';
import { agentSideTimes } from './agent-log.ts';
import type { ApiClient } from './api.ts';
import { engineMs } from './api.ts';
import { jobs, rand4kQd1, runFio, type FioJob, type FioResult } from './fio.ts';
import { firstWrite, firstWrites } from './first-write.ts';
import { median } from './format.ts';
import { describeRun, progress, rotate } from './interleave.ts';
import { sleep } from './net.ts';
import { SnapshotApi } from './snap-api.ts';
import { run } from './procs.ts';
import type { TandemAgent } from './tandem.ts';

export const GiB = 1024 ** 3;
export const sizes = ['1 GiB full', '1 TiB sparse'] as const;
export type SizeLabel = (typeof sizes)[number];

/** The volumes of the run: a full 1 GiB source, a 1 TiB one with 64 MiB written, and their targets. */
export const volumes: Record<SizeLabel, { source: string; target: string }> = {
  '1 GiB full': { source: 'src1g', target: 'tgt1g' },
  '1 TiB sparse': { source: 'src1t', target: 'tgt1t' },
};

const sessionPath = (name: string, rest = ''): string => `/v1/flash-sessions/${encodeURIComponent(name)}${rest}`;

/** The agent's flash sessions, as the control API serves them (agents/src/api/routes/flash.ts). */
export class FlashApi {
  constructor(private readonly api: ApiClient) {}

  /** Establishes one pair; the round trip and, if the agent says, its own time. */
  /** Establishes one pair; the round trip, the agent's own time if it says, and how long it held source writes. */
  async establish(name: string, source: string, target: string, backgroundCopy: boolean): Promise<{ apiMs: number; engineMs: number | null; holdMs: number | null }> {
    const response = await this.api.request('POST', '/v1/flash-sessions', { name, pairs: [{ source, target }], backgroundCopy });
    if (response.status !== 201) throw new Error(`flash establish ${source} -> ${target}: ${response.status} ${JSON.stringify(response.body)}`);
    const holdMs = (response.body as { holdMs?: unknown }).holdMs;
    return { apiMs: response.ms, engineMs: engineMs(response), holdMs: typeof holdMs === 'number' ? holdMs : null };
  }

  async get(name: string): Promise<{ state: string; pairs: Array<{ copiedTracks: number; totalTracks: number }> }> {
    const response = await this.api.request('GET', sessionPath(name));
    if (response.status !== 200) throw new Error(`flash show ${name}: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body as { state: string; pairs: Array<{ copiedTracks: number; totalTracks: number }> };
  }

  /** Withdraws (not waiting for a copy) and forgets the session. */
  async drop(name: string): Promise<void> {
    const withdrawn = await this.api.request('POST', sessionPath(name, '/withdraw'), { finishCopy: false });
    if (withdrawn.status !== 200) throw new Error(`flash withdraw ${name}: ${withdrawn.status} ${JSON.stringify(withdrawn.body)}`);
    const removed = await this.api.request('DELETE', sessionPath(name));
    if (removed.status !== 204) throw new Error(`flash remove ${name}: ${removed.status} ${JSON.stringify(removed.body)}`);
  }

  async baseline(): Promise<number> {
    const response = await this.api.request('GET', '/v1/agent');
    if (response.status !== 200) throw new Error(`GET /v1/agent: ${response.status}`);
    return response.ms;
  }
}

const sprinkle: FioJob = {
  id: 'sprinkle',
  label: 'sprinkle 64 MiB',
  metric: 'MiB/s',
  args: ['--rw=randwrite', '--bs=64k', '--iodepth=16', '--io_size=64M'],
};

/** Sources and targets: 1 GiB written end to end, 1 TiB thin with 64 MiB at random places. */
export async function makeVolumes(tandem: TandemAgent): Promise<void> {
  for (const [label, { source, target }] of Object.entries(volumes)) {
    const size = label === '1 GiB full' ? '1G' : '1T';
    await tandem.createVolume(source, size);
    await tandem.createVolume(target, size);
  }
  await runFio(tandem.endpoint(volumes['1 GiB full'].source).uri, jobs[1], { runtime: null });
  await runFio(tandem.endpoint(volumes['1 TiB sparse'].source).uri, sprinkle, { runtime: null, size: '1T' });
}

/** A 1 GiB raw file of data (qcow2 backing file, first-write anchor) and a 1 TiB sparse one. */
export async function makeBases(dir: string): Promise<Record<SizeLabel, string>> {
  const full = path.join(dir, 'base-1g.raw');
  const written = await run('fio', ['--name=base', `--filename=${full}`, '--size=1G', '--rw=write', '--bs=1M', '--ioengine=psync', '--refill_buffers']);
  if (written.code !== 0) throw new Error(`fio could not write ${full}: ${written.stderr}`);
  const sparse = path.join(dir, 'base-1t.raw');
  fs.writeFileSync(sparse, '');
  fs.truncateSync(sparse, 1024 * GiB);
  return { '1 GiB full': full, '1 TiB sparse': sparse };
}

export interface EstablishTimes {
  apiMs: Record<SizeLabel, number[]>;
  /** fastify's responseTime for the same requests (agent log), ms. */
  agentMs: Record<SizeLabel, number[]>;
  /** `holdMs` of the answer: how long the flash service held the source's writes, ms. */
  holdMs: Record<SizeLabel, number[]>;
  /** GET /v1/agent on the same connection: the API's own share, ms. */
  getMs: number[];
  qemuImgMs: Record<SizeLabel, number[]>;
}

async function qemuImgCreate(base: string, overlay: string): Promise<number> {
  fs.rmSync(overlay, { force: true });
  const created = await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay]);
  if (created.code !== 0) throw new Error(`qemu-img create failed: ${created.stderr}`);
  fs.rmSync(overlay, { force: true });
  return created.ms;
}

/** Establish (no-copy) of each size `samples` times through the API, interleaved with the qemu-img anchor. */
export async function timeEstablish(
  flash: FlashApi | null,
  tandem: TandemAgent | null,
  bases: Record<SizeLabel, string>,
  samples: number,
  dir: string,
): Promise<EstablishTimes> {
  const out: EstablishTimes = {
    apiMs: { '1 GiB full': [], '1 TiB sparse': [] },
    agentMs: { '1 GiB full': [], '1 TiB sparse': [] },
    holdMs: { '1 GiB full': [], '1 TiB sparse': [] },
    getMs: [],
    qemuImgMs: { '1 GiB full': [], '1 TiB sparse': [] },
  };
  const steps = sizes.flatMap((size) => (flash ? ['tandem', 'qemu-img'] : ['qemu-img']).map((kind) => ({ size, kind })));
  const posted: SizeLabel[] = [];
  for (let i = 0; i < samples; i++) {
    for (const { size, kind } of rotate(steps, i)) {
      if (kind === 'qemu-img') {
        out.qemuImgMs[size].push(await qemuImgCreate(bases[size], path.join(dir, 'overlay-time.qcow2')));
        continue;
      }
      out.getMs.push(await flash!.baseline());
      const name = `est${i}-${size.startsWith('1 GiB') ? '1g' : '1t'}`;
      const timing = await flash!.establish(name, volumes[size].source, volumes[size].target, false);
      posted.push(size);
      out.apiMs[size].push(timing.apiMs);
      if (timing.engineMs !== null) out.agentMs[size].push(timing.engineMs);
      if (timing.holdMs !== null) out.holdMs[size].push(timing.holdMs);
      await flash!.drop(name);
    }
  }
  if (tandem && flash && sizes.every((size) => out.agentMs[size].length === 0)) {
    await sleep(500); // pino writes asynchronously
    const times = agentSideTimes(tandem.logFile, 'POST', /^\/v1\/flash-sessions$/, posted.map(() => '/v1/flash-sessions'));
    times?.forEach((ms, index) => out.agentMs[posted[index]].push(ms));
  }
  for (const size of sizes) {
    const api = out.apiMs[size].length ? `API ${median(out.apiMs[size]).toFixed(2)} ms, ` : '';
    progress(`establish ${size}: ${api}qemu-img create ${median(out.qemuImgMs[size]).toFixed(1)} ms`);
  }
  return out;
}

export interface FirstWrites {
  tandemPlain: FioResult[];
  tandemAfter: FioResult[];
  /** The same right after a snapshot (redirect-on-write without a flash relationship), for comparison. */
  tandemAfterSnapshot: FioResult[];
  qcowPlain: FioResult[];
  qcowAfter: FioResult[];
}

/**
 * 4K qd1 random writes into the 1 GiB source right after an overwrite pass
 * (plain) and right after a no-copy establish (every first write into a
 * track copies it for the target first), interleaved with the qcow2
 * overlay anchor of bench:nbd.
 */
export async function timeFirstWrites(
  flash: FlashApi | null,
  tandem: TandemAgent | null,
  base: string,
  dir: string,
  logDir: string,
  reps: number,
): Promise<FirstWrites> {
  const out: FirstWrites = { tandemPlain: [], tandemAfter: [], tandemAfterSnapshot: [], qcowPlain: [], qcowAfter: [] };
  const { source, target } = volumes['1 GiB full'];
  for (let rep = 0; rep < reps; rep++) {
    for (const which of rotate(['tandem', 'qcow2'], rep)) {
      if (which === 'qcow2') {
        const anchor = await firstWrite(null, null, source, base, dir, logDir, 1);
        out.qcowPlain.push(...anchor.qcowPlain);
        out.qcowAfter.push(...anchor.qcowAfter);
        continue;
      }
      if (!flash || !tandem) continue;
      const uri = tandem.endpoint(source).uri;
      await runFio(uri, jobs[1], { runtime: null });
      const plain = await firstWrites(uri);
      await runFio(uri, jobs[1], { runtime: null });
      const name = `fw${rep}`;
      await flash.establish(name, source, target, false);
      const after = await firstWrites(uri);
      await flash.drop(name);
      await runFio(uri, jobs[1], { runtime: null });
      const snapshots = new SnapshotApi(await tandem.api());
      await snapshots.create(source, `fw-snap${rep}`);
      const afterSnapshot = await firstWrites(uri);
      await snapshots.delete(`fw-snap${rep}`);
      out.tandemPlain.push(plain);
      out.tandemAfter.push(after);
      out.tandemAfterSnapshot.push(afterSnapshot);
      progress(`[first-write ${rep + 1}] ${describeRun('tandem', rand4kQd1, plain)} | after flash ${after.iops.toFixed(0)} IOPS | after snapshot ${afterSnapshot.iops.toFixed(0)} IOPS`);
    }
  }
  return out;
}

export interface CopyThroughput {
  /** Background copy of the full 1 GiB source, MiB/s (establish to every track copied). */
  tandemMiBps: number[];
  /** fio sequential 1M O_DIRECT writes to a file on the same disk, MiB/s. */
  diskMiBps: number[];
}

async function diskSequential(dir: string): Promise<number> {
  const file = path.join(dir, 'disk-seq.dat');
  const result = await run('fio', [
    '--name=disk', `--filename=${file}`, '--size=1G', '--rw=write', '--bs=1M', '--direct=1', '--ioengine=libaio',
    '--iodepth=4', '--end_fsync=1', '--output-format=json',
  ], { timeoutMs: 300_000 });
  fs.rmSync(file, { force: true });
  if (result.code !== 0) throw new Error(`fio on ${file} failed: ${result.stderr}`);
  const parsed = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as { jobs: Array<{ write: { bw_bytes: number } }> };
  return parsed.jobs[0].write.bw_bytes / 1024 / 1024;
}

async function backgroundCopy(flash: FlashApi, rep: number): Promise<number> {
  const { source, target } = volumes['1 GiB full'];
  const name = `bg${rep}`;
  const started = performance.now();
  await flash.establish(name, source, target, true);
  let session = await flash.get(name);
  const deadline = Date.now() + 300_000;
  const copied = () => session.pairs.every((pair) => pair.copiedTracks === pair.totalTracks);
  while (!copied()) {
    if (Date.now() > deadline) throw new Error(`background copy ${name} did not finish in 5 min: ${JSON.stringify(session)}`);
    await sleep(50);
    session = await flash.get(name);
  }
  const seconds = (performance.now() - started) / 1000;
  await flash.drop(name);
  return GiB / 1024 / 1024 / seconds;
}

export async function timeBackgroundCopy(flash: FlashApi | null, dir: string, reps: number): Promise<CopyThroughput> {
  const out: CopyThroughput = { tandemMiBps: [], diskMiBps: [] };
  for (let rep = 0; rep < reps; rep++) {
    for (const which of rotate(['tandem', 'disk'], rep)) {
      if (which === 'disk') out.diskMiBps.push(await diskSequential(dir));
      else if (flash) out.tandemMiBps.push(await backgroundCopy(flash, rep));
    }
    progress(`[copy ${rep + 1}] background copy ${out.tandemMiBps.at(-1)?.toFixed(0) ?? '—'} MiB/s, disk seq write ${out.diskMiBps.at(-1)!.toFixed(0)} MiB/s`);
  }
  return out;
}

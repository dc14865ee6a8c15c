import fs from 'node:fs';
import path from 'node:path';
import { agentSideTimes } from './agent-log.ts';
import { runFio, type FioJob } from './fio.ts';
import { median } from './format.ts';
import { progress, rotate } from './interleave.ts';
import { sleep } from './net.ts';
import { run } from './procs.ts';
import type { SnapshotApi } from './snap-api.ts';
import type { TandemAgent } from './tandem.ts';

export interface CreateTimes {
  /** Per size label: the samples, ms. */
  apiMs: Record<string, number[]>;
  engineMs: Record<string, number[]>;
  /** GET /v1/agent on the same connection: HTTP + TLS + auth + routing without the engine, ms. */
  getMs: number[];
  /** The same GET inside the agent (fastify responseTime from its log), ms. */
  agentGetMs: number[];
  qemuImgMs: Record<string, number[]>;
  /** `tandem-agent snapshot create` as a process (includes Node start-up), ms. */
  cliMs: number[];
}

export const sizes = ['1 GiB full', '1 TiB sparse'] as const;

const sprinkle: FioJob = {
  id: 'sprinkle',
  label: 'sprinkle 64 MiB',
  metric: 'MiB/s',
  args: ['--rw=randwrite', '--bs=64k', '--iodepth=16', '--io_size=64M'],
};

/** A 1 TiB thin volume with 64 MiB written at random places. */
export async function makeSparseVolume(tandem: TandemAgent, name: string): Promise<void> {
  await tandem.createVolume(name, '1T');
  await runFio(tandem.endpoint(name).uri, sprinkle, { runtime: null, size: '1T' });
}

async function qemuImgCreate(base: string, overlay: string): Promise<number> {
  fs.rmSync(overlay, { force: true });
  const r = await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay]);
  if (r.code !== 0) throw new Error(`qemu-img create failed: ${r.stderr}`);
  fs.rmSync(overlay, { force: true });
  return r.ms;
}

/**
 * Times snapshot creation of the full 1 GiB volume and the sparse 1 TiB one
 * through the API, interleaved with the qemu-img overlay anchor; each
 * snapshot is deleted (untimed) before the next.
 */
/** Fills engineMs from the agent's log when the agent did not report it in the response. */
function readAgentSide(logFile: string, posted: Array<{ s: (typeof sizes)[number]; url: string }>, out: CreateTimes): void {
  const creates = agentSideTimes(logFile, 'POST', /\/snapshots$/, posted.map((p) => p.url));
  if (creates && sizes.every((s) => out.engineMs[s].length === 0)) {
    creates.forEach((ms, i) => out.engineMs[posted[i].s].push(ms));
  }
  const gets = agentSideTimes(logFile, 'GET', /^\/v1\/agent$/, out.getMs.map(() => '/v1/agent'));
  if (gets) out.agentGetMs.push(...gets);
}

export async function timeCreates(
  snaps: SnapshotApi | null,
  tandem: TandemAgent | null,
  sources: Record<(typeof sizes)[number], string>,
  bases: Record<(typeof sizes)[number], string>,
  samples: number,
  dir: string,
): Promise<CreateTimes> {
  const out: CreateTimes = { apiMs: {}, engineMs: {}, getMs: [], agentGetMs: [], qemuImgMs: {}, cliMs: [] };
  for (const s of sizes) {
    out.apiMs[s] = [];
    out.engineMs[s] = [];
    out.qemuImgMs[s] = [];
  }
  if (snaps) await snaps.baseline();
  const kinds = snaps ? ['tandem', 'qemu-img'] : ['qemu-img'];
  const posted: Array<{ s: (typeof sizes)[number]; url: string }> = [];
  const steps = sizes.flatMap((s) => kinds.map((kind) => ({ s, kind })));
  for (let i = 0; i < samples; i++) {
    for (const { s, kind } of rotate(steps, i)) {
      if (kind === 'qemu-img') {
        out.qemuImgMs[s].push(await qemuImgCreate(bases[s], path.join(dir, 'overlay-time.qcow2')));
        continue;
      }
      if (!snaps) continue;
      out.getMs.push(await snaps.baseline());
      const name = `t${i}-${s.startsWith('1 GiB') ? '1g' : '1t'}`;
      const timing = await snaps.create(sources[s], name);
      posted.push({ s, url: `/v1/volumes/${encodeURIComponent(sources[s])}/snapshots` });
      out.apiMs[s].push(timing.apiMs);
      if (timing.engineMs !== null) out.engineMs[s].push(timing.engineMs);
      await snaps.delete(name);
    }
  }
  if (tandem && snaps) await sleep(500); // pino writes asynchronously
  if (tandem && snaps) readAgentSide(tandem.logFile, posted, out);
  for (let i = 0; tandem && snaps && i < 3; i++) {
    const name = `cli${i}`;
    const { ms } = await tandem.cli(['snapshot', 'create', sources[sizes[0]], name, '--json']);
    out.cliMs.push(ms);
    await snaps.delete(name);
  }
  for (const s of sizes) {
    progress(`snapshot create ${s}: API ${median(out.apiMs[s]).toFixed(2)} ms, qemu-img create ${median(out.qemuImgMs[s]).toFixed(1)} ms`);
  }
  return out;
}

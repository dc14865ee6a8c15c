import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startNbdkit, startQemuNbd, type Endpoint } from './anchors.ts';
import type { BenchOptions } from './args.ts';
import { GiB } from './fresh.ts';
import { jobs, runFio } from './fio.ts';
import { progress } from './interleave.ts';
import { TandemAgent, tandemPresent } from './tandem.ts';

/** Everything the benchmark started, so teardown can undo it. */
export interface Bench {
  dir: string;
  logDir: string;
  ownDir: boolean;
  rawFile: string;
  endpoints: Endpoint[];
  tandem: TandemAgent | null;
  /** Why Tandem is not in the run, when it is not. */
  tandemSkipped: string | null;
}

export const volumeName = 'bench';

export function makeScratch(options: BenchOptions): Bench {
  const ownDir = options.dir === null;
  const dir = options.dir ? path.resolve(options.dir) : fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-bench-'));
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const rawFile = path.join(dir, 'anchor.raw');
  fs.writeFileSync(rawFile, '');
  fs.truncateSync(rawFile, GiB);
  return { dir, logDir, ownDir, rawFile, endpoints: [], tandem: null, tandemSkipped: null };
}

/** Starts the agent (if its CLI exists) and makes the 1 GiB volume; a failure only drops Tandem. */
async function startTandem(bench: Bench, repoRoot: string): Promise<void> {
  if (!tandemPresent(repoRoot)) {
    bench.tandemSkipped = 'agents/src/cli/main.ts does not exist yet';
    return;
  }
  const dataDir = path.join(bench.dir, 'tandem');
  fs.rmSync(dataDir, { recursive: true, force: true });
  const agent = new TandemAgent(repoRoot, dataDir, bench.logDir);
  try {
    progress('tandem: init, run, volume create bench 1G');
    await agent.init();
    await agent.start();
    bench.tandem = agent;
    await agent.createVolume(volumeName, '1G');
    bench.endpoints.push(agent.endpoint(volumeName));
  } catch (error) {
    bench.tandemSkipped = `the agent did not come up: ${(error as Error).message}`;
    await agent.stop();
    bench.tandem = null;
  }
}

export async function startAll(bench: Bench, options: BenchOptions, repoRoot: string): Promise<void> {
  if (options.servers.includes('tandem')) await startTandem(bench, repoRoot);
  if (options.servers.includes('qemu-nbd')) bench.endpoints.push(await startQemuNbd(bench.rawFile, bench.logDir, volumeName));
  if (options.servers.includes('nbdkit')) bench.endpoints.push(await startNbdkit(bench.rawFile, bench.logDir, volumeName));
}

/** One sequential 1M qd16 pass over each store, so every measured write overwrites allocated data. */
export async function prefill(bench: Bench): Promise<Record<string, number>> {
  const seq = jobs[1];
  const result: Record<string, number> = {};
  for (const endpoint of bench.endpoints) {
    const r = await runFio(endpoint.uri, seq, { runtime: null });
    result[endpoint.name] = r.mibps;
    progress(`prefill ${endpoint.name}: ${r.mibps.toFixed(0)} MiB/s`);
  }
  return result;
}

export async function teardown(bench: Bench, keep: boolean): Promise<void> {
  for (const endpoint of bench.endpoints) await endpoint.stop().catch(() => {});
  bench.endpoints = [];
  if (bench.tandem) await bench.tandem.stop().catch(() => {});
  bench.tandem = null;
  if (bench.ownDir && !keep) fs.rmSync(bench.dir, { recursive: true, force: true });
}

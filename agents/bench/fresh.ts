import fs from 'node:fs';
import path from 'node:path';
import { startNbdkit, startQemuNbd, type Endpoint } from './anchors.ts';
import { rand4kQd1, runFio, type FioResult } from './fio.ts';
import { describeRun, progress, rotate, type JobSamples } from './interleave.ts';
import type { TandemAgent } from './tandem.ts';

export const GiB = 1024 ** 3;

/** A new, never-written 1 GiB store per server: a sparse raw file, a thin Tandem volume. */
async function freshEndpoint(name: string, rep: number, dir: string, logDir: string, tandem: TandemAgent | null): Promise<Endpoint> {
  if (name === 'tandem') {
    if (!tandem) throw new Error('tandem not running');
    const volume = `fresh${rep}`;
    await tandem.createVolume(volume, '1G');
    const endpoint = tandem.endpoint(volume);
    return { ...endpoint, stop: () => tandem.deleteVolume(volume).catch(() => {}) };
  }
  const file = path.join(dir, `fresh-${name}-${rep}.raw`);
  fs.writeFileSync(file, '');
  fs.truncateSync(file, GiB);
  const tag = `${name}-fresh${rep}`;
  const endpoint = name === 'qemu-nbd' ? await startQemuNbd(file, logDir, 'bench', 'raw', tag) : await startNbdkit(file, logDir, 'bench', tag);
  return {
    ...endpoint,
    name,
    stop: async () => {
      await endpoint.stop();
      fs.rmSync(file, { force: true });
    },
  };
}

/** 4K random qd1 into fresh thin stores (first write allocates), interleaved per rep. */
export async function freshRow(names: string[], reps: number, runtime: number, dir: string, logDir: string, tandem: TandemAgent | null): Promise<JobSamples> {
  const samples: Record<string, FioResult[]> = Object.fromEntries(names.map((n) => [n, [] as FioResult[]]));
  for (let rep = 0; rep < reps; rep++) {
    const endpoints: Endpoint[] = [];
    try {
      for (const name of names) endpoints.push(await freshEndpoint(name, rep, dir, logDir, tandem));
      for (const endpoint of rotate(endpoints, rep)) {
        const result = await runFio(endpoint.uri, rand4kQd1, { runtime });
        samples[endpoint.name].push(result);
        progress(`[fresh ${rep + 1}/${reps}] ${describeRun(endpoint.name, rand4kQd1, result)}`);
      }
    } finally {
      for (const endpoint of endpoints) await endpoint.stop();
    }
  }
  return { job: rand4kQd1, samples };
}

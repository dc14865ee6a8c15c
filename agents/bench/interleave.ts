import type { Endpoint } from './anchors.ts';
import { headline, runFio, type FioJob, type FioResult, type FioRunOptions } from './fio.ts';
import { num } from './format.ts';
import { processCpuMs } from './procs.ts';

/** Every fio result of one job, per server name, in run order. */
export interface JobSamples {
  job: FioJob;
  samples: Record<string, FioResult[]>;
}

/** Rotates [a, b, c] by k: k=1 -> [b, c, a]. */
export function rotate<T>(items: T[], k: number): T[] {
  const n = items.length;
  if (n === 0) return [];
  const s = ((k % n) + n) % n;
  return [...items.slice(s), ...items.slice(0, s)];
}

export function progress(text: string): void {
  process.stderr.write(`  ${text}\n`);
}

export function describeRun(name: string, job: FioJob, r: FioResult): string {
  const flush = r.syncP50us === null ? '' : ` (write ${num(r.clatP50us)} + flush ${num(r.syncP50us)})`;
  const cpu = r.serverCpuUs === undefined ? '' : `, server CPU ${num(r.serverCpuUs)} µs/${job.metric === 'MiB/s' ? 'MiB' : 'IO'}`;
  return `${job.label.padEnd(20)} ${name.padEnd(8)} ${num(headline(job, r)).padStart(7)} ${job.metric.padEnd(5)} p50 ${num(r.p50us)} µs${flush}${cpu}`;
}

/**
 * One fio run against an endpoint, with the CPU time its server process
 * spent meanwhile per operation (per MiB for MiB/s jobs): on two shared
 * cores throughput swings, CPU per operation much less.
 */
export async function measuredRun(endpoint: Endpoint, job: FioJob, options: FioRunOptions, uri = endpoint.uri): Promise<FioResult> {
  const before = processCpuMs(endpoint.pid);
  const result = await runFio(uri, job, options);
  const after = processCpuMs(endpoint.pid);
  if (before !== null && after !== null) {
    const units = job.metric === 'MiB/s' ? (result.mibps * result.runtimeMs) / 1000 : result.totalIos;
    if (units > 0) result.serverCpuUs = ((after - before) * 1000) / units;
  }
  return result;
}

/**
 * For each repetition, for each job, runs every endpoint in turn, rotating
 * which goes first so drift on a shared machine spreads evenly.
 */
export async function interleave(endpoints: Endpoint[], jobs: FioJob[], reps: number, runtime: number): Promise<JobSamples[]> {
  const results: JobSamples[] = jobs.map((job) => ({
    job,
    samples: Object.fromEntries(endpoints.map((e) => [e.name, [] as FioResult[]])),
  }));
  for (let rep = 0; rep < reps; rep++) {
    for (let j = 0; j < jobs.length; j++) {
      const job = jobs[j];
      for (const endpoint of rotate(endpoints, rep + j)) {
        const result = await measuredRun(endpoint, job, { runtime });
        results[j].samples[endpoint.name].push(result);
        progress(`[rep ${rep + 1}/${reps}] ${describeRun(endpoint.name, job, result)}`);
      }
    }
  }
  return results;
}

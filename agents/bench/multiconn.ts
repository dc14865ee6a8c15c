/**
 * The multi-connection leg of bench:nbd (issue 15): N fio jobs, each with its
 * own NBD connection to the same export and its own slice of it, reported
 * together (`--group_reporting`). Servers advertising NBD_FLAG_CAN_MULTI_CONN
 * let clients such as nbdcopy and qemu do this by themselves.
 */
import type { Endpoint } from './anchors.ts';
import { resultOf, runFioArgs, type FioResult } from './fio.ts';
import { median, num, ratio, table } from './format.ts';
import { progress, rotate } from './interleave.ts';
import { processCpuMs } from './procs.ts';

export interface MultiConnJob {
  id: string;
  label: string;
  metric: 'MiB/s' | 'IOPS';
  direction: 'read' | 'write';
  args: string[];
}

export const multiConnJobs: MultiConnJob[] = [
  { id: 'mc-seq1m-read', label: 'seq 1M read qd8/conn', metric: 'MiB/s', direction: 'read', args: ['--rw=read', '--bs=1M', '--iodepth=8'] },
  { id: 'mc-seq1m-write', label: 'seq 1M write qd8/conn', metric: 'MiB/s', direction: 'write', args: ['--rw=write', '--bs=1M', '--iodepth=8'] },
  { id: 'mc-rand4k-read', label: '4K rand read qd16/conn', metric: 'IOPS', direction: 'read', args: ['--rw=randread', '--bs=4k', '--iodepth=16'] },
];

/** results[job id][connections][server] = samples */
export type MultiConnResults = Record<string, Record<number, Record<string, FioResult[]>>>;

const GiB = 1024 ** 3;

async function runConnections(endpoint: Endpoint, job: MultiConnJob, connections: number, runtime: number): Promise<FioResult> {
  const slice = Math.floor(GiB / connections / (1024 * 1024)) * 1024 * 1024;
  const before = processCpuMs(endpoint.pid);
  const parsed = await runFioArgs(
    [
      '--ioengine=nbd', `--uri=${endpoint.uri}`, '--name=mc', ...job.args,
      `--numjobs=${connections}`, '--group_reporting', `--size=${slice}`, `--offset_increment=${slice}`,
      '--time_based', `--runtime=${runtime}`,
    ],
    (runtime + 60) * 1000,
    `fio ${job.id} x${connections} on ${endpoint.uri}`,
  );
  const after = processCpuMs(endpoint.pid);
  const result = resultOf(parsed.jobs[0], job.direction, job.id);
  if (before !== null && after !== null) {
    const units = job.metric === 'MiB/s' ? (result.mibps * result.runtimeMs) / 1000 : result.totalIos;
    if (units > 0) result.serverCpuUs = ((after - before) * 1000) / units;
  }
  return result;
}

export async function multiConnSection(endpoints: Endpoint[], counts: number[], reps: number, runtime: number): Promise<MultiConnResults> {
  const results: MultiConnResults = {};
  for (let rep = 0; rep < reps; rep++) {
    for (const job of multiConnJobs) {
      for (const connections of counts) {
        for (const endpoint of rotate(endpoints, rep + connections)) {
          const result = await runConnections(endpoint, job, connections, runtime);
          ((results[job.id] ??= {})[connections] ??= {})[endpoint.name] ??= [];
          results[job.id][connections][endpoint.name].push(result);
          const value = job.metric === 'MiB/s' ? result.mibps : result.iops;
          progress(`[multi-conn ${rep + 1}/${reps}] ${job.label.padEnd(22)} x${connections} ${endpoint.name.padEnd(8)} ${num(value).padStart(7)} ${job.metric}`);
        }
      }
    }
  }
  return results;
}

export function renderMultiConn(results: MultiConnResults, counts: number[], names: string[]): string {
  const rows: string[][] = [];
  for (const job of multiConnJobs) {
    const byCount = results[job.id];
    if (!byCount) continue;
    const value = (r: FioResult): number => (job.metric === 'MiB/s' ? r.mibps : r.iops);
    const med = (connections: number, name: string): number | null => {
      const samples = byCount[connections]?.[name];
      return samples?.length ? median(samples.map(value)) : null;
    };
    for (const connections of counts) {
      const t = med(connections, 'tandem');
      const n = med(connections, 'nbdkit');
      const t1 = med(counts[0], 'tandem');
      rows.push([
        `${job.label} (${job.metric})`,
        String(connections),
        ...names.map((name) => num(med(connections, name))),
        t !== null && n ? ratio(t / n) : '—',
        t !== null && t1 ? ratio(t / t1) : '—',
      ]);
    }
  }
  return table(['job', 'connections', ...names, 't/nbdkit', `tandem vs ${counts[0]} conn`], rows);
}

import { run } from './procs.ts';

/** One fio job shape of BENCHMARKS.md. */
export interface FioJob {
  id: string;
  label: string;
  /** What the table shows for it. */
  metric: 'MiB/s' | 'IOPS';
  args: string[];
}

export const jobs: FioJob[] = [
  { id: 'seq1m-qd1', label: 'seq 1M qd1', metric: 'MiB/s', args: ['--rw=write', '--bs=1M', '--iodepth=1'] },
  { id: 'seq1m-qd16', label: 'seq 1M qd16', metric: 'MiB/s', args: ['--rw=write', '--bs=1M', '--iodepth=16'] },
  { id: 'rand4k-qd1', label: '4K rand qd1', metric: 'IOPS', args: ['--rw=randwrite', '--bs=4k', '--iodepth=1'] },
  { id: 'rand4k-qd32', label: '4K rand qd32', metric: 'IOPS', args: ['--rw=randwrite', '--bs=4k', '--iodepth=32'] },
  {
    id: 'rand4k-qd1-flush',
    label: '4K qd1 + flush each',
    metric: 'IOPS',
    args: ['--rw=randwrite', '--bs=4k', '--iodepth=1', '--fsync=1'],
  },
];

export const rand4kQd1 = jobs[2];

/** What one fio run measured (write direction). */
export interface FioResult {
  mibps: number;
  iops: number;
  /** Write completion latency p50, µs. */
  clatP50us: number;
  /** Flush latency p50, µs (jobs with --fsync), else null. */
  syncP50us: number | null;
  /** Per-operation p50: write clat + flush p50 when flushing. */
  p50us: number;
  totalIos: number;
  runtimeMs: number;
}

export function nbdUri(port: number, exportName: string, host = '127.0.0.1'): string {
  return `nbd://${host}:${port}/${encodeURIComponent(exportName)}`;
}

interface FioJson {
  jobs: Array<{
    error: number;
    write: {
      bw_bytes: number;
      iops: number;
      runtime: number;
      total_ios: number;
      clat_ns: { percentile?: Record<string, number> };
    };
    sync?: { total_ios: number; lat_ns: { percentile?: Record<string, number> } };
  }>;
}

/** fio's nbd engine prints "fio: connected to NBD server" before the JSON. */
function parseFio(stdout: string): FioJson {
  const start = stdout.indexOf('\n{');
  const text = stdout.startsWith('{') ? stdout : stdout.slice(start + 1);
  return JSON.parse(text) as FioJson;
}

export interface FioRunOptions {
  /** Seconds, time-based; null runs the job over the whole size once. */
  runtime: number | null;
  size?: string;
  extra?: string[];
}

export async function runFio(uri: string, job: FioJob, options: FioRunOptions): Promise<FioResult> {
  const args = [
    '--ioengine=nbd',
    `--uri=${uri}`,
    '--name=t',
    `--size=${options.size ?? '1G'}`,
    ...job.args,
    ...(options.runtime === null ? [] : ['--time_based', `--runtime=${options.runtime}`]),
    ...(options.extra ?? []),
    '--output-format=json',
  ];
  const timeoutMs = options.runtime === null ? 600_000 : (options.runtime + 60) * 1000;
  const result = await run('fio', args, { timeoutMs });
  if (result.code !== 0) {
    throw new Error(`fio ${job.id} on ${uri} failed (exit ${result.code}):\n${result.stderr.trim() || result.stdout.slice(-2000)}`);
  }
  const parsed = parseFio(result.stdout);
  const one = parsed.jobs[0];
  if (!one || one.error !== 0) throw new Error(`fio ${job.id} on ${uri} reported error ${one?.error}`);
  const w = one.write;
  const clat = (w.clat_ns.percentile?.['50.000000'] ?? 0) / 1000;
  const sync = one.sync && one.sync.total_ios > 0 ? (one.sync.lat_ns.percentile?.['50.000000'] ?? 0) / 1000 : null;
  return {
    mibps: w.bw_bytes / 1024 / 1024,
    iops: w.iops,
    clatP50us: clat,
    syncP50us: sync,
    p50us: clat + (sync ?? 0),
    totalIos: w.total_ios,
    runtimeMs: w.runtime,
  };
}

/** The number the table shows for this job. */
export function headline(job: FioJob, result: FioResult): number {
  return job.metric === 'MiB/s' ? result.mibps : result.iops;
}

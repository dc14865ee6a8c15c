import { run } from './procs.ts';

/** One fio job shape of BENCHMARKS.md. */
export interface FioJob {
  id: string;
  label: string;
  /** What the table shows for it. */
  metric: 'MiB/s' | 'IOPS';
  args: string[];
  /** The direction the job measures (default write). */
  direction?: 'read' | 'write';
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

/** The read twins of the first four jobs (issue 15: reads and writes). */
export const readJobs: FioJob[] = [
  { id: 'seq1m-qd1-read', label: 'seq 1M qd1 read', metric: 'MiB/s', direction: 'read', args: ['--rw=read', '--bs=1M', '--iodepth=1'] },
  { id: 'seq1m-qd16-read', label: 'seq 1M qd16 read', metric: 'MiB/s', direction: 'read', args: ['--rw=read', '--bs=1M', '--iodepth=16'] },
  { id: 'rand4k-qd1-read', label: '4K rand qd1 read', metric: 'IOPS', direction: 'read', args: ['--rw=randread', '--bs=4k', '--iodepth=1'] },
  { id: 'rand4k-qd32-read', label: '4K rand qd32 read', metric: 'IOPS', direction: 'read', args: ['--rw=randread', '--bs=4k', '--iodepth=32'] },
];

export const allJobs: FioJob[] = [...jobs, ...readJobs];

export const rand4kQd1 = jobs[2];

/** What one fio run measured (in the job's direction). */
export interface FioResult {
  mibps: number;
  iops: number;
  /** Completion latency p50, µs. */
  clatP50us: number;
  /** Completion latency p99, µs. */
  clatP99us: number;
  /** Flush latency p50, µs (jobs with --fsync), else null. */
  syncP50us: number | null;
  /** Per-operation p50: write clat + flush p50 when flushing. */
  p50us: number;
  totalIos: number;
  runtimeMs: number;
  /** CPU time the server process spent during the run per operation (per MiB for MiB/s jobs), µs; when known. */
  serverCpuUs?: number;
}

export function nbdUri(port: number, exportName: string, host = '127.0.0.1'): string {
  return `nbd://${host}:${port}/${encodeURIComponent(exportName)}`;
}

interface FioDirection {
  bw_bytes: number;
  iops: number;
  runtime: number;
  total_ios: number;
  clat_ns: { percentile?: Record<string, number> };
}

export interface FioJobJson {
  jobname: string;
  error: number;
  read: FioDirection;
  write: FioDirection;
  sync?: { total_ios: number; lat_ns: { percentile?: Record<string, number> } };
}

export interface FioJson {
  jobs: FioJobJson[];
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
  ];
  const timeoutMs = options.runtime === null ? 600_000 : (options.runtime + 60) * 1000;
  const parsed = await runFioArgs(args, timeoutMs, `fio ${job.id} on ${uri}`);
  return resultOf(parsed.jobs[0], job.direction ?? 'write', `fio ${job.id} on ${uri}`);
}

/** Runs fio with these arguments (JSON output added) and returns its parsed report. */
export async function runFioArgs(args: string[], timeoutMs: number, what: string): Promise<FioJson> {
  const result = await run('fio', [...args, '--output-format=json'], { timeoutMs });
  if (result.code !== 0) {
    throw new Error(`${what} failed (exit ${result.code}):\n${result.stderr.trim() || result.stdout.slice(-2000)}`);
  }
  return parseFio(result.stdout);
}

/** One job of a fio report, in one direction. */
export function resultOf(one: FioJobJson | undefined, direction: 'read' | 'write', what: string): FioResult {
  if (!one || one.error !== 0) throw new Error(`${what} reported error ${one?.error}`);
  const w = direction === 'read' ? one.read : one.write;
  const clat = (w.clat_ns.percentile?.['50.000000'] ?? 0) / 1000;
  const clat99 = (w.clat_ns.percentile?.['99.000000'] ?? 0) / 1000;
  const sync = one.sync && one.sync.total_ios > 0 ? (one.sync.lat_ns.percentile?.['50.000000'] ?? 0) / 1000 : null;
  return {
    mibps: w.bw_bytes / 1024 / 1024,
    iops: w.iops,
    clatP50us: clat,
    clatP99us: clat99,
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

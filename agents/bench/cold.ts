/**
 * The cold-read leg of bench:nbd (issue 15): a read that misses the page
 * cache must never stall the server for its other clients. Per server, the
 * export's data files are dropped from the page cache (fdatasync, then
 * POSIX_FADV_DONTNEED through `dd oflag=nocache count=0`: only these files,
 * not the whole machine's cache), a small hot region is read once, and then
 * in one fio process: client "cold" reads the rest sequentially (1M qd16, one
 * pass, every read a page-cache miss) while client "hot" (its own
 * connection) reads 4K at random from the hot region at qd1; `--exitall`
 * stops "hot" when "cold" is done, so its percentiles cover exactly the
 * contended time. The same "hot" client alone first gives its baseline.
 */
import type { Endpoint } from './anchors.ts';
import { resultOf, runFioArgs, type FioResult } from './fio.ts';
import { median, num, ratio, table } from './format.ts';
import { progress, rotate } from './interleave.ts';
import { run } from './procs.ts';

const HOT = { offset: '0', size: '64M' };
const COLD = { offset: '128M', size: '896M' };

export interface ColdSample {
  /** The hot client alone (warm cache). */
  alone: FioResult;
  /** The hot client while the cold reader runs. */
  contended: FioResult;
  /** The cold reader (1M qd16, page-cache misses). */
  cold: FioResult;
}

export type ColdResults = Record<string, ColdSample[]>;

/** Drops `files` from the page cache (dirty pages are written first). */
export async function dropFromPageCache(files: string[]): Promise<void> {
  for (const file of files) {
    const result = await run('dd', ['if=/dev/null', `of=${file}`, 'oflag=nocache', 'conv=notrunc,fdatasync', 'count=0', 'status=none']);
    if (result.code !== 0) throw new Error(`dropping ${file} from the page cache failed: ${result.stderr}`);
  }
}

const nbd = (uri: string): string[] => ['--ioengine=nbd', `--uri=${uri}`];
const hotJob = (uri: string, runtime: number): string[] => [
  '--name=hot', ...nbd(uri), '--rw=randread', '--bs=4k', '--iodepth=1', `--offset=${HOT.offset}`, `--size=${HOT.size}`,
  '--time_based', `--runtime=${runtime}`,
];

async function oneServer(endpoint: Endpoint, runtime: number): Promise<ColdSample> {
  const uri = endpoint.uri;
  const files = endpoint.dataFiles?.() ?? [];
  if (files.length === 0) throw new Error(`${endpoint.name}: no data files to drop from the page cache`);
  await dropFromPageCache(files);
  // Warm the hot region again, then measure the hot client alone.
  await runFioArgs(['--name=warm', ...nbd(uri), '--rw=read', '--bs=1M', '--iodepth=4', `--offset=${HOT.offset}`, `--size=${HOT.size}`], 120_000, 'warm');
  const alone = resultOf((await runFioArgs(hotJob(uri, Math.min(runtime, 3)), 120_000, 'hot alone')).jobs[0], 'read', 'hot alone');
  const parsed = await runFioArgs(
    [
      '--exitall',
      '--name=cold', ...nbd(uri), '--rw=read', '--bs=1M', '--iodepth=16', `--offset=${COLD.offset}`, `--size=${COLD.size}`,
      ...hotJob(uri, 120),
    ],
    300_000,
    `cold read on ${uri}`,
  );
  const cold = resultOf(parsed.jobs.find((j) => j.jobname === 'cold'), 'read', 'cold');
  const contended = resultOf(parsed.jobs.find((j) => j.jobname === 'hot'), 'read', 'hot');
  return { alone, contended, cold };
}

/** Every server in turn per rep (rotating), each from a dropped cache. */
export async function coldSection(endpoints: Endpoint[], reps: number, runtime: number): Promise<ColdResults> {
  const results: ColdResults = Object.fromEntries(endpoints.map((e) => [e.name, [] as ColdSample[]]));
  for (let rep = 0; rep < reps; rep++) {
    for (const endpoint of rotate(endpoints, rep)) {
      const sample = await oneServer(endpoint, runtime);
      results[endpoint.name].push(sample);
      progress(
        `[cold ${rep + 1}/${reps}] ${endpoint.name.padEnd(8)} cold 1M qd16 ${num(sample.cold.mibps)} MiB/s; ` +
          `hot 4K qd1 p50/p99 alone ${num(sample.alone.clatP50us)}/${num(sample.alone.clatP99us)} µs, ` +
          `beside the cold reader ${num(sample.contended.clatP50us)}/${num(sample.contended.clatP99us)} µs`,
      );
    }
  }
  return results;
}

/** A hot client's p99 beside a cold reader may grow by at most this factor over its own p99 alone. */
export const coldP99MaxGrowth = 3;

export function renderCold(results: ColdResults): string {
  const names = Object.keys(results).filter((n) => results[n].length > 0);
  const m = (name: string, pick: (s: ColdSample) => number): number => median(results[name].map(pick));
  const rows = names.map((name) => {
    const growth = m(name, (s) => s.contended.clatP99us / Math.max(1, s.alone.clatP99us));
    const cold = m(name, (s) => s.cold.mibps);
    const versus = (anchor: string): string => (results[anchor]?.length ? ratio(cold / m(anchor, (s) => s.cold.mibps)) : '—');
    return [
      name,
      num(cold),
      `${versus('qemu-nbd')} / ${versus('nbdkit')}`,
      `${num(m(name, (s) => s.alone.clatP50us))} / ${num(m(name, (s) => s.alone.clatP99us))}`,
      `${num(m(name, (s) => s.contended.clatP50us))} / ${num(m(name, (s) => s.contended.clatP99us))}`,
      `${growth.toFixed(2)}×`,
      name === 'tandem' ? `≤ ${coldP99MaxGrowth}×` : '',
      name === 'tandem' ? (growth <= coldP99MaxGrowth ? 'PASS' : 'MISS') : '',
    ];
  });
  return table(
    ['server', 'cold 1M qd16 read MiB/s', 'vs qemu-nbd / nbdkit', 'hot 4K qd1 p50 / p99 µs alone', 'beside cold reader', 'p99 growth', 'target', ''],
    rows,
  );
}

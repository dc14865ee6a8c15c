/**
 * `npm run bench:flash`: flash copy establish time (1 GiB full, 1 TiB
 * sparse) through the API and inside the agent against `qemu-img create -f
 * qcow2 -b`; first source writes after an establish as a ratio of plain
 * writes (4K qd1, fio over NBD) beside a qcow2 overlay against raw under
 * qemu-nbd; background copy throughput against the disk's sequential write
 * bandwidth. Interleaved, medians, ratios and the BENCHMARKS.md targets.
 *
 *     npm run bench:flash                       # default: ~2-3 min
 *     npm run bench:flash -- --quick            # 1 rep, 1 s fio runs, 3 establish samples
 *     npm run bench:flash -- --reps 5 --samples 15 --json /tmp/flash.json
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eachArg, positiveInt, UsageError } from './args.ts';
import { median, num, ratio, table } from './format.ts';
import { progress } from './interleave.ts';
import { installExitHooks } from './procs.ts';
import { loadAverage, loadLine, parseOrExit, runBench, writeJsonReport } from './run.ts';
import { TandemAgent } from './tandem.ts';
import { firstWriteMinRatio, snapshotCreateMaxMs, verdict } from './targets.ts';
import {
  FlashApi,
  makeBases,
  makeVolumes,
  sizes,
  timeBackgroundCopy,
  timeEstablish,
  timeFirstWrites,
  type CopyThroughput,
  type EstablishTimes,
  type FirstWrites,
} from './flash-runs.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
interface FlashBenchOptions {
  reps: number;
  samples: number;
  dir: string | null;
  json: string | null;
  keep: boolean;
}

const usage = `usage: npm run bench:flash -- [options]
  --quick        1 rep, 3 establish samples
  --reps N       interleaved repetitions of the first-write and copy sections (default 3)
  --samples N    establish samples per size (default 7)
  --dir DIR      scratch directory (default: a new one under /tmp, removed at exit)
  --json FILE    also write the results as JSON
  --keep         keep the scratch directory`;

function parse(argv: string[]): FlashBenchOptions {
  const options: FlashBenchOptions = { reps: 3, samples: 7, dir: null, json: null, keep: false };
  eachArg(argv, (arg, value) => {
    switch (arg) {
      case '--quick': Object.assign(options, { reps: 1, samples: 3 }); break;
      case '--reps': options.reps = positiveInt(arg, value()); break;
      case '--samples': options.samples = positiveInt(arg, value()); break;
      case '--dir': options.dir = value(); break;
      case '--json': options.json = value(); break;
      case '--keep': options.keep = true; break;
      case '-h': case '--help': throw new UsageError('');
      default: throw new UsageError(`unknown option ${arg}`);
    }
  });
  return options;
}

function options(): FlashBenchOptions {
  return parseOrExit(parse, usage);
}

const med = (values: number[]): number | null => (values.length ? median(values) : null);
const ms = (value: number | null): string => (value === null ? '—' : `${num(value)} ms`);
const iops = (list: { iops: number }[]): number | null => med(list.map((x) => x.iops));
const quotient = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);

function render(est: EstablishTimes, fw: FirstWrites, copy: CopyThroughput, opts: FlashBenchOptions, tandemError: string | null): string {
  const api = sizes.map((size) => med(est.apiMs[size]));
  const agent = sizes.map((size) => med(est.agentMs[size]));
  const within = api.every((v) => v !== null) ? api.every((v) => v! <= snapshotCreateMaxMs) : null;
  const withinAgent = agent.every((v) => v !== null) ? agent.every((v) => v! <= snapshotCreateMaxMs) : null;
  const establishRows = [
    [`tandem flash establish, API round trip (median of ${opts.samples})`, ...api.map(ms), `≤ ${snapshotCreateMaxMs} ms, flat`, verdict(within)],
    ['tandem, inside the agent (fastify responseTime)', ...agent.map(ms), `≤ ${snapshotCreateMaxMs} ms, flat`, verdict(withinAgent)],
    ['tandem, source writes held (session holdMs)', ...sizes.map((size) => ms(med(est.holdMs[size]))), '', ''],
    ['tandem, GET /v1/agent round trip (API share)', ms(med(est.getMs)), '', '', ''],
    ['anchor: qemu-img create -f qcow2 -b (whole process)', ...sizes.map((size) => ms(med(est.qemuImgMs[size]))), '15–17 ms', ''],
  ];
  // Plain and first-write runs of one rep follow each other: the median of the per-rep ratios resists drift.
  const perRep = (after: { iops: number }[], plain: { iops: number }[]): number[] => after.map((a, i) => a.iops / plain[i].iops);
  const tRatios = perRep(fw.tandemAfter, fw.tandemPlain);
  const qRatios = perRep(fw.qcowAfter, fw.qcowPlain);
  const tRatio = med(tRatios);
  const qRatio = med(qRatios);
  const list = (ratios: number[]): string => ratios.map((r) => r.toFixed(2)).join(', ') || '—';
  const firstRows = [
    ['tandem: after no-copy flash / after overwrite pass', num(iops(fw.tandemPlain)), num(iops(fw.tandemAfter)), list(tRatios), ratio(tRatio), `≥ ${firstWriteMinRatio}×`, verdict(tRatio === null ? null : tRatio >= firstWriteMinRatio)],
    ['info: tandem after a snapshot / after overwrite pass', num(iops(fw.tandemPlain)), num(iops(fw.tandemAfterSnapshot)), list(perRep(fw.tandemAfterSnapshot, fw.tandemPlain)), ratio(med(perRep(fw.tandemAfterSnapshot, fw.tandemPlain))), '', ''],
    ['anchor: qemu-nbd qcow2 overlay / raw', num(iops(fw.qcowPlain)), num(iops(fw.qcowAfter)), list(qRatios), ratio(qRatio), '0.39× (BENCHMARKS)', ''],
  ];
  const copyRatio = quotient(med(copy.tandemMiBps), med(copy.diskMiBps));
  const copyRows = [
    ['1 GiB full, no rate limit, establish to 100 %', num(med(copy.tandemMiBps)), num(med(copy.diskMiBps)), ratio(copyRatio), '— (no target; a copy reads and writes)', ''],
  ];
  return [
    `## Flash copy establish (no-copy, one pair; 1 TiB source thin with 64 MiB written)`,
    table(['establish', ...sizes, 'target', ''], establishRows),
    '',
    `## First source writes after establish, fio 4K rand qd1 over NBD, 2048 writes (8 MiB, ~94 % onto not-yet-copied tracks), median of ${opts.reps} interleaved reps`,
    table(['first write (IOPS, medians)', 'plain', 'first write', 'ratio per rep', 'median ratio', 'target', ''], firstRows),
    '',
    `## Background copy throughput, median of ${opts.reps}`,
    table(['background copy', 'tandem MiB/s', 'disk seq write MiB/s', 'ratio', 'target', ''], copyRows),
    ...(tandemError ? ['', `tandem part skipped or cut short: ${tandemError}`] : []),
  ].join('\n');
}

async function main(): Promise<void> {
  const opts = options();
  const ownDir = opts.dir === null;
  const dir = opts.dir ? path.resolve(opts.dir) : fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-bench-flash-'));
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const tandem = new TandemAgent(repoRoot, path.join(dir, 'tandem'), logDir);
  const teardown = async (): Promise<void> => {
    await tandem.stop().catch(() => {});
    if (ownDir && !opts.keep) fs.rmSync(dir, { recursive: true, force: true });
  };
  installExitHooks(teardown);
  const startedAt = new Date().toISOString();
  const loadBefore = loadAverage();
  try {
    progress(`scratch dir ${dir}; load average ${loadBefore}`);
    progress('tandem: init, run; volumes src1g (written), src1t (1 TiB, 64 MiB written), targets tgt1g, tgt1t');
    let tandemError: string | null = null;
    let flash: FlashApi | null = null;
    try {
      await tandem.init();
      await tandem.start();
      await makeVolumes(tandem);
      flash = new FlashApi(await tandem.api());
      await flash.establish('probe', 'src1g', 'tgt1g', false);
      await flash.drop('probe');
    } catch (error) {
      tandemError = (error as Error).message;
      progress(`tandem flash copy unavailable: ${tandemError}`);
      flash = null;
    }
    progress('anchors: 1 GiB raw file of data, 1 TiB sparse');
    const bases = await makeBases(dir);
    const establish = await timeEstablish(flash, flash ? tandem : null, bases, opts.samples, dir);
    const firstWrites = await timeFirstWrites(flash, flash ? tandem : null, bases['1 GiB full'], dir, logDir, opts.reps);
    const copy = await timeBackgroundCopy(flash, dir, opts.reps);
    const loadAfter = loadAverage();
    console.log(['', render(establish, firstWrites, copy, opts, tandemError), '', loadLine(loadBefore, loadAfter)].join('\n'));
    writeJsonReport(opts.json, { startedAt, loadBefore, loadAfter, options: opts, tandemError, establish, firstWrites, copy });
  } finally {
    await teardown();
  }
}

runBench('flash', main);

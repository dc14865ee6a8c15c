/**
 * `npm run bench:cdp` (issue 13): replication with the replica-side journal
 * against the same replication without it, side by side in one run.
 *
 * Two real agents (alpha -> beta, paired through the CLI); two sync sessions
 * of one 1 GiB copy set each, `plain` and `journaled`, the second with a
 * journal at beta. For each rep, for each job (4K random qd1, 1M sequential
 * qd16, fio over NBD into alpha's export), each session in turn (the order
 * rotating): medians, the ratio journaled/plain against the 0.8x target, and
 * at beta (the secondary) the read+write system calls and CPU per
 * replicated write, from /proc (every syscall, WAL and peer link included:
 * an upper bound on data I/Os, compared between the two). Then the journal's
 * bytes held per byte replicated, and instant image access: opening an
 * image at the newest point, half-way back and at the oldest point (median
 * of 5, each ended at once) against `qemu-img create -b` of an overlay.
 *
 *   npm run bench:cdp [-- --runtime 5 --reps 3 --size 256M --keep --dir DIR --json FILE]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApiClient } from './api.ts';
import { eachArg, UsageError } from './args.ts';
import { runFio, type FioJob } from './fio.ts';
import { median, num, ratio, table } from './format.ts';
import { progress } from './interleave.ts';
import { exportUri, startSession, startSites, stopSites, type MirrorSites } from './mirror-sites.ts';
import { installExitHooks, processCpuMs, run } from './procs.ts';
import { loadAverage, loadLine, parseOrExit, runBench, writeJsonReport } from './run.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

interface CdpOptions {
  runtime: number;
  reps: number;
  size: string;
  keep: boolean;
  dir: string | null;
  json: string | null;
}

const usage = `usage: npm run bench:cdp -- [options]
  --runtime SECONDS   seconds per fio run (default 5)
  --reps N            interleaved repetitions (default 3)
  --size SIZE         the region fio writes in each volume (default 256M)
  --dir DIR           scratch dir (default: a new one under /tmp, removed at exit)
  --keep              keep the scratch dir
  --json FILE         also write the results as JSON`;

function parseCdpArgs(argv: string[]): CdpOptions {
  const options: CdpOptions = { runtime: 5, reps: 3, size: '256M', keep: false, dir: null, json: null };
  eachArg(argv, (arg, value) => {
    const positive = (text: string) => {
      const n = Number(text);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`${arg} needs a positive whole number, not "${text}"`);
      return n;
    };
    if (arg === '--runtime') options.runtime = positive(value());
    else if (arg === '--reps') options.reps = positive(value());
    else if (arg === '--size') {
      options.size = value();
      if (!/^\d+[KMG]$/.test(options.size)) throw new UsageError(`--size needs a size like 256M, not "${options.size}"`);
    } else if (arg === '--dir') options.dir = value();
    else if (arg === '--json') options.json = value();
    else if (arg === '--keep') options.keep = true;
    else if (arg === '--help' || arg === '-h') throw new UsageError('');
    else throw new UsageError(`unknown option ${arg}`);
  });
  return options;
}

const benchJobs: Array<FioJob & { bytesPerIo: number }> = [
  { id: 'rand4k-qd1', label: '4K rand qd1', metric: 'IOPS', args: ['--rw=randwrite', '--bs=4k', '--iodepth=1'], bytesPerIo: 4096 },
  { id: 'seq1m-qd16', label: 'seq 1M qd16', metric: 'MiB/s', args: ['--rw=write', '--bs=1M', '--iodepth=16'], bytesPerIo: 1024 * 1024 },
];
const sessions = ['plain', 'journaled'] as const;
type SessionName = (typeof sessions)[number];

/** syscr + syscw of a process (every read/write family system call), or null where /proc/PID/io cannot be read. */
function syscalls(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const fields = new Map(fs.readFileSync(`/proc/${pid}/io`, 'utf8').trim().split('\n').map((line) => line.split(': ') as [string, string]));
    const total = Number(fields.get('syscr')) + Number(fields.get('syscw'));
    return Number.isFinite(total) ? total : null;
  } catch {
    return null;
  }
}

interface Cell {
  headline: number[];
  ios: number[];
  betaSyscallsPerIo: number[];
  betaCpuUsPerIo: number[];
}

async function api(client: ApiClient, method: string, url: string, body?: unknown): Promise<{ body: unknown; ms: number }> {
  const response = await client.request(method, url, body);
  if (response.status >= 300) throw new Error(`${method} ${url}: ${response.status} ${JSON.stringify(response.body)}`);
  return { body: response.body, ms: response.ms };
}

async function main(): Promise<void> {
  const opts = parseOrExit(parseCdpArgs, usage);
  for (const tool of ['fio', 'qemu-img']) {
    if (!(process.env.PATH ?? '').split(path.delimiter).some((dir) => fs.existsSync(path.join(dir, tool)))) throw new Error(`not on PATH: ${tool}`);
  }
  const ownDir = opts.dir === null;
  const dir = opts.dir ? path.resolve(opts.dir) : fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-bench-cdp-'));
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  let sites: MirrorSites | null = null;
  const teardown = async () => {
    await stopSites(sites);
    sites = null;
    if (ownDir && !opts.keep) fs.rmSync(dir, { recursive: true, force: true });
  };
  installExitHooks(teardown);
  const startedAt = new Date().toISOString();
  const loadBefore = loadAverage();
  try {
    progress(`scratch dir ${dir}; load average ${loadBefore}`);
    sites = await startSites(repoRoot, dir, logDir);
    const { alpha, beta, alphaApi, betaApi } = sites;
    for (const name of sessions) {
      await alpha.cli(['volume', 'create', `${name}-a`, '1G', '--json']);
      await beta.cli(['volume', 'create', `${name}-b`, '1G', '--json']);
      await startSession(sites, name, 'sync', `${name}-a`, `${name}-b`);
    }
    // Room for every write of the run: retention must not drop points for space while we measure.
    await beta.cli(['journal', 'set', 'journaled', '--size', '16G', '--window', '1h', '--json']);
    progress('sync sessions plain and journaled prepared; the journal of journaled is on at beta');
    // Every measured write overwrites data (a first write into a thin volume costs more in both).
    for (const name of sessions) await runFio(exportUri(alpha, `${name}-a`), { id: 'fill', label: 'fill', metric: 'MiB/s', args: ['--rw=write', '--bs=1M', '--iodepth=16'] }, { runtime: null, size: opts.size });
    const before = ((await api(betaApi, 'GET', '/v1/sessions/journaled/journal')).body as { status: { usedBytes: number } }).status.usedBytes;
    let journaledBytes = 0;

    const cells = new Map<string, Cell>();
    const cell = (job: string, session: SessionName) => {
      const key = `${job}/${session}`;
      if (!cells.has(key)) cells.set(key, { headline: [], ios: [], betaSyscallsPerIo: [], betaCpuUsPerIo: [] });
      return cells.get(key)!;
    };
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const job of benchJobs) {
        const order = rep % 2 === 0 ? sessions : [...sessions].reverse();
        for (const session of order) {
          const calls0 = syscalls(beta.pid);
          const cpu0 = processCpuMs(beta.pid ?? undefined);
          const result = await runFio(exportUri(alpha, `${session}-a`), job, { runtime: opts.runtime, size: opts.size });
          const calls1 = syscalls(beta.pid);
          const cpu1 = processCpuMs(beta.pid ?? undefined);
          const ios = result.totalIos;
          const c = cell(job.id, session);
          c.headline.push(job.metric === 'IOPS' ? result.iops : result.mibps);
          c.ios.push(ios);
          if (calls0 !== null && calls1 !== null && ios > 0) c.betaSyscallsPerIo.push((calls1 - calls0) / ios);
          if (cpu0 !== null && cpu1 !== null && ios > 0) c.betaCpuUsPerIo.push(((cpu1 - cpu0) * 1000) / ios);
          if (session === 'journaled') journaledBytes += ios * job.bytesPerIo;
          progress(`rep ${rep + 1} ${job.label} ${session}: ${num(job.metric === 'IOPS' ? result.iops : result.mibps)} ${job.metric}`);
        }
      }
    }

    const lines: string[] = [];
    lines.push(`## Replication with the journal vs without (sync, alpha -> beta on loopback), median of ${opts.reps} interleaved reps of ${opts.runtime} s`);
    const rows = benchJobs.map((job) => {
      const plain = cell(job.id, 'plain');
      const journaled = cell(job.id, 'journaled');
      const r = median(journaled.headline) / median(plain.headline);
      return [
        `${job.label} (${job.metric})`,
        num(median(plain.headline)),
        num(median(journaled.headline)),
        ratio(r),
        r >= 0.8 ? 'PASS' : 'MISS',
        `${num(median(plain.betaSyscallsPerIo))} / ${num(median(journaled.betaSyscallsPerIo))}`,
        `${num(median(plain.betaCpuUsPerIo))} / ${num(median(journaled.betaCpuUsPerIo))}`,
      ];
    });
    lines.push(table(['job', 'plain', 'journaled', 'ratio', 'target >= 0.8x', 'beta syscalls/write plain / journaled', 'beta CPU us/write plain / journaled'], rows), '');

    const status = ((await api(betaApi, 'GET', '/v1/sessions/journaled/journal')).body as { status: { usedBytes: number; pointCount: number } }).status;
    const held = status.usedBytes - before;
    lines.push(
      '## Journal space',
      `${num(journaledBytes / 1024 / 1024)} MiB replicated into journaled during the measured runs; the journal holds ${num(held / 1024 / 1024)} MiB more than before them: ${num(held / Math.max(journaledBytes, 1))} bytes held per byte replicated (a 4K write keeps its whole track of do data and the track it replaced as undo). ${status.pointCount} points.`,
      '',
    );

    // Image access at points further and further back.
    const points = ((await api(betaApi, 'GET', '/v1/sessions/journaled/journal/points?every=0')).body as { points: Array<{ seq: number; timeMs: number }> }).points;
    const picks = [
      { label: 'newest point', point: points[points.length - 1] },
      { label: 'half-way back', point: points[Math.floor(points.length / 2)] },
      { label: 'oldest point', point: points[0] },
    ].filter((pick) => pick.point !== undefined);
    const newestSeq = points[points.length - 1]?.seq ?? 0;
    const imageRows: string[][] = [];
    for (const pick of picks) {
      const opened: number[] = [];
      const ended: number[] = [];
      for (let i = 0; i < 5; i++) {
        const open = await api(betaApi, 'POST', '/v1/sessions/journaled/images', { seq: pick.point.seq });
        opened.push(open.ms);
        const id = (open.body as { id: number }).id;
        ended.push((await api(betaApi, 'DELETE', `/v1/sessions/journaled/images/${id}`)).ms);
      }
      const back = (Date.now() - pick.point.timeMs) / 1000;
      imageRows.push([pick.label, `${num(back)} s`, String(newestSeq - pick.point.seq), `${num(median(opened))} ms`, `${num(median(ended))} ms`, median(opened) < 1000 ? 'PASS' : 'MISS']);
    }
    // The anchor: a qcow2 overlay over a raw image (what a plain snapshot chain's "instant" access costs; rolling a
    // plain volume back to an older point would then need the data copied back as well).
    const base = path.join(dir, 'base.raw');
    await run('qemu-img', ['create', '-f', 'raw', base, '1G']);
    const overlay: number[] = [];
    for (let i = 0; i < 5; i++) {
      const file = path.join(dir, `overlay-${i}.qcow2`);
      const started = performance.now();
      const result = await run('qemu-img', ['create', '-f', 'qcow2', '-b', base, '-F', 'raw', file]);
      if (result.code !== 0) throw new Error(`qemu-img create -b failed: ${result.stderr}`);
      overlay.push(performance.now() - started);
    }
    imageRows.push(['anchor: qemu-img create -b (overlay only, no rollback)', '-', '-', `${num(median(overlay))} ms`, '-', '-']);
    lines.push(
      '## Instant image access (POST /v1/sessions/:name/images over a warm mutual-TLS connection, median of 5; each image ended at once)',
      table(['at', 'time back', 'records back', 'open', 'end', 'target < 1 s, flat'], imageRows),
      '',
    );
    const loadAfter = loadAverage();
    lines.push(loadLine(loadBefore, loadAfter));
    console.log(lines.join('\n'));
    writeJsonReport(opts.json, { startedAt, loadBefore, loadAfter, options: opts, cells: Object.fromEntries(cells), journaledBytes, heldBytes: held, images: imageRows });
  } finally {
    await teardown();
  }
}

runBench('cdp', main);

/**
 * `npm run bench:profile`: where the primary (alpha) and the secondary
 * (beta) spend their time per host write, for one mirror mode and one fio
 * job. The two agents of bench:mirror (beta pinned to its own CPU, as
 * there), a copy set in the chosen mode, one warm-up run, then one measured
 * fio run with both agents under `node --cpu-prof`; the profiles are cut to
 * the measured run and divided by its I/Os (cpu-profile.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eachArg, positiveInt, UsageError } from './args.ts';
import { cpuProfileTable, mainThreadProfile, windowCosts } from './cpu-profile.ts';
import { jobs, runFio } from './fio.ts';
import { num } from './format.ts';
import { progress } from './interleave.ts';
import { exportUri, startSession, startSites, stopSites, waitForState, type MirrorSites } from './mirror-sites.ts';
import { pinSites } from './pin.ts';
import { installExitHooks } from './procs.ts';
import { parseOrExit, runBench } from './run.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const modes = ['plain', 'async', 'semi-sync', 'sync', 'snapshot-shipping'] as const;
const REGION = '256M';

interface ProfileOptions {
  mode: (typeof modes)[number];
  job: string;
  runtime: number;
  top: number;
  pin: boolean;
  dir: string | null;
  keep: boolean;
}

const usage = `usage: npm run bench:profile -- [options]
  --mode MODE     plain, async, semi-sync, sync or snapshot-shipping (default async)
  --job ID        fio job: ${jobs.map((job) => job.id).join(', ')} (default rand4k-qd1)
  --runtime N     seconds of the measured fio run (default 8)
  --top N         functions listed per table (default 25)
  --no-pin        do not pin beta to its own CPU
  --dir DIR       scratch directory (default: a new one under /tmp, removed at exit)
  --keep          keep the scratch directory (the .cpuprofile files open in Chrome DevTools)`;

function parse(argv: string[]): ProfileOptions {
  const options: ProfileOptions = { mode: 'async', job: 'rand4k-qd1', runtime: 8, top: 25, pin: true, dir: null, keep: false };
  eachArg(argv, (arg, value) => {
    switch (arg) {
      case '--mode': {
        const mode = value();
        if (!(modes as readonly string[]).includes(mode)) throw new UsageError(`--mode: one of ${modes.join(', ')}, got ${mode}`);
        options.mode = mode as ProfileOptions['mode'];
        break;
      }
      case '--job': {
        const job = value();
        if (!jobs.some((each) => each.id === job)) throw new UsageError(`--job: one of ${jobs.map((each) => each.id).join(', ')}, got ${job}`);
        options.job = job;
        break;
      }
      case '--runtime': options.runtime = positiveInt(arg, value()); break;
      case '--top': options.top = positiveInt(arg, value()); break;
      case '--no-pin': options.pin = false; break;
      case '--dir': options.dir = value(); break;
      case '--keep': options.keep = true; break;
      case '-h': case '--help': throw new UsageError('');
      default: throw new UsageError(`unknown option ${arg}`);
    }
  });
  return options;
}

async function main(): Promise<void> {
  const opts = parseOrExit(parse, usage);
  const job = jobs.find((each) => each.id === opts.job)!;
  const ownDir = opts.dir === null;
  const dir = opts.dir ? path.resolve(opts.dir) : fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-bench-profile-'));
  const profiles = path.join(dir, 'profiles');
  fs.mkdirSync(profiles, { recursive: true });
  // Node options for the agent processes only (tandem.ts reads it when an agent starts).
  process.env.TANDEM_BENCH_AGENT_NODE_ARGS = `--cpu-prof --cpu-prof-dir=${profiles}`;
  let sites: MirrorSites | null = null;
  const teardown = async () => {
    await stopSites(sites);
    sites = null;
    if (ownDir && !opts.keep) fs.rmSync(dir, { recursive: true, force: true });
  };
  installExitHooks(teardown);
  try {
    sites = await startSites(repoRoot, dir, path.join(dir, 'logs'));
    // Alpha dials beta itself: the proxy process would share alpha's CPU.
    await sites.alpha.cli(['peers', 'set-link', 'beta', sites.betaLink, '--json']);
    progress(pinSites(opts.pin, sites.alpha.pid, sites.beta.pid).note);
    const uri = exportUri(sites.alpha, 'm');
    await sites.alpha.createVolume('m', REGION);
    await runFio(uri, jobs[1], { runtime: null, size: REGION }); // prefill: every measured write overwrites
    if (opts.mode !== 'plain') {
      await sites.beta.createVolume('c', REGION);
      progress(`session s (${opts.mode}): initial copy of ${REGION}`);
      await startSession(sites, 's', opts.mode, 'm', 'c');
    }
    await runFio(uri, job, { runtime: 1, size: REGION }); // warm-up
    if (opts.mode !== 'plain') await waitForState(sites.alphaApi, 's', 'prepared', 120_000, 50);
    const from = Number(process.hrtime.bigint() / 1000n);
    const result = await runFio(uri, job, { runtime: opts.runtime, size: REGION });
    const to = Number(process.hrtime.bigint() / 1000n);
    const state = opts.mode === 'plain' ? null : ((await sites.alphaApi.request('GET', '/v1/sessions/s')).body as { state: string }).state;
    const pids = { alpha: sites.alpha.pid!, beta: sites.beta.pid! };
    await stopSites(sites); // the agents write their profiles at their clean shutdown
    sites = null;
    const ios = result.totalIos;
    const lines = [
      `## ${opts.mode}, ${job.label}: ${job.metric === 'IOPS' ? `${num(result.iops)} IOPS` : `${num(result.mibps)} MiB/s`}, p50 ${num(result.clatP50us)} µs, ${ios} I/Os in ${opts.runtime} s` +
        (state && state !== 'prepared' ? ` — the session ended ${state} (it fell back to bitmaps during the run)` : ''),
      'Time per I/O (1M jobs: per MiB-sized I/O) of each agent\'s JS thread during the measured run: self = in the function itself,',
      'inclusive = with what it called. A sample inside a system call counts the call (writeBuffer, writev: socket and file writes).',
    ];
    for (const [agent, pid] of Object.entries(pids)) {
      const file = mainThreadProfile(profiles, pid);
      if (!file) {
        lines.push('', `${agent}: no profile was written (pid ${pid})`);
        continue;
      }
      const costs = windowCosts(file, from, to, ios, opts.top);
      lines.push('', `### ${agent}: busy ${num(costs.busyUs / Math.max(ios, 1))} µs per I/O (${num((100 * costs.busyUs) / Math.max(costs.sampledUs, 1))} % of the run)`);
      lines.push(cpuProfileTable(costs));
    }
    if (opts.keep || !ownDir) lines.push('', `profiles: ${profiles}`);
    console.log(lines.join('\n'));
  } finally {
    await teardown();
  }
}

runBench('profile', main);

/**
 * `npm run bench:mirror`: two real agent processes paired through the CLI,
 * alpha's peer link through the FaultProxy. 4K qd1 and 1M throughput of the
 * plain export vs async, semi-sync and sync with added round trips;
 * incremental resync against rsync; failback preflight against a full
 * compare and `qemu-img compare`. Interleaved runs, medians, ratios and the
 * targets of ../shared/BENCHMARKS.md. See mirror-args.ts for the options.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { progress } from './interleave.ts';
import { mirrorUsage, parseMirrorArgs, type MirrorOptions } from './mirror-args.ts';
import { measureLinkRtts, type LinkRtts } from './mirror-link.ts';
import { modeLegs, modesSection, renderModes, renderWritePathTargets, type ModeCell } from './mirror-modes.ts';
import { prepareResync, preflightSection, renderPreflight, renderResync, resyncSection, type PreflightResults, type ResyncTrial } from './mirror-resync.ts';
import { startSites, stopSites, type MirrorSites } from './mirror-sites.ts';
import { pinSites } from './pin.ts';
import { installExitHooks } from './procs.ts';
import { loadAverage, loadLine, parseOrExit, runBench, writeJsonReport } from './run.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
function options(): MirrorOptions {
  return parseOrExit(parseMirrorArgs, mirrorUsage);
}

/** The tools the chosen sections run, missing from PATH (checked up front: a late ENOENT would lose the earlier sections). */
function missingTools(opts: MirrorOptions): string[] {
  const tools = new Set<string>();
  if (opts.modes) tools.add('fio');
  if (opts.resync) tools.add('rsync');
  if (opts.resync || opts.preflight) for (const tool of ['fio', 'qemu-img', 'qemu-io']) tools.add(tool);
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  return [...tools].filter((tool) => !dirs.some((dir) => fs.existsSync(path.join(dir, tool))));
}

async function main(): Promise<void> {
  const opts = options();
  const missing = missingTools(opts);
  if (missing.length) throw new Error(`not on PATH: ${missing.join(', ')} (see Needs in agents/bench/README.md)`);
  const ownDir = opts.dir === null;
  const dir = opts.dir ? path.resolve(opts.dir) : fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-bench-mirror-'));
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
    progress(`agents alpha and beta paired; alpha -> beta through the proxy ${sites.proxy.address}`);
    const pinning = pinSites(opts.pin, sites.alpha.pid, sites.beta.pid);
    progress(pinning.note);
    const lines: string[] = ['', `CPUs: ${pinning.note}.`];
    let modes: Map<string, ModeCell> | null = null;
    let linkRtts: LinkRtts | null = null;
    let resync: ResyncTrial[] | null = null;
    let preflight: PreflightResults | null = null;
    if (opts.modes) {
      const legs = modeLegs(opts.rtts, opts.direct);
      progress('link round trip: 4K qd1 over a bench:link peer link, direct and through a proxy child at each added RTT');
      linkRtts = await measureLinkRtts(opts.rtts, Math.max(opts.reps, 3), 1);
      modes = await modesSection(sites, legs, opts.reps, opts.runtime, opts.only);
      lines.push(
        `## Mirror modes: fio --ioengine=nbd on alpha, ${opts.runtime} s per run, median of ${opts.reps} interleaved reps, 256 MiB prefilled region`,
        'leg: "+N ms proxy" = alpha\'s peer link through the FaultProxy, which delays alpha -> beta traffic by N ms (once per round trip);',
        '"+0 ms direct" = alpha\'s link dialing beta itself (no proxy): the proxy\'s own cost is the difference to "+0 ms proxy". Δp50 = p50 − plain p50 of that leg.',
        'link RTT = measured 4K round trip p50 of a peer link (mutual TLS, framing, checksums; bench:link\'s, a server process answering at once)',
        'on the same path: directly, or through a FaultProxy process with the same added delay; median of 1 s runs, one per rep (at least 3).',
        'CPU a+b = CPU time (user + system) of the alpha and beta agents per fio I/O (1M: per MiB), median: steadier than IOPS on a shared machine.',
        'sync target: added latency ≤ 1.2 × (RTT + remote write), remote write = plain 4K p50 of the leg (same disk and engine; it includes',
        'the NBD round trip, so it overstates the remote write). Old bound: RTT = the added delay (0 at +0 ms). Verdict: RTT = the measured link RTT.',
        'sync throughput ≥ 0.9 × min(local disk, link) is judged at +0 ms against the plain export (bench:link measures the link MiB/s apart).',
        'shipping = snapshot-shipping session (30 s cycles): host writes only mark tracks; first writes after a cycle\'s snapshot redirect.',
        '',
        renderModes(modes, legs, opts.only, linkRtts),
        '',
        '## Write path cost at the primary (issue 12 targets; judged on the first leg, +0 ms)',
        'primary CPU/IO = the alpha agent\'s CPU time per 4K write, median; the plain export\'s is the anchor.',
        '',
        renderWritePathTargets(modes, legs, opts.only, linkRtts),
        '',
      );
      // Each section's table is printed as soon as it is done (and again in the summary at the end).
      console.error(lines.join('\n'));
    }
    if (opts.resync || opts.preflight) {
      const context = await prepareResync(sites, dir, opts.resyncMiB);
      if (opts.resync) {
        resync = await resyncSection(sites, context, dir, opts.percents, opts.reps);
        const section = [`## Incremental resync vs rsync, median of ${opts.reps} interleaved reps`, renderResync(resync, opts.resyncMiB), ''];
        lines.push(...section);
        console.error(section.join('\n'));
      }
      if (opts.preflight) {
        preflight = await preflightSection(sites, context, dir, opts.resyncMiB, Math.max(opts.reps, 3));
        lines.push('## Failback preflight', renderPreflight(preflight), '');
      }
    }
    const loadAfter = loadAverage();
    lines.push(loadLine(loadBefore, loadAfter));
    console.log(lines.join('\n'));
    writeJsonReport(opts.json, { startedAt, loadBefore, loadAfter, options: opts, pinning, linkRtts, modes: modes ? [...modes.values()] : null, resync, preflight });
  } finally {
    await teardown();
  }
}

runBench('mirror', main);

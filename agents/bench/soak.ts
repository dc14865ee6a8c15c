/**
 * `npm run soak`: the fault campaign of agents/test/helpers/fault-campaign.ts
 * in its long form, mode after mode: real agents, real NBD writers, link
 * resets, dropping and holding stalls, kill -9 of H1 and H2 agents (by
 * default 100 link faults and 100 kills per mode), then the coverage, drain
 * and acknowledged-write checks. A row per mode goes to stderr as soon as
 * the mode ends (a long run loses nothing); the whole table to stdout at the
 * end. Exits 1 when any track differed after a drain, any differing track
 * was unmarked, or anything else failed; a failing mode's diagnostics (fault
 * timeline merged with both sites' events, what differed) go to a file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eachArg, positiveInt, UsageError } from './args.ts';
import { parseOrExit, writeJsonReport } from './run.ts';
import { formatTable } from '../src/cli/output.ts';
import { freshSeed } from '../test/helpers/campaign-rng.ts';
import { campaignModes, runCampaign, type CampaignMode, type CampaignStats } from '../test/helpers/fault-campaign.ts';

interface SoakOptions {
  modes: CampaignMode[];
  linkFaults: number;
  kills: number;
  seed: number;
  volumeMiB: number;
  connections: number;
  queueDepth: number;
  checkEvery: number;
  json: string | null;
  reportDir: string;
  keep: boolean;
  verbose: boolean;
}

const usage = `usage: npm run soak -- [options]
  --modes LIST         comma list of ${campaignModes.join(',')} (default: all)
  --link-faults N      link faults per mode: resets, dropping and holding stalls at random (default 100)
  --kills N            kill -9 per mode, H1 and H2 agents at random (default 100)
  --seed N             the campaign seed (default: from the clock); mode i of the list above uses seed + i
  --volume-mib N       size of every volume (default 64)
  --connections N      NBD writer connections (default 2)
  --queue-depth N      writes in flight per connection (default 8)
  --check-every N      a quiescent coverage check every N faults, and one at the end (default 25)
  --json FILE          write every finished mode's results as JSON (rewritten after each mode)
  --report-dir DIR     where a failing mode's diagnostics go (default: the temp dir)
  --keep               keep the agents' data dirs of a failing mode
  --verbose            print every fault and check as it happens`;

function parseSoakArgs(argv: string[]): SoakOptions {
  const options: SoakOptions = {
    modes: [...campaignModes],
    linkFaults: 100,
    kills: 100,
    seed: freshSeed(),
    volumeMiB: 64,
    connections: 2,
    queueDepth: 8,
    checkEvery: 25,
    json: null,
    reportDir: os.tmpdir(),
    keep: false,
    verbose: false,
  };
  const count = (name: string, text: string) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 0) throw new UsageError(`${name} needs a whole number ≥ 0, got ${text}`);
    return value;
  };
  eachArg(argv, (arg, value) => {
    switch (arg) {
      case '--modes': {
        const list = value().split(',').filter(Boolean);
        for (const mode of list) if (!(campaignModes as readonly string[]).includes(mode)) throw new UsageError(`unknown mode ${mode}`);
        options.modes = list as CampaignMode[];
        break;
      }
      case '--link-faults': options.linkFaults = count(arg, value()); break;
      case '--kills': options.kills = count(arg, value()); break;
      case '--seed': options.seed = count(arg, value()); break;
      case '--volume-mib': options.volumeMiB = positiveInt(arg, value()); break;
      case '--connections': options.connections = positiveInt(arg, value()); break;
      case '--queue-depth': options.queueDepth = positiveInt(arg, value()); break;
      case '--check-every': options.checkEvery = count(arg, value()); break;
      case '--json': options.json = value(); break;
      case '--report-dir': options.reportDir = value(); break;
      case '--keep': options.keep = true; break;
      case '--verbose': options.verbose = true; break;
      case '-h': case '--help': throw new UsageError('');
      default: throw new UsageError(`unknown option ${arg}`);
    }
  });
  return options;
}

const header = ['MODE', 'SEED', 'RESETS', 'DROP STALLS', 'HOLD STALLS', 'KILL H1', 'KILL H1 CUT', 'KILL H2', 'ACKED WRITES CHECKED', 'TRACKS COMPARED', 'DIFFERING', 'UNCOVERED', 'STUCK', 'RESULT', 'TIME'];

function row(stats: CampaignStats): string[] {
  return [
    stats.mode,
    String(stats.seed),
    String(stats.faults['link-reset']),
    String(stats.faults['stall-drop']),
    String(stats.faults['stall-hold']),
    String(stats.faults['kill-h1']),
    String(stats.faults['kill-h1-cut']),
    String(stats.faults['kill-h2']),
    String(stats.ackedWritesChecked),
    String(stats.tracksCompared),
    String(stats.tracksDiffering),
    String(stats.uncoveredTracks),
    String(stats.stuckSuspensions),
    stats.failures.length === 0 ? 'pass' : `FAIL (${stats.failures.length})`,
    `${Math.round(stats.durationMs / 1000)} s`,
  ];
}

async function main(): Promise<void> {
  const options = parseOrExit(parseSoakArgs, usage);
  console.error(
    `soak: modes ${options.modes.join(', ')}; ${options.linkFaults} link faults and ${options.kills} kills per mode; seed ${options.seed} ` +
      `(replay: npm run soak -- --seed ${options.seed} --modes ${options.modes.join(',')} --link-faults ${options.linkFaults} --kills ${options.kills})`,
  );
  const results: CampaignStats[] = [];
  for (const mode of options.modes) {
    const seed = (options.seed + campaignModes.indexOf(mode)) >>> 0;
    const stats = await runCampaign({
      mode,
      seed,
      // The split of link faults and kills into kinds comes from the mode's seed.
      linkFaults: options.linkFaults,
      kills: options.kills,
      volumeMiB: options.volumeMiB,
      connections: options.connections,
      queueDepth: options.queueDepth,
      gapMs: [300, 3000],
      stallMs: [1000, 8000],
      checkEvery: options.checkEvery,
      keepDataOnFailure: options.keep,
      log: options.verbose ? (line) => console.error(line) : undefined,
    });
    results.push(stats);
    if (stats.failures.length > 0) {
      const file = path.join(options.reportDir, `soak-${mode}-${seed}.log`);
      fs.writeFileSync(file, `${stats.failures.join('\n\n')}\n\n${stats.diagnostics}\n`);
      console.error(`${mode}: ${stats.failures.length} failure(s), first: ${stats.failures[0].split('\n')[0]}\n  diagnostics in ${file}`);
    }
    console.error(formatTable(header, [row(stats)]));
    writeJsonReport(options.json, { seed: options.seed, linkFaults: options.linkFaults, kills: options.kills, results: results.map(({ diagnostics: _, ...rest }) => rest) });
  }
  console.log(formatTable(header, results.map(row)));
  const bad = results.filter((stats) => stats.failures.length > 0 || stats.tracksDiffering > 0 || stats.uncoveredTracks > 0);
  console.log(bad.length === 0 ? 'soak: every mode passed' : `soak: ${bad.length} mode(s) failed: ${bad.map((stats) => stats.mode).join(', ')}`);
  if (bad.length > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(`soak failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});

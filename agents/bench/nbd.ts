/**
 * `npm run bench:nbd`: the same fio jobs against Tandem, qemu-nbd and
 * nbdkit's file plugin, interleaved, then snapshot establish and
 * first-write-after-snapshot. Prints medians, ratios and the targets of
 * ../shared/BENCHMARKS.md. See args.ts for the options.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs, usage, type BenchOptions } from './args.ts';
import { allJobs } from './fio.ts';
import { coldSection, renderCold, type ColdResults } from './cold.ts';
import { multiConnSection, renderMultiConn, type MultiConnResults } from './multiconn.ts';
import { tlsSection } from './tls.ts';
import { freshRow } from './fresh.ts';
import { interleave, progress } from './interleave.ts';
import { installExitHooks } from './procs.ts';
import { makeScratch, prefill, startAll, teardown, type Bench } from './setup.ts';
import { loadAverage, loadLine, parseOrExit, runBench, writeJsonReport } from './run.ts';
import { renderSnapshots, snapshotSection, type SnapshotResults } from './snapshots.ts';
import { renderSummaries, summarize, type JobSummary } from './summary.ts';
import { exportTargets } from './targets.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function options(): BenchOptions {
  return parseOrExit(parseArgs, usage);
}

async function main(): Promise<void> {
  const opts = options();
  const jobs = opts.jobs ? allJobs.filter((j) => opts.jobs!.includes(j.id)) : allJobs;
  const bench: Bench = makeScratch(opts);
  installExitHooks(() => teardown(bench, opts.keep));
  const startedAt = new Date().toISOString();
  const loadBefore = loadAverage();
  try {
    progress(`scratch dir ${bench.dir}; load average ${loadBefore}`);
    await startAll(bench, opts, repoRoot);
    if (bench.tandemSkipped) progress(`tandem skipped: ${bench.tandemSkipped}`);
    const names = bench.endpoints.map((e) => e.name);
    const prefillMiBps = await prefill(bench);
    const main = jobs.length ? await interleave(bench.endpoints, jobs, opts.reps, opts.runtime) : [];
    const rows: JobSummary[] = summarize(main, exportTargets);
    if (opts.fresh) {
      const fresh = await freshRow(names, opts.reps, opts.runtime, bench.dir, bench.logDir, bench.tandem);
      rows.push(...summarize([fresh], {}, ' fresh thin'));
    }
    let cold: ColdResults | null = null;
    if (opts.cold) cold = await coldSection(bench.endpoints, opts.reps, opts.runtime);
    let multiConn: MultiConnResults | null = null;
    if (opts.multiConn) multiConn = await multiConnSection(bench.endpoints, opts.connections, opts.reps, opts.runtime);
    let snapshots: SnapshotResults | null = null;
    if (opts.snapshots) snapshots = await snapshotSection(bench, opts.snapSamples, opts.reps);

    // Last: the agent restarts with --tls for it.
    let tlsRows: JobSummary[] = [];
    let tlsError: string | null = null;
    if (opts.tls) {
      try {
        tlsRows = summarize(await tlsSection(bench, opts.reps, opts.runtime, names), {});
      } catch (error) {
        tlsError = (error as Error).message;
        progress(`TLS leg failed: ${tlsError}`);
      }
    }

    const lines = [
      '',
      `## NBD export, fio --ioengine=nbd, ${opts.runtime} s per run, median of ${opts.reps} interleaved reps`,
      `servers: ${names.join(', ')}${bench.tandemSkipped ? ` (tandem skipped: ${bench.tandemSkipped})` : ''}`,
      'Every store was prefilled by one sequential 1M qd16 pass first, so all rows above "fresh thin" overwrite',
      'allocated data (Tandem: allocated tracks; qemu-nbd and nbdkit share one raw file written by that pass).',
      `prefill pass MiB/s: ${Object.entries(prefillMiBps).map(([n, v]) => `${n} ${v.toFixed(0)}`).join(', ')}`,
      '"fresh thin" = 4K qd1 into a new thin volume / new sparse raw file per rep (first write allocates).',
      'p50 = fio clat p50; for "+ flush each" it is write p50 + flush p50. Server CPU = CPU time of the serving',
      'process during the run per IO (per MiB for MiB/s rows): steadier than throughput on shared cores.',
      '',
      renderSummaries(rows),
    ];
    if (cold) {
      lines.push('', '## Cold reads: a second client beside a reader of data not in the page cache (median of reps)', renderCold(cold));
    }
    if (multiConn) {
      lines.push('', `## Several connections to one export, ${opts.runtime} s per run, median of ${opts.reps}`, renderMultiConn(multiConn, opts.connections, names));
    }
    if (snapshots) lines.push('', '## Snapshots', renderSnapshots(snapshots, opts.snapSamples));
    if (tlsRows.length) {
      lines.push(
        '',
        `## NBD over TLS (x509 client certificates; qemu-nbd and nbdkit with TLS), nbdcopy timed per run, median of ${opts.reps}`,
        '(p50 column: mean time per request; no target in BENCHMARKS.md or issue 15 beyond running it beside qemu-nbd)',
        renderSummaries(tlsRows),
      );
    }
    if (tlsError) lines.push('', `TLS leg failed: ${tlsError}`);
    const loadAfter = loadAverage();
    lines.push('', loadLine(loadBefore, loadAfter));
    console.log(lines.join('\n'));
    writeJsonReport(opts.json, { startedAt, loadBefore, loadAfter, options: opts, servers: names, tandemSkipped: bench.tandemSkipped, prefillMiBps, rows, cold, multiConn, snapshots, tls: tlsRows, tlsError });
  } finally {
    await teardown(bench, opts.keep);
  }
}

runBench('nbd', main);

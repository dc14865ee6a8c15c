/**
 * `bench:mirror` sections 2 and 3: incremental resync against rsync, and the
 * failback preflight (valid codes, full compare) against `qemu-img compare`.
 */
import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { median, num, ratio, table } from './format.ts';
import { progress, rotate } from './interleave.ts';
import { action, exportUri, startSession, waitForState, type MirrorSites } from './mirror-sites.ts';
import { run } from './procs.ts';
import { verdict } from './targets.ts';

const TRACK = 65536;
const MiB = 1024 * 1024;
const SESSION = 'resync';

export interface ResyncTrial {
  percent: number;
  changedBytes: number;
  tandem: { ms: number; sentBytes: number };
  rsync: { ms: number; sentBytes: number };
}

export interface PreflightResults {
  sizeMiB: number;
  changedPercent: number;
  validCodesMs: number[];
  validCodesComputed: number[];
  fullCompareMs: number[];
  fullCompareColdMs: number;
  qemuCompareNbdMs: number[];
  qemuCompareFilesMs: number[];
  tracksToCopy: number[];
}

function pickTracks(trackCount: number, percent: number): number[] {
  const count = Math.max(1, Math.round((trackCount * percent) / 100));
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(randomInt(trackCount));
  return [...chosen].sort((a, b) => a - b);
}

async function must(command: string, args: string[], timeoutMs = 600_000) {
  const result = await run(command, args, { timeoutMs });
  if (result.code !== 0) throw new Error(`${command} failed (${result.code}): ${(result.stderr || result.stdout).slice(-1500)}`);
  return result;
}

/** Writes the pattern file's 64 KiB over each track through NBD (qemu-io), in batches. */
async function writeTracks(uri: string, tracks: number[], pattern: string): Promise<void> {
  for (let i = 0; i < tracks.length; i += 2000) {
    const commands = tracks.slice(i, i + 2000).flatMap((track) => ['-c', `write -q -s ${pattern} ${track * TRACK} ${TRACK}`]);
    await must('qemu-io', ['-f', 'raw', ...commands, uri]);
  }
}

export interface ResyncContext {
  cur: string;
  dest: string;
  trackCount: number;
}

/** The 1 GiB pair: random data through NBD, a sync session brought to prepared, then suspended. */
export async function prepareResync(sites: MirrorSites, dir: string, sizeMiB: number): Promise<ResyncContext> {
  const cur = path.join(dir, 'cur.raw');
  const dest = path.join(dir, 'dest.raw');
  const handle = fs.openSync(cur, 'w');
  for (let written = 0; written < sizeMiB; written += 16) fs.writeSync(handle, randomBytes(16 * MiB));
  fs.closeSync(handle);
  fs.copyFileSync(cur, dest);
  await sites.alpha.createVolume('rs', `${sizeMiB}M`);
  await sites.beta.createVolume('rs2', `${sizeMiB}M`);
  progress(`resync: ${sizeMiB} MiB of random data into alpha/rs, initial copy`);
  await must('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', cur, exportUri(sites.alpha, 'rs')]);
  await startSession(sites, SESSION, 'sync', 'rs', 'rs2');
  await action(sites.alphaApi, SESSION, 'suspend');
  return { cur, dest, trackCount: (sizeMiB * MiB) / TRACK };
}

export async function resyncSection(sites: MirrorSites, context: ResyncContext, dir: string, percents: number[], reps: number): Promise<ResyncTrial[]> {
  const trials: ResyncTrial[] = [];
  const pattern = path.join(dir, 'pattern.bin');
  for (let rep = 0; rep < reps; rep++) {
    for (const [p, percent] of percents.entries()) {
      const tracks = pickTracks(context.trackCount, percent);
      const data = randomBytes(TRACK);
      fs.writeFileSync(pattern, data);
      // The same change to the volume (suspended: tracks marked) and to rsync's source file.
      await writeTracks(exportUri(sites.alpha, 'rs'), tracks, pattern);
      const handle = fs.openSync(context.cur, 'r+');
      for (const track of tracks) fs.writeSync(handle, data, 0, TRACK, track * TRACK);
      fs.closeSync(handle);
      const trial: ResyncTrial = {
        percent,
        changedBytes: tracks.length * TRACK,
        tandem: { ms: 0, sentBytes: 0 },
        rsync: { ms: 0, sentBytes: 0 },
      };
      for (const tool of rotate(['tandem', 'rsync'], rep + p)) {
        if (tool === 'tandem') {
          const before = sites.proxy.forwarded.up;
          const started = performance.now();
          await action(sites.alphaApi, SESSION, 'resume');
          await waitForState(sites.alphaApi, SESSION, 'prepared', 600_000, 5);
          trial.tandem = { ms: performance.now() - started, sentBytes: sites.proxy.forwarded.up - before };
          await action(sites.alphaApi, SESSION, 'suspend');
        } else {
          const result = await must('rsync', ['--no-whole-file', '--stats', context.cur, context.dest]);
          const sent = /Total bytes sent:\s*([\d,.]+)/.exec(result.stdout);
          trial.rsync = { ms: result.ms, sentBytes: sent ? Number(sent[1].replace(/[,.]/g, '')) : Number.NaN };
        }
      }
      trials.push(trial);
      progress(
        `[rep ${rep + 1}/${reps}] resync ${percent} %: ${tracks.length} tracks; tandem ${num(trial.tandem.ms)} ms ${num(trial.tandem.sentBytes / trial.changedBytes)}× bytes; ` +
          `rsync ${num(trial.rsync.ms)} ms ${num(trial.rsync.sentBytes / trial.changedBytes)}× bytes`,
      );
    }
  }
  await action(sites.alphaApi, SESSION, 'resume');
  await waitForState(sites.alphaApi, SESSION, 'prepared', 600_000, 20);
  return trials;
}

export function renderResync(trials: ResyncTrial[], sizeMiB: number): string {
  const percents = [...new Set(trials.map((t) => t.percent))];
  const rows = percents.map((percent) => {
    const mine = trials.filter((t) => t.percent === percent);
    const changed = median(mine.map((t) => t.changedBytes));
    const tandemRatio = median(mine.map((t) => t.tandem.sentBytes / t.changedBytes));
    const rsyncRatio = median(mine.map((t) => t.rsync.sentBytes / t.changedBytes));
    const tandemMs = median(mine.map((t) => t.tandem.ms));
    const rsyncMs = median(mine.map((t) => t.rsync.ms));
    const timeRatio = tandemMs / rsyncMs;
    const bytesOk = tandemRatio <= 1.05;
    const pass = percent === 0.1 ? bytesOk && timeRatio <= 0.1 : bytesOk;
    return [
      `${percent} %`,
      `${num(changed / MiB)} MiB`,
      `${num(tandemRatio)}×`,
      `${num(rsyncRatio)}×`,
      num(tandemMs),
      num(rsyncMs),
      ratio(timeRatio),
      percent === 0.1 ? 'bytes ≤ 1.05×, time ≤ 0.10× rsync' : 'bytes ≤ 1.05×',
      verdict(pass),
    ];
  });
  return [
    `${sizeMiB} MiB volume, sync pair suspended, whole 64 KiB tracks rewritten; Tandem = resume until prepared (bytes on the proxy, alpha -> beta);`,
    'rsync = `rsync --no-whole-file --stats` between two local files ("Total bytes sent").',
    table(['changed', 'bytes changed', 'tandem sent/changed', 'rsync sent/changed', 'tandem ms', 'rsync ms', 'time t/rsync', 'target', ''], rows),
  ].join('\n');
}

async function preflight(sites: MirrorSites, fullCompare: boolean): Promise<{ ms: number; tracksToCopy: number; computed: number }> {
  const response = await sites.betaApi.request('GET', `/v1/sessions/${SESSION}/failback-preflight?verifyCodes=true&fullCompare=${fullCompare}`);
  if (response.status !== 200) throw new Error(`preflight: ${response.status} ${JSON.stringify(response.body)}`);
  const body = response.body as { tracksToCopy: number; pairs: Array<{ codesComputed: number }> };
  return { ms: response.ms, tracksToCopy: body.tracksToCopy, computed: body.pairs.reduce((sum, p) => sum + p.codesComputed, 0) };
}

/** Identical images compared by qemu-img (over NBD and as files), then failover and preflights with 1 % changed per rep. */
export async function preflightSection(sites: MirrorSites, context: ResyncContext, dir: string, sizeMiB: number, reps: number): Promise<PreflightResults> {
  const results: PreflightResults = {
    sizeMiB,
    changedPercent: 1,
    validCodesMs: [],
    validCodesComputed: [],
    fullCompareMs: [],
    fullCompareColdMs: 0,
    qemuCompareNbdMs: [],
    qemuCompareFilesMs: [],
    tracksToCopy: [],
  };
  for (let rep = 0; rep < reps; rep++) {
    for (const what of rotate(['nbd', 'files'], rep)) {
      const args = what === 'nbd' ? [exportUri(sites.alpha, 'rs'), exportUri(sites.beta, 'rs2')] : [context.cur, context.dest];
      const result = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', ...args], { timeoutMs: 600_000 });
      if (result.code !== 0) throw new Error(`qemu-img compare ${what}: exit ${result.code} ${result.stdout}${result.stderr}`);
      (what === 'nbd' ? results.qemuCompareNbdMs : results.qemuCompareFilesMs).push(result.ms);
    }
  }
  await action(sites.alphaApi, SESSION, 'recover');
  await waitForState(sites.betaApi, SESSION, 'target-available', 60_000, 20);
  results.fullCompareColdMs = (await preflight(sites, true)).ms;
  const pattern = path.join(dir, 'pattern.bin');
  for (let rep = 0; rep < reps; rep++) {
    fs.writeFileSync(pattern, randomBytes(TRACK));
    await writeTracks(exportUri(sites.beta, 'rs2'), pickTracks(context.trackCount, 1), pattern);
    for (const kind of rotate(['valid', 'full'], rep)) {
      const answer = await preflight(sites, kind === 'full');
      if (kind === 'full') results.fullCompareMs.push(answer.ms);
      else {
        results.validCodesMs.push(answer.ms);
        results.validCodesComputed.push(answer.computed);
        results.tracksToCopy.push(answer.tracksToCopy);
      }
    }
    progress(`[rep ${rep + 1}/${reps}] preflight valid codes ${num(results.validCodesMs.at(-1))} ms, full compare ${num(results.fullCompareMs.at(-1))} ms`);
  }
  return results;
}

export function renderPreflight(r: PreflightResults): string {
  const valid = median(r.validCodesMs);
  const rows = [
    ['preflight, valid codes (1 % more changed at beta per rep)', num(valid), `codes computed ${num(median(r.validCodesComputed))}, to copy ${num(median(r.tracksToCopy))} tracks`, '< 200 ms', verdict(valid < 200)],
    ['preflight, full compare (codes valid)', num(median(r.fullCompareMs)), `cold (first) ${num(r.fullCompareColdMs)} ms`, '—', '—'],
    ['qemu-img compare, NBD exports alpha vs beta (identical)', num(median(r.qemuCompareNbdMs)), '', '—', '—'],
    ['qemu-img compare, two local raw files (identical)', num(median(r.qemuCompareFilesMs)), 'anchor ~270 ms at 1 GiB', '—', '—'],
  ];
  return [
    `${r.sizeMiB} MiB volume after failover; preflight through the API at beta (round trip, warm keep-alive).`,
    `valid-codes preflight / qemu-img compare (files): ${ratio(valid / median(r.qemuCompareFilesMs))}; / full compare: ${ratio(valid / median(r.fullCompareMs))}`,
    table(['what', 'ms (median)', 'detail', 'target', ''], rows),
  ].join('\n');
}

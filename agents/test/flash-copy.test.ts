/**
 * Flash copy through the control API of a real agent process, checked with
 * real NBD clients: the target reads the source's image at the flash
 * (+ its own writes) byte for byte while the source keeps changing, with
 * and without background copy; the background copy reaches 100 % at
 * roughly its rate; withdraw leaves the target a complete copy.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlashSessionListSchema } from '@tandem/contract';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import {
  applyPatterns,
  compareExport,
  copiedTracks,
  establish,
  fillRandom,
  flashSession,
  flashTrackMap,
  patternCommands,
  pollSession,
  qemuIo,
  readExport,
  type PatternWrite,
} from './helpers/flash.ts';
import { agentCliJson } from './helpers/run-command.ts';

const MiB = 1024 * 1024;
const TRACK = 64 * 1024;

let agent: AgentProcess;

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'flash-copy' });
});

afterAll(async () => {
  await agent?.stop();
});

async function volumes(...specs: Array<[string, number]>): Promise<void> {
  for (const [name, size] of specs) await agentCliJson(agent, ['volume', 'create', name, String(size)]);
}

describe('flash copy, no background copy', () => {
  const SIZE = 64 * MiB;
  const before: PatternWrite[] = [
    [0x11, 0, 4 * MiB],
    [0x22, 10 * MiB, MiB],
    [0x33, 3000, 5000],
    [0x44, 63 * MiB, MiB],
  ];
  const sourceAfter: PatternWrite[] = [
    [0x55, 0, TRACK],
    [0x56, 10 * MiB + 32 * 1024, 8192],
    [0x57, 64 * MiB - 4096 - 8192, 8192],
    [0x58, 40 * MiB, 2 * MiB],
  ];
  const targetAfter: PatternWrite[] = [
    [0x77, 20 * MiB, TRACK],
    [0x78, 3000, 100],
    [0x79, 10 * MiB + 40 * 1024, 512],
  ];

  it('the target reads the source as it was at the flash, plus its own writes; the source keeps its writes', async () => {
    await volumes(['src', SIZE], ['tgt', SIZE]);
    await qemuIo(agent.nbdUri('src'), ...patternCommands(before), 'flush');
    // The target's old content must not show through after the flash.
    await qemuIo(agent.nbdUri('tgt'), 'write -P 0x99 0 64M', 'flush');

    const session = await establish(agent, { name: 'pit', pairs: [{ source: 'src', target: 'tgt' }], backgroundCopy: false });
    expect(session).toMatchObject({ name: 'pit', state: 'copying', coordinated: false });
    expect(session.options).toMatchObject({ backgroundCopy: false, incremental: false, writeInhibitTarget: false });
    expect(session.pairs).toHaveLength(1);
    expect(session.pairs[0]).toMatchObject({ source: 'src', target: 'tgt', state: 'copying', trackSize: TRACK, totalTracks: SIZE / TRACK });
    expect(session.pointInTime).not.toBeNull();

    await qemuIo(agent.nbdUri('src'), ...patternCommands(sourceAfter), 'flush');
    await qemuIo(agent.nbdUri('tgt'), ...patternCommands(targetAfter), 'flush');

    const pointInTime = applyPatterns(Buffer.alloc(SIZE), before);
    const expectedTarget = applyPatterns(Buffer.from(pointInTime), targetAfter);
    const expectedSource = applyPatterns(Buffer.from(pointInTime), sourceAfter);
    expect(await compareExport(agent, 'tgt', expectedTarget, 'nocopy-tgt')).toBeNull();
    expect(await compareExport(agent, 'src', expectedSource, 'nocopy-src')).toBeNull();
    // qemu-io reads the old data back from the target where the source was overwritten.
    await qemuIo(agent.nbdUri('tgt'), `read -P 0x11 8192 ${TRACK - 8192}`, `read -P 0x22 ${10 * MiB + 32 * 1024} 8192`, `read -P 0 ${40 * MiB} 2M`);

    // No background copy: the source writes copied their tracks first, the target writes made theirs its own.
    const info = await flashSession(agent, 'pit');
    expect(info.state).toBe('copying');
    const pair = info.pairs[0];
    expect(pair.copiedTracks).toBeGreaterThan(0);
    expect(pair.copiedTracks).toBeLessThan(pair.totalTracks);
    const map = await flashTrackMap(agent, 'pit', pair.id, `buckets=${SIZE / TRACK}`);
    expect(map).toMatchObject({ session: 'pit', pair: pair.id, target: 'tgt', trackCount: SIZE / TRACK, bucketTracks: 1 });
    const copied: number[] = [];
    let track = 0;
    for (const [repeat, count] of map.runs) {
      for (let i = 0; i < repeat; i++, track++) if (count > 0) copied.push(track);
    }
    expect(track).toBe(SIZE / TRACK);
    expect(copied.length).toBe(pair.copiedTracks);
    // Every track written at either side after the flash is the target's own now.
    for (const [, offset, length] of [...sourceAfter, ...targetAfter]) {
      for (let t = Math.floor(offset / TRACK); t <= Math.floor((offset + length - 1) / TRACK); t++) expect(copied).toContain(t);
    }

    // A coarser view of the first 64 tracks: 4 buckets of 16, each run counting the copied tracks of its bucket.
    const coarse = await flashTrackMap(agent, 'pit', pair.id, 'start=0&count=64&buckets=4');
    expect(coarse).toMatchObject({ start: 0, count: 64, bucketTracks: 16, buckets: 4 });
    const perBucket = coarse.runs.flatMap(([repeat, count]) => new Array<number>(repeat).fill(count));
    expect(perBucket).toEqual([0, 1, 2, 3].map((bucket) => copied.filter((t) => t >= bucket * 16 && t < (bucket + 1) * 16).length));

    const listed = FlashSessionListSchema.parse((await agent.api.request('GET', '/v1/flash-sessions')).body);
    expect(listed.sessions.map((s) => s.name)).toContain('pit');

    // Withdraw without finishing: stopped, yet the target keeps its image; later source writes no longer reach it.
    const withdrawn = await agent.api.request('POST', '/v1/flash-sessions/pit/withdraw', { finishCopy: false });
    expect(withdrawn.status).toBe(200);
    expect((withdrawn.body as { state: string }).state).toBe('stopped');
    const later: PatternWrite[] = [[0x5a, 0, 8 * MiB], [0x5b, 62 * MiB, 2 * MiB]];
    await qemuIo(agent.nbdUri('src'), ...patternCommands(later), 'flush');
    expect(await compareExport(agent, 'tgt', expectedTarget, 'nocopy-tgt-withdrawn')).toBeNull();
    expect(await compareExport(agent, 'src', applyPatterns(Buffer.from(expectedSource), later), 'nocopy-src-withdrawn')).toBeNull();
  });
});

describe('flash copy with background copy', () => {
  const SIZE = 128 * MiB;
  const RATE = 32; // MiB/s: 4 s for the whole volume

  it('copies every track at roughly its rate while the source is written; the target equals the point in time', async () => {
    await volumes(['bg-src', SIZE], ['bg-tgt', SIZE]);
    const content = randomBytes(SIZE);
    await fillRandom(agent, 'bg-src', content, 'bg');

    const started = Date.now();
    const session = await establish(agent, { name: 'bg', pairs: [{ source: 'bg-src', target: 'bg-tgt' }], rateMiBps: RATE });
    expect(session.options).toMatchObject({ backgroundCopy: true, rateMiBps: RATE });
    // Source writes during the copy: copy-on-write keeps the point in time.
    const during: PatternWrite[] = [
      [0xa1, 5 * MiB, MiB],
      [0xa2, 100 * MiB + 1234, 70_000],
      [0xa3, SIZE - TRACK, TRACK],
    ];
    await qemuIo(agent.nbdUri('bg-src'), ...patternCommands(during), 'flush');

    const samples = await pollSession(agent, 'bg', (s) => copiedTracks(s) === SIZE / TRACK, { timeoutMs: 90_000, intervalMs: 200 });
    const elapsedSeconds = (Date.now() - started) / 1000;
    const last = samples.at(-1)!.session;
    expect(last.pairs[0].percent).toBe(100);
    expect(['copying', 'idle-copied']).toContain(last.state);
    // Rate: 128 MiB at 32 MiB/s takes 4 s; allow a burst and a loaded machine, but not a copy that ignores the rate.
    expect(elapsedSeconds).toBeGreaterThan((SIZE / MiB / RATE) * 0.6);
    for (const { at, session: sample } of samples) {
      const copiedMiB = (copiedTracks(sample) * TRACK) / MiB;
      // The three source writes copy their tracks at once (up to 2 MiB); the rest comes at the rate.
      const seconds = (at - started) / 1000;
      expect(copiedMiB, `${copiedMiB} MiB copied after ${seconds} s`).toBeLessThanOrEqual(RATE * seconds * 1.5 + 2 + 4);
    }
    // Progress was visible on the way (not one jump from 0 to 100 %).
    expect(samples.some(({ session: s }) => s.pairs[0].percent > 5 && s.pairs[0].percent < 95)).toBe(true);
    expect(samples.some(({ session: s }) => s.copyBytesPerSecond > 0)).toBe(true);

    await pollSession(agent, 'bg', (s) => s.state === 'idle-copied', { timeoutMs: 30_000 });
    const pointInTime = Buffer.from(content);
    expect(await compareExport(agent, 'bg-tgt', pointInTime, 'bg-tgt')).toBeNull();
    expect(await compareExport(agent, 'bg-src', applyPatterns(Buffer.from(content), during), 'bg-src')).toBeNull();

    // Withdrawn after the copy, the target stays a full independent copy.
    const withdrawn = await agent.api.request('POST', '/v1/flash-sessions/bg/withdraw', {});
    expect(withdrawn.status, JSON.stringify(withdrawn.body)).toBe(200);
    await qemuIo(agent.nbdUri('bg-src'), `write -P 0xb1 0 ${MiB}`, 'flush');
    const target = await readExport(agent, 'bg-tgt', 'bg-tgt-after.raw');
    expect(target.equals(pointInTime)).toBe(true);
  });

  it('update pauses (suspended, no progress), changes the rate and resumes the copy', async () => {
    await volumes(['up-src', 64 * MiB], ['up-tgt', 64 * MiB]);
    const content = randomBytes(64 * MiB);
    await fillRandom(agent, 'up-src', content, 'up');
    await establish(agent, { name: 'up', pairs: [{ source: 'up-src', target: 'up-tgt' }], rateMiBps: 4 });
    const paused = await agent.api.request('PATCH', '/v1/flash-sessions/up', { paused: true });
    expect(paused.status, JSON.stringify(paused.body)).toBe(200);
    expect((paused.body as { state: string }).state).toBe('suspended');
    const held = copiedTracks(await flashSession(agent, 'up'));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(copiedTracks(await flashSession(agent, 'up'))).toBe(held);
    const resumed = await agent.api.request('PATCH', '/v1/flash-sessions/up', { paused: false, rateMiBps: null });
    expect(resumed.status, JSON.stringify(resumed.body)).toBe(200);
    expect(resumed.body).toMatchObject({ state: 'copying', options: { rateMiBps: null } });
    await pollSession(agent, 'up', (s) => s.state === 'idle-copied', { timeoutMs: 60_000 });
    expect(await compareExport(agent, 'up-tgt', content, 'up-tgt')).toBeNull();
  });
});

describe('flash copy across kill -9', () => {
  const SIZE = 64 * MiB;

  it('a copy killed half way resumes after restart; the target still equals the point in time', async () => {
    await volumes(['kill-src', SIZE], ['kill-tgt', SIZE]);
    const content = randomBytes(SIZE);
    await fillRandom(agent, 'kill-src', content, 'kill');
    // 2 MiB/s: 32 s for the whole volume, so a slow restart under load still finds it half way.
    await establish(agent, { name: 'kill', pairs: [{ source: 'kill-src', target: 'kill-tgt' }], rateMiBps: 2 });
    // Source writes acknowledged (and flushed) before the kill: their old data must survive in the target.
    const during: PatternWrite[] = [
      [0xc1, 0, MiB],
      [0xc2, 50 * MiB + 4096, 12_288],
    ];
    await qemuIo(agent.nbdUri('kill-src'), ...patternCommands(during), 'flush');
    await pollSession(agent, 'kill', (s) => s.pairs[0].percent >= 6, { timeoutMs: 60_000 });
    await agent.kill('SIGKILL');
    await agent.restart();
    const resumed = await flashSession(agent, 'kill');
    expect(resumed.state).toBe('copying');
    // Background copy progress since the last metadata commit may be redone; the tracks the flushed
    // source writes copied first may not be forgotten.
    const map = await flashTrackMap(agent, 'kill', resumed.pairs[0].id, `buckets=${SIZE / TRACK}`);
    const copied = new Set<number>();
    let track = 0;
    for (const [repeat, count] of map.runs) for (let i = 0; i < repeat; i++, track++) if (count > 0) copied.add(track);
    for (const [, offset, length] of during) {
      for (let t = Math.floor(offset / TRACK); t <= Math.floor((offset + length - 1) / TRACK); t++) expect(copied.has(t), `track ${t}`).toBe(true);
    }
    expect(resumed.pairs[0].percent).toBeLessThan(100);
    await agent.api.request('PATCH', '/v1/flash-sessions/kill', { rateMiBps: null });
    await pollSession(agent, 'kill', (s) => s.state === 'idle-copied', { timeoutMs: 60_000 });
    expect(await compareExport(agent, 'kill-tgt', content, 'kill-tgt')).toBeNull();
    expect(await compareExport(agent, 'kill-src', applyPatterns(Buffer.from(content), during), 'kill-src')).toBeNull();
  });
});

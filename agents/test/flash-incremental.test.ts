/**
 * Incremental flash copy with real clients: after the first copy, writes at
 * the source and at the target are recorded; refresh (CLI) brings the
 * target to the source's new image and reverse (API) restores the target's
 * image onto the source, each checked byte for byte with nbdcopy and
 * `qemu-img compare`.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlashSessionInfoSchema } from '@tandem/contract';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { applyPatterns, compareExport, establish, fillRandom, flashSession, patternCommands, pollSession, qemuIo, type PatternWrite } from './helpers/flash.ts';
import { agentCliJson } from './helpers/run-command.ts';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
const TRACK = 64 * 1024;

let agent: AgentProcess;

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'flash-incremental' });
  await agentCliJson(agent, ['volume', 'create', 'inc-src', String(SIZE)]);
  await agentCliJson(agent, ['volume', 'create', 'inc-tgt', String(SIZE)]);
});

afterAll(async () => {
  await agent?.stop();
});

/** Tracks touched by pattern writes. */
function tracksOf(writes: PatternWrite[]): Set<number> {
  const tracks = new Set<number>();
  for (const [, offset, length] of writes) {
    for (let track = Math.floor(offset / TRACK); track <= Math.floor((offset + length - 1) / TRACK); track++) tracks.add(track);
  }
  return tracks;
}

describe('incremental flash copy', () => {
  it('records changes on both sides; refresh and reverse copy them and leave byte-exact images', async () => {
    const original = randomBytes(SIZE);
    await fillRandom(agent, 'inc-src', original, 'inc');
    const session = await establish(agent, { name: 'inc', pairs: [{ source: 'inc-src', target: 'inc-tgt' }], incremental: true });
    expect(session.options.incremental).toBe(true);
    await pollSession(agent, 'inc', (s) => s.state === 'idle-copied', { timeoutMs: 60_000 });
    expect(await compareExport(agent, 'inc-tgt', original, 'inc-first')).toBeNull();

    const sourceWrites: PatternWrite[] = [
      [0xc1, 0, 4096],
      [0xc2, 5 * MiB + 100, 200_000],
      [0xc3, SIZE - 512, 512],
    ];
    const targetWrites: PatternWrite[] = [
      [0xd1, 9 * MiB, TRACK],
      [0xd2, 5 * MiB + 100_000, 4096],
    ];
    await qemuIo(agent.nbdUri('inc-src'), ...patternCommands(sourceWrites), 'flush');
    await qemuIo(agent.nbdUri('inc-tgt'), ...patternCommands(targetWrites), 'flush');
    const changed = (await flashSession(agent, 'inc')).pairs[0].changedTracks;
    expect(changed).toEqual({ source: tracksOf(sourceWrites).size, target: tracksOf(targetWrites).size });

    // Refresh through the CLI: the target becomes the source's new image; its own writes are undone.
    const refreshed = FlashSessionInfoSchema.parse(await agentCliJson(agent, ['flash', 'refresh', 'inc']));
    expect(refreshed.pointInTime! > session.pointInTime!).toBe(true);
    await pollSession(agent, 'inc', (s) => s.state === 'idle-copied', { timeoutMs: 60_000 });
    const sourceImage = applyPatterns(Buffer.from(original), sourceWrites);
    expect(await compareExport(agent, 'inc-tgt', sourceImage, 'inc-refreshed')).toBeNull();
    expect((await flashSession(agent, 'inc')).pairs[0].changedTracks).toEqual({ source: 0, target: 0 });

    // Reverse through the API: the source gets the target's image back (source writes since are undone).
    const targetLater: PatternWrite[] = [[0xe1, 20 * MiB, 3 * TRACK]];
    const sourceLater: PatternWrite[] = [[0xe2, MiB, 4096]];
    await qemuIo(agent.nbdUri('inc-tgt'), ...patternCommands(targetLater), 'flush');
    await qemuIo(agent.nbdUri('inc-src'), ...patternCommands(sourceLater), 'flush');
    const reversed = await agent.api.request('POST', '/v1/flash-sessions/inc/reverse', {});
    expect(reversed.status, JSON.stringify(reversed.body)).toBe(200);
    await pollSession(agent, 'inc', (s) => s.state === 'idle-copied', { timeoutMs: 60_000 });
    const targetImage = applyPatterns(Buffer.from(sourceImage), targetLater);
    expect(await compareExport(agent, 'inc-src', targetImage, 'inc-reversed-src')).toBeNull();
    expect(await compareExport(agent, 'inc-tgt', targetImage, 'inc-reversed-tgt')).toBeNull();
  });
});

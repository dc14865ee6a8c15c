/**
 * Coordinated flash copy from the CLI across two real agent processes: a
 * sync-mirrored volume is flashed at the primary with
 * `--coordinated --pair src:tgt:remote-tgt`; the secondary flashes its copy
 * at the matching point of the mirror stream. Both targets, read with
 * nbdcopy, equal the primary's image at the flash byte for byte, while the
 * source keeps being written after it. And `--preserve-mirror` onto a target
 * that is itself a mirrored primary: the secondary performs the same flash,
 * the pair stays duplex and both sites hold the image.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlashSessionInfoSchema } from '@tandem/contract';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { applyPatterns, compareExport, patternCommands, qemuIo, type PatternWrite } from './helpers/flash.ts';
import { agentCliJson } from './helpers/run-command.ts';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;

let h1: AgentProcess;
let h2: AgentProcess;

beforeAll(async () => {
  [h1, h2] = await startPairedAgents();
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([h1?.stop(), h2?.stop()]);
});

async function waitForPrepared(session: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const info = await agentCliJson<{ state: string }>(h1, ['session', 'show', session]);
    if (info.state === 'prepared') return;
    if (Date.now() > deadline) throw new Error(`session ${session} stayed ${info.state}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('coordinated flash copy through the CLI', () => {
  it('the primary target and the secondary target both hold the image at the flash', async () => {
    for (const name of ['prod', 'prod-pit']) await agentCliJson(h1, ['volume', 'create', name, String(SIZE)]);
    for (const name of ['copy', 'copy-pit']) await agentCliJson(h2, ['volume', 'create', name, String(SIZE)]);
    const before: PatternWrite[] = [
      [0x21, 0, 3 * MiB],
      [0x22, 17 * MiB + 512, 70_000],
    ];
    await qemuIo(h1.nbdUri('prod'), ...patternCommands(before), 'flush');
    await agentCliJson(h1, ['session', 'create', 'gold', '--type', 'sync', '--peer', 'beta']);
    await agentCliJson(h1, ['session', 'add', 'gold', 'prod', 'copy']);
    await agentCliJson(h1, ['session', 'start', 'gold']);
    await waitForPrepared('gold');
    // Mirrored now: this write is part of the image at both sites.
    const mirrored: PatternWrite[] = [[0x23, 30 * MiB, MiB]];
    await qemuIo(h1.nbdUri('prod'), ...patternCommands(mirrored), 'flush');

    const session = FlashSessionInfoSchema.parse(
      await agentCliJson(h1, ['flash', 'establish', '--name', 'coord', '--coordinated', '--pair', 'prod:prod-pit:copy-pit', '--no-copy']),
    );
    expect(session).toMatchObject({ name: 'coord', coordinated: true, state: 'copying' });
    expect(session.pairs[0]).toMatchObject({ source: 'prod', target: 'prod-pit', remoteTarget: 'copy-pit' });
    const human = await h1.cli(['flash', 'show', 'coord']);
    expect(human.stdout).toContain('prod-pit (+ copy-pit at the secondary)');
    expect(human.stdout).toContain('coordinated with the mirror secondary');

    const after: PatternWrite[] = [
      [0x31, 0, 64 * 1024],
      [0x32, 30 * MiB + 4096, 4096],
    ];
    await qemuIo(h1.nbdUri('prod'), ...patternCommands(after), 'flush');

    const pointInTime = applyPatterns(Buffer.alloc(SIZE), [...before, ...mirrored]);
    expect(await compareExport(h1, 'prod-pit', pointInTime, 'coord-h1')).toBeNull();
    expect(await compareExport(h2, 'copy-pit', pointInTime, 'coord-h2')).toBeNull();
    // The mirror stays duplex and carries the later writes.
    expect(await compareExport(h2, 'copy', applyPatterns(Buffer.from(pointInTime), after), 'coord-copy')).toBeNull();
  });

  it('--preserve-mirror: a mirrored target stays duplex; the secondary flashes its copy and both sites match', async () => {
    for (const name of ['db', 'db-pit']) await agentCliJson(h1, ['volume', 'create', name, String(SIZE)]);
    for (const name of ['db-copy', 'db-pit-copy']) await agentCliJson(h2, ['volume', 'create', name, String(SIZE)]);
    const before: PatternWrite[] = [[0x41, MiB, 5 * MiB]];
    await qemuIo(h1.nbdUri('db'), ...patternCommands(before), 'flush');
    await qemuIo(h1.nbdUri('db-pit'), 'write -P 0x99 0 32M', 'flush');
    await agentCliJson(h1, ['session', 'create', 'silver', '--type', 'sync', '--peer', 'beta']);
    await agentCliJson(h1, ['session', 'add', 'silver', 'db', 'db-copy']);
    await agentCliJson(h1, ['session', 'add', 'silver', 'db-pit', 'db-pit-copy']);
    await agentCliJson(h1, ['session', 'start', 'silver']);
    await waitForPrepared('silver');

    const session = FlashSessionInfoSchema.parse(
      await agentCliJson(h1, ['flash', 'establish', '--name', 'keep', '--preserve-mirror', '--pair', 'db:db-pit']),
    );
    expect(session.options.preserveMirror).toBe(true);
    expect(session.pairs[0].mirror).toBe('preserved');
    const after: PatternWrite[] = [[0x42, MiB, 4096]];
    await qemuIo(h1.nbdUri('db'), ...patternCommands(after), 'flush');
    await waitForPrepared('silver');
    const pointInTime = applyPatterns(Buffer.alloc(SIZE), before);
    expect(await compareExport(h1, 'db-pit', pointInTime, 'keep-h1')).toBeNull();
    expect(await compareExport(h2, 'db-pit-copy', pointInTime, 'keep-h2')).toBeNull();
    expect(await compareExport(h2, 'db-copy', applyPatterns(Buffer.from(pointInTime), after), 'keep-copy')).toBeNull();
  });
});

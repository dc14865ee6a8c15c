import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { agentCliJson, runCommand } from './helpers/run-command.ts';

/**
 * Failover and failback of an async session between real agent processes
 * paired through the CLI: alpha (the control agent, H1 of a), charlie (the
 * secondary site, a2 and b2) and b's primary agent: bravo (a member) with two
 * primary agents, alpha with one. One scenario for both: failover, failback and
 * the way back are one path whatever the number of primary agents. Host writes
 * go through NBD with qemu-io; images are compared with qemu-img.
 */

const TRACK = 64 * 1024;
const K = 1024;
const M = 1024 * 1024;

interface PairJson {
  h1Volume: string;
  state: string;
  outOfSyncTracks: number;
  targetChangedTracks: number;
  primarySite?: string;
}

interface SessionJson {
  state: string;
  direction: string;
  consistencyTime: string | null;
  pairs: PairJson[];
  lastVerify: { trigger: string; finishedAt: string; comparedTracks: number; differingTracks: number; ok: boolean } | null;
}

interface PreflightJson {
  pairs: Array<{
    h1Volume?: string;
    primarySite?: string;
    targetChangedTracks: number;
    outOfSyncTracks: number;
    candidateTracks: number;
    differingTracks: number | null;
    tracksToCopy?: number;
    bytesToCopy?: number;
  }>;
  tracksToCopy: number;
  bytesToCopy: number;
  estimatedSeconds: number;
}

interface EventJson {
  id: number;
  type: string;
  subject: string | null;
  data?: Record<string, unknown>;
}

async function show(agent: AgentProcess, session: string): Promise<SessionJson> {
  return agentCliJson<SessionJson>(agent, ['session', 'show', session]);
}

async function waitUntil(agent: AgentProcess, session: string, check: (info: SessionJson) => boolean, what: string, timeoutMs = 90_000): Promise<SessionJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await show(agent, session);
    if (check(info)) return info;
    if (Date.now() > deadline) throw new Error(`session ${session} never ${what}: ${JSON.stringify(info)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function qemuWrite(agent: AgentProcess, volume: string, command: string): Promise<void> {
  const result = await runCommand('qemu-io', ['-f', 'raw', '-c', command, agent.nbdUri(volume)]);
  expect(result.code, `${command} at ${volume}: ${result.out}`).toBe(0);
  expect(result.out, `${command} at ${volume}`).not.toMatch(/failed|error/i);
}

async function expectIdentical(h1: AgentProcess, h1Volume: string, h2: AgentProcess, h2Volume: string): Promise<void> {
  const compare = await runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', h1.nbdUri(h1Volume), h2.nbdUri(h2Volume)]);
  expect(compare.out, `${h1Volume} vs ${h2Volume}`).toMatch(/Images are identical/);
}

async function events(agent: AgentProcess, type: string, after = 0): Promise<EventJson[]> {
  const listed = await agentCliJson<{ events: EventJson[] }>(agent, ['events', '--after', String(after), '--limit', '1000']);
  return listed.events.filter((event) => event.type === type && event.subject === 'mp');
}

async function lastEventId(agent: AgentProcess): Promise<number> {
  const listed = await agentCliJson<{ events: EventJson[] }>(agent, ['events', '--limit', '1000']);
  return listed.events.at(-1)?.id ?? 0;
}

/** The `session.synced` event after `after` (the resync's copied tracks), waited for. */
async function syncedAfter(agent: AgentProcess, after: number): Promise<EventJson> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const found = await events(agent, 'session.synced', after);
    if (found.length > 0) return found[0];
    if (Date.now() > deadline) throw new Error('no session.synced event');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function byVolume(preflight: PreflightJson, volume: string) {
  const pair = preflight.pairs.find((p) => p.h1Volume === volume);
  expect(pair, `preflight lists ${volume}`).toBeDefined();
  return pair!;
}

describe.each([1, 2] as const)('failover and failback of an async session with %i primary agent(s)', (primaries) => {
  let alpha: AgentProcess;
  /** b's primary agent: bravo, or alpha itself. */
  let bravo: AgentProcess;
  let charlie: AgentProcess;
  const bravoSite = primaries === 2 ? 'bravo' : undefined;

  beforeAll(async () => {
    if (primaries === 2) {
      [alpha, bravo, charlie] = await startPairedAgents([
        { site: 'alpha', trackSize: '64K' },
        { site: 'bravo', trackSize: '64K' },
        { site: 'charlie', trackSize: '64K' },
      ]);
    } else {
      [alpha, charlie] = await startPairedAgents([
        { site: 'alpha', trackSize: '64K' },
        { site: 'charlie', trackSize: '64K' },
      ]);
      bravo = alpha;
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled([alpha?.stop(), primaries === 2 ? bravo?.stop() : null, charlie?.stop()]);
  });

  it('recovers at the secondary, fails back to every primary agent copying exactly the differing tracks, mirrors H2->H1 and returns to H1->H2', async () => {
    for (const [agent, name] of [
      [alpha, 'a'],
      [bravo, 'b'],
      [charlie, 'a2'],
      [charlie, 'b2'],
    ] as const) {
      const created = await agent.cli(['volume', 'create', name, '16M']);
      expect(created.code, created.stderr).toBe(0);
    }
    await qemuWrite(alpha, 'a', 'write -P 0x11 0 2M');
    await qemuWrite(bravo, 'b', 'write -P 0x22 4M 2M');
    await agentCliJson(alpha, ['session', 'create', 'mp', '--type', 'async', '--peer', 'charlie']);
    await agentCliJson(alpha, ['session', 'add', 'mp', 'a', 'a2']);
    await agentCliJson(alpha, ['session', 'add', 'mp', 'b', 'b2', ...(primaries === 2 ? ['--primary-agent', 'bravo'] : [])]);
    await agentCliJson(alpha, ['session', 'start', 'mp']);
    await waitUntil(alpha, 'mp', (info) => info.state === 'prepared', 'prepared');
    await qemuWrite(alpha, 'a', 'write -P 0x13 3M 1M');
    await qemuWrite(bravo, 'b', 'write -P 0x23 7M 1M');
    const written = Date.now();
    // Every write reached charlie and no out-of-sync mark is left at either primary.
    await waitUntil(
      alpha,
      'mp',
      (info) =>
        info.consistencyTime !== null &&
        Date.parse(info.consistencyTime) > written &&
        info.pairs.every((pair) => pair.state === 'duplex' && pair.outOfSyncTracks === 0),
      'caught up with the writes',
    );

    // --- failover: charlie's volumes become writable, its changes tracked ---
    const recovered = await agentCliJson<SessionJson>(charlie, ['session', 'recover', 'mp']);
    expect(recovered.state).toBe('target-available');
    // Every site of the session shows the same state: the member too (its copy sets stopped shipping, they keep marking).
    expect((await show(bravo, 'mp')).state).toBe('target-available');
    // Production at charlie: a2 tracks 128..131 new, tracks 0..1 rewritten with the bytes they hold; b2 tracks 16..18 new.
    await qemuWrite(charlie, 'a2', 'write -P 0x61 8M 256K');
    await qemuWrite(charlie, 'a2', 'write -P 0x11 0 128K');
    await qemuWrite(charlie, 'b2', 'write -P 0x62 1M 192K');
    // Written at bravo after the failover: never reached charlie (track 160, out-of-sync at bravo).
    await qemuWrite(bravo, 'b', 'write -P 0x72 10M 64K');
    const atCharlie = await show(charlie, 'mp');
    expect(atCharlie.pairs.map((pair) => [pair.h1Volume, pair.targetChangedTracks])).toEqual([
      ['a', 6],
      ['b', 3],
    ]);

    // --- preflight (asked at the control agent, answered by charlie): per copy set and totals ---
    // The control agent learns target-available from charlie's state report: asked only once it shows it (never while recovering).
    await waitUntil(alpha, 'mp', (info) => info.state === 'target-available', 'target-available at the control agent');
    const preflight = await agentCliJson<PreflightJson>(alpha, ['session', 'preflight', 'mp']);
    const a = byVolume(preflight, 'a');
    expect([a.primarySite, a.targetChangedTracks, a.outOfSyncTracks, a.candidateTracks, a.differingTracks, a.tracksToCopy]).toEqual([
      undefined,
      6,
      0,
      6,
      4, // tracks 0..1 hold the same bytes at both sites
      4,
    ]);
    const b = byVolume(preflight, 'b');
    expect([b.primarySite, b.targetChangedTracks, b.outOfSyncTracks, b.candidateTracks, b.differingTracks, b.tracksToCopy]).toEqual([
      bravoSite,
      3,
      1,
      4,
      4,
      4,
    ]);
    expect(b.bytesToCopy).toBe(4 * TRACK);
    expect(preflight.tracksToCopy).toBe(8);
    expect(preflight.bytesToCopy).toBe(8 * TRACK);
    expect(preflight.estimatedSeconds).toBeGreaterThanOrEqual(0);

    // --- failback H2->H1: charlie copies to every primary agent, then mirrors to them ---
    const beforeFailback = await lastEventId(charlie);
    const failback = await agentCliJson<SessionJson>(charlie, ['session', 'failback', 'mp']);
    expect(failback.direction).toBe('h2-h1');
    const synced = await syncedAfter(charlie, beforeFailback);
    expect(synced.data?.copiedTracks, 'failback copied exactly the differing tracks').toBe(8);
    // b2's track 160 was never written at charlie: it goes as zeroes, without data.
    expect(synced.data?.bytesSent).toBe(7 * TRACK);
    const prepared = await waitUntil(charlie, 'mp', (info) => info.state === 'prepared' && info.lastVerify?.trigger === 'failback', 'prepared and verified H2->H1');
    expect(prepared.direction).toBe('h2-h1');
    expect(prepared.lastVerify).toMatchObject({ ok: true, differingTracks: 0, comparedTracks: 512 });
    await waitUntil(alpha, 'mp', (info) => info.state === 'prepared' && info.direction === 'h2-h1', 'prepared H2->H1 at alpha', 20_000);
    expect((await show(alpha, 'mp')).pairs.map((pair) => [pair.h1Volume, pair.primarySite ?? 'alpha', pair.state])).toEqual([
      ['a', 'alpha', 'duplex'],
      ['b', bravoSite ?? 'alpha', 'duplex'],
    ]);
    await waitUntil(bravo, 'mp', (info) => info.state === 'prepared' && info.direction === 'h2-h1', 'prepared H2->H1 at bravo', 20_000);
    await expectIdentical(alpha, 'a', charlie, 'a2');
    await expectIdentical(bravo, 'b', charlie, 'b2');
    // The H1 volumes are targets now: hosts may not write there.
    const refused = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x99 0 4K', bravo.nbdUri('b')]);
    expect(refused.out).toMatch(/failed|error|read-only|Operation not permitted/i);

    // Writes at charlie reach both alpha and bravo, committed at both together.
    await qemuWrite(charlie, 'a2', 'write -P 0x63 12M 1M');
    await qemuWrite(charlie, 'b2', 'write -P 0x64 13M 1M');
    const writtenAtCharlie = Date.now();
    await waitUntil(charlie, 'mp', (info) => info.consistencyTime !== null && Date.parse(info.consistencyTime) > writtenAtCharlie, 'caught up H2->H1');
    await expectIdentical(alpha, 'a', charlie, 'a2');
    await expectIdentical(bravo, 'b', charlie, 'b2');

    // Restarts resume H2->H1: b's primary agent (a target now) and the secondary site (the source, forming the rounds).
    await bravo.restart({ samePorts: true });
    await waitUntil(charlie, 'mp', (info) => info.state === 'prepared', 'prepared after bravo restarted');
    await charlie.restart({ samePorts: true });
    await waitUntil(charlie, 'mp', (info) => info.state === 'prepared' && info.direction === 'h2-h1', 'prepared after charlie restarted');
    await qemuWrite(charlie, 'b2', 'write -P 0x65 14M 512K');
    await qemuWrite(charlie, 'a2', 'write -P 0x66 15M 512K');
    const afterRestarts = Date.now();
    await waitUntil(charlie, 'mp', (info) => info.consistencyTime !== null && Date.parse(info.consistencyTime) > afterRestarts, 'caught up after the restarts');
    await expectIdentical(alpha, 'a', charlie, 'a2');
    await expectIdentical(bravo, 'b', charlie, 'b2');

    // --- the way back: recover at the H1 side, write there, Start H1->H2 ---
    const recoveredAtH1 = await agentCliJson<SessionJson>(alpha, ['session', 'recover', 'mp']);
    expect(recoveredAtH1.state).toBe('target-available');
    expect((await show(bravo, 'mp')).state).toBe('target-available');
    await qemuWrite(alpha, 'a', 'write -P 0x81 12M 128K'); // tracks 192..193
    await qemuWrite(bravo, 'b', 'write -P 0x82 2M 64K'); // track 32
    await qemuWrite(charlie, 'a2', 'write -P 0x91 14M 64K'); // track 224 at charlie: out-of-sync there, overwritten by alpha's
    // Charlie learns target-available from alpha's state report: asked only once it shows it.
    await waitUntil(charlie, 'mp', (info) => info.state === 'target-available', 'target-available at charlie');
    const back = await agentCliJson<PreflightJson>(charlie, ['session', 'preflight', 'mp']);
    const backA = byVolume(back, 'a');
    expect([backA.targetChangedTracks, backA.outOfSyncTracks, backA.candidateTracks, backA.differingTracks]).toEqual([2, 1, 3, 3]);
    const backB = byVolume(back, 'b');
    expect([backB.primarySite, backB.targetChangedTracks, backB.outOfSyncTracks, backB.candidateTracks, backB.differingTracks]).toEqual([
      bravoSite,
      1,
      0,
      1,
      1,
    ]);
    expect(back.tracksToCopy).toBe(4);

    const [alphaMark, bravoMark] = await Promise.all([lastEventId(alpha), lastEventId(bravo)]);
    const wayBackAt = new Date().toISOString();
    const returned = await agentCliJson<SessionJson>(bravo, ['session', 'failback', 'mp']);
    expect(returned.direction).toBe('h1-h2');
    // Each primary agent copies its own copy sets' planned tracks: a's 3 and b's 1.
    if (primaries === 2) {
      expect((await syncedAfter(alpha, alphaMark)).data?.copiedTracks).toBe(3);
      expect((await syncedAfter(bravo, bravoMark)).data?.copiedTracks).toBe(1);
    } else {
      expect((await syncedAfter(alpha, alphaMark)).data?.copiedTracks).toBe(4);
    }
    await waitUntil(alpha, 'mp', (info) => info.state === 'prepared' && info.direction === 'h1-h2', 'prepared H1->H2 again');
    await waitUntil(charlie, 'mp', (info) => info.state === 'prepared' && info.direction === 'h1-h2', 'prepared H1->H2 at charlie', 20_000);
    // Verified by codes after the failback: the control agent's verify covers every copy set (each member verifies
    // its own at the same time and records that).
    const verifiedSince = (info: SessionJson) => info.lastVerify?.trigger === 'failback' && info.lastVerify.finishedAt > wayBackAt;
    const verifiedAlpha = await waitUntil(alpha, 'mp', verifiedSince, 'verified at alpha');
    expect(verifiedAlpha.lastVerify).toMatchObject({ ok: true, differingTracks: 0, comparedTracks: 512 });
    if (primaries === 2) {
      const verifiedBravo = await waitUntil(bravo, 'mp', verifiedSince, 'verified at bravo');
      expect(verifiedBravo.lastVerify).toMatchObject({ ok: true, differingTracks: 0, comparedTracks: 256 });
    }
    await expectIdentical(alpha, 'a', charlie, 'a2');
    await expectIdentical(bravo, 'b', charlie, 'b2');
    // Mirroring H1->H2 again from every primary agent.
    await qemuWrite(alpha, 'a', 'write -P 0xa1 5M 512K');
    await qemuWrite(bravo, 'b', 'write -P 0xb2 9M 512K');
    const writtenAtH1 = Date.now();
    await waitUntil(alpha, 'mp', (info) => info.consistencyTime !== null && Date.parse(info.consistencyTime) > writtenAtH1, 'caught up H1->H2');
    await expectIdentical(alpha, 'a', charlie, 'a2');
    await expectIdentical(bravo, 'b', charlie, 'b2');

    await agentCliJson(alpha, ['session', 'terminate', 'mp']);
    await waitUntil(bravo, 'mp', (info) => info.state === 'defined', 'defined at bravo', 20_000);
    await waitUntil(charlie, 'mp', (info) => info.state === 'defined', 'defined at charlie', 20_000);
  }, 420_000);
});

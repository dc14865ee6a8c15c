import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { secondPlacement, secondPrimary, startThreeSites, type Primaries, type ThreeSites } from './helpers/multi-primary-sites.ts';
import { readAll, waitFor, type Site } from './helpers/replication-sites.ts';
import { StampedWriter } from './helpers/stamped-writer.ts';

const MiB = 1024 * 1024;
const BLOCK = 4096;

let sites: ThreeSites | null = null;
/** The running writer, stopped after each test even when it failed. */
let running: StampedWriter | null = null;
afterEach(async () => {
  await running?.stop();
  running = null;
  await sites?.close();
  sites = null;
});

/**
 * One async session: alpha (the control agent) holds a, bravo holds b (or,
 * with one primary agent, alpha holds both); both mirror to charlie (a2, b2).
 */
async function defineSession(s: ThreeSites, primaries: Primaries = 2): Promise<void> {
  const holder = secondPrimary(s, primaries);
  await s.alpha.engine.createVolume('a', 16 * MiB);
  await holder.engine.createVolume('b', 16 * MiB);
  for (const name of ['a2', 'b2']) await s.charlie.engine.createVolume(name, 16 * MiB);
  // Data before the start goes by the initial copy, at both primaries.
  await s.alpha.replication.exports.openExport('a').write(4 * MiB, randomBytes(MiB));
  await holder.replication.exports.openExport('b').write(6 * MiB, randomBytes(MiB));
  const service = s.alpha.replication.service;
  await service.createSession('mp', 'async', 'charlie');
  await service.addPair('mp', 'a', 'a2');
  await service.addPair('mp', 'b', 'b2', secondPlacement(primaries));
  await service.act('mp', 'start');
  await waitFor(() => service.session('mp').state === 'prepared', 60_000, 'prepared');
}

/**
 * Samples the secondary while writes run: with charlie's applies held, its
 * volumes must be exactly the image after a prefix of the writer's log that
 * its reported consistency time allows. Returns how many samples were
 * checked and how often the consistency time moved forward.
 */
async function sampleSecondary(s: ThreeSites, writer: StampedWriter, durationMs: number): Promise<{ samples: number; advancing: number }> {
  const charlie = s.charlie.replication.service;
  const controlAgent = s.alpha.replication.service;
  const atCharlie = charlie.session('mp');
  let samples = 0;
  let advancing = 0;
  let lastTime = 0;
  const deadline = Date.now() + durationMs;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const release = await charlie.applier.freeze(atCharlie.id);
    try {
      const reported = charlie.consistencyTime(atCharlie);
      if (!reported || atCharlie.state !== 'prepared') continue;
      const cut = Date.parse(reported);
      const [stampsA, stampsB] = await Promise.all([
        writer.stampsOf(s.charlie.engine.device('a2')),
        writer.stampsOf(s.charlie.engine.device('b2')),
      ]);
      const { match, lowest, highest } = writer.matchesCut(cut, stampsA, stampsB);
      expect(match, `secondary at ${reported} is the primaries' image after ${lowest}..${highest} writes`).toBe(true);
      // The control agent reports a round only once the secondary applied it.
      const controlAgentTime = controlAgent.consistencyTime(controlAgent.session('mp'));
      if (controlAgentTime && controlAgent.session('mp').state === 'prepared') expect(Date.parse(controlAgentTime)).toBeLessThanOrEqual(cut);
      samples++;
      if (cut > lastTime) advancing++;
      lastTime = cut;
    } finally {
      release();
    }
  }
  return { samples, advancing };
}

async function converge(s: ThreeSites, writer: StampedWriter, primaries: Primaries = 2): Promise<void> {
  const holder = secondPrimary(s, primaries);
  const service = s.alpha.replication.service;
  const last = writer.writes.at(-1)!.ackedAt;
  await waitFor(() => {
    const time = service.consistencyTime(service.session('mp'));
    return service.session('mp').state === 'prepared' && time !== null && Date.parse(time) > last;
  }, 30_000, 'caught up');
  expect((await readAll(s.alpha, 'a')).equals(await readAll(s.charlie, 'a2')), 'a == a2').toBe(true);
  expect((await readAll(holder, 'b')).equals(await readAll(s.charlie, 'b2')), 'b == b2').toBe(true);
  // Committed rounds cleared their out-of-sync marks at both primaries.
  const outOfSync = (site: Site) => site.replication.service.info(site.replication.service.session('mp')).pairs.reduce((sum, p) => sum + p.outOfSyncTracks, 0);
  await waitFor(() => outOfSync(s.alpha) === 0 && outOfSync(holder) === 0, 10_000, 'marks cleared at both primaries');
}

/**
 * The rounds engine is one for every async session: the same scenario with
 * one primary agent (a and b at alpha) and with two (b at bravo).
 */
describe.each([1, 2] as const)('async sessions, one rounds engine: %i primary agent(s)', (primaries) => {
  it('turns prepared only once the initial copy is over: the session is never reported consistent while marked tracks are still being copied', async () => {
    sites = await startThreeSites();
    const s = sites;
    // Enough data at the control agent that its initial copy outlasts the first rounds (1024 tracks of 64 KiB).
    await s.alpha.engine.createVolume('a', 64 * MiB);
    const holder = secondPrimary(s, primaries);
    await holder.engine.createVolume('b', 16 * MiB);
    await s.charlie.engine.createVolume('a2', 64 * MiB);
    await s.charlie.engine.createVolume('b2', 16 * MiB);
    await s.alpha.replication.exports.openExport('a').write(0, randomBytes(64 * MiB));
    const service = s.alpha.replication.service;
    await service.createSession('mp', 'async', 'charlie');
    await service.addPair('mp', 'a', 'a2');
    await service.addPair('mp', 'b', 'b2', secondPlacement(primaries));
    const first = s.alpha.engine.catalog.lastEventId();
    await service.act('mp', 'start');
    await waitFor(() => service.session('mp').state === 'prepared', 60_000, 'prepared');
    const events = s.alpha.engine.catalog.listEvents(first, 1000);
    const prepared = events.find((event) => event.type === 'session.state' && event.data?.to === 'prepared')!;
    const synced = events.find((event) => event.type === 'session.synced');
    expect(synced, 'the initial copy ended before the session turned prepared').toBeDefined();
    expect(synced!.id, events.map((event) => `${event.id} ${event.type} ${event.message}`).join('\n')).toBeLessThan(prepared.id);
    expect(service.info(service.session('mp')).pairs.every((pair) => pair.outOfSyncTracks === 0)).toBe(true);
  }, 120_000);

  it('cuts each consistency group across the primary agents: the secondary is always their image at the reported consistency time', async () => {
    sites = await startThreeSites();
    const s = sites;
    const holder = secondPrimary(s, primaries);
    await defineSession(s, primaries);
    const service = s.alpha.replication.service;
    const info = service.info(service.session('mp'));
    expect(info.pairs.map((pair) => [pair.h1Volume, pair.primarySite ?? 'alpha'])).toEqual([
      ['a', 'alpha'],
      ['b', holder.name],
    ]);
    expect(holder.replication.service.session('mp').state).toBe('prepared');
    const coordinator = service.rounds.coordinatorOf(service.session('mp'))!;
    expect(coordinator.participantIds, 'every primary agent takes part in the rounds').toHaveLength(primaries);

    // Stamp i goes to alpha's a, then (after alpha acknowledged it) to b: with two primary agents a cross-agent dependency.
    const writer = (running = new StampedWriter(BLOCK));
    writer.start({ a: s.alpha.replication.exports.openExport('a'), b: holder.replication.exports.openExport('b') });
    const { samples, advancing } = await sampleSecondary(s, writer, 5000);
    await writer.stop();
    expect(samples).toBeGreaterThan(10);
    expect(advancing, 'the consistency time moves forward while writes continue').toBeGreaterThan(5);
    expect(writer.writes.length).toBeGreaterThan(200);
    expect(coordinator.rounds.complete).toBeGreaterThan(10);
    const reported = service.info(service.session('mp'));
    expect(reported.exposureSeconds).not.toBeNull();
    expect(reported.exposureSeconds!).toBeLessThan(5);
    await converge(s, writer, primaries);
  }, 120_000);
});

describe('async sessions with primaries on two agents', () => {
  it('suspends when a primary agent goes away, keeps tracking at both primaries, resumes incrementally and converges', async () => {
    sites = await startThreeSites();
    const s = sites;
    await defineSession(s);
    const service = s.alpha.replication.service;
    const firstEvent = s.alpha.engine.catalog.lastEventId();
    const writer = (running = new StampedWriter(BLOCK * 16)); // slots a track apart: many tracks get marked
    writer.start({ a: s.alpha.replication.exports.openExport('a'), b: s.bravo.replication.exports.openExport('b') });
    await sampleSecondary(s, writer, 1000);

    s.isolateBravo(true);
    await waitFor(() => service.session('mp').state === 'suspended', 30_000, 'suspended at the control agent');
    expect(service.session('mp').detail).toMatch(/bravo/);
    await waitFor(() => s.bravo.replication.service.session('mp').state === 'suspended', 30_000, 'suspended at bravo');
    // Host writes go on at both primaries; their bitmaps track them.
    const before = writer.writes.length;
    await waitFor(() => writer.writes.length > before + 100, 20_000, 'writes while suspended');
    const marked = (site: Site) => site.replication.service.info(site.replication.service.session('mp')).pairs.reduce((sum, p) => sum + p.outOfSyncTracks, 0);
    expect(marked(s.alpha)).toBeGreaterThan(0);
    expect(marked(s.bravo)).toBeGreaterThan(0);

    s.isolateBravo(false);
    try {
      await waitFor(() => service.session('mp').state === 'prepared', 60_000, 'prepared again');
    } catch (error) {
      for (const site of [s.alpha, s.bravo, s.charlie]) {
        console.log(site.name, site.replication.service.session('mp').state, JSON.stringify(site.replication.peers.info().map((p) => [p.site, p.link])));
        console.log(site.engine.catalog.listEvents(firstEvent - 40, 1000).map((e) => `${e.time} ${e.type} ${e.message}`).join('\n'));
      }
      throw error;
    }
    // Consistent again while the writer runs.
    const { samples } = await sampleSecondary(s, writer, 2000);
    expect(samples).toBeGreaterThan(3);
    await writer.stop();
    await converge(s, writer);

    // The resume copied only what the bitmaps marked (the writer's 32 slots, a track apart), at both primaries
    // (a track the writer changed while it was being copied is copied again: counted apart).
    for (const site of [s.alpha, s.bravo]) {
      const copied = site.engine.catalog
        .listEvents(firstEvent, 1000)
        .filter((event) => event.type === 'session.synced' && event.subject === 'mp')
        .map((event) => (event.data as { copiedTracks: number; recopiedTracks?: number }))
        .map((data) => data.copiedTracks - (data.recopiedTracks ?? 0));
      expect(copied.length, `${site.name} resynced after the resume`).toBeGreaterThan(0);
      expect(Math.max(...copied), `${site.name} copied only marked tracks`).toBeLessThanOrEqual(40);
    }

    // Every transition was an event at the control agent.
    const transitions = s.alpha.engine.catalog
      .listEvents(firstEvent, 1000)
      .filter((event) => event.type === 'session.state' && event.subject === 'mp')
      .map((event) => (event.data as { to: string }).to);
    expect(transitions).toEqual(expect.arrayContaining(['suspending', 'suspended', 'preparing', 'prepared']));
    expect(transitions.indexOf('suspended')).toBeLessThan(transitions.lastIndexOf('prepared'));
  }, 180_000);

  it('a member that loses only its control agent suspends by itself; the session resumes and converges', async () => {
    sites = await startThreeSites();
    const s = sites;
    await defineSession(s);
    const service = s.alpha.replication.service;
    const writer = (running = new StampedWriter(BLOCK * 16));
    // Paced: at most 500 blocks a second at bravo (~2 MiB/s), so while the
    // control agent is cut off bravo's async backlog stays far below its cap
    // (256 MiB) until the control-agent silence watchdog (5 s) fires, on a fast or
    // a slow machine; unpaced, a fast machine overflows the backlog first and
    // bravo suspends for that reason instead.
    writer.start({ a: s.alpha.replication.exports.openExport('a'), b: s.bravo.replication.exports.openExport('b') }, { stampIntervalMs: 2 });
    await sampleSecondary(s, writer, 500);
    const writesBeforeCut = writer.writes.length;
    s.cutControlAgentBravo(true);
    await waitFor(() => service.session('mp').state === 'suspended', 30_000, 'suspended at the control agent');
    // Bravo still reaches charlie; it stops because its control agent went silent.
    await waitFor(() => s.bravo.replication.service.session('mp').state === 'suspended', 30_000, 'suspended at bravo');
    expect(s.bravo.replication.service.session('mp').detail).toMatch(/no word from the control agent alpha/);
    // The host kept writing at bravo while its control agent was silent.
    expect(writer.writes.filter((w, i) => i >= writesBeforeCut && w.volume === 'b').length).toBeGreaterThan(0);
    s.cutControlAgentBravo(false);
    await waitFor(() => service.session('mp').state === 'prepared', 60_000, 'prepared again');
    const { samples } = await sampleSecondary(s, writer, 1500);
    expect(samples).toBeGreaterThan(3);
    await writer.stop();
    await converge(s, writer);
  }, 180_000);

  it('a commit stopped after its marker is applied at start, all parts of the round together; later rounds and other epochs are not', async () => {
    sites = await startThreeSites();
    const s = sites;
    await defineSession(s);
    const service = s.alpha.replication.service;
    await service.act('mp', 'suspend'); // nothing ships now: the parts below are the only ones
    const charlie = s.charlie.replication.service;
    const session = charlie.session('mp');
    const pairOf = (volume: string) => charlie.pairsOf(session).find((pair) => pair.localVolume === volume)!;
    const block = (byte: number) => Buffer.alloc(BLOCK, byte);
    const part = (from: string, round: number, epoch: string, volume: string) => ({
      session: session.id,
      epoch,
      from,
      round,
      time: Date.now(),
      entries: [{ pair: pairOf(volume).id, kind: 'write' as const, offset: 0, length: BLOCK, dataOffset: 0 }],
    });
    const alphaId = s.alpha.engine.identity.agentId;
    const bravoId = s.bravo.engine.identity.agentId;
    await charlie.applier.stagePart(part(alphaId, 1, 'e1', 'a2'), block(0xa1));
    await charlie.applier.stagePart(part(bravoId, 1, 'e1', 'b2'), block(0xb1));
    await charlie.applier.stagePart(part(alphaId, 2, 'e1', 'a2'), block(0xa2)); // staged, never committed
    await charlie.applier.stagePart(part(bravoId, 1, 'old', 'b2'), block(0xee)); // another run of the coordinator
    const first = async (volume: string) => {
      const data = Buffer.alloc(BLOCK);
      await s.charlie.engine.device(volume).readInto(0, data);
      return data[0];
    };
    const [a0, b0] = [await first('a2'), await first('b2')];
    s.charlie.faults.failAfterCommitMarker = 1;
    await expect(charlie.applier.commit(session.id, 'e1', 1, Date.now())).rejects.toMatchObject({ problem: 'internal-error' });
    expect([await first('a2'), await first('b2')], 'nothing applied before the stop').toEqual([a0, b0]);
    // At start: round 1 of e1 at both volumes, nothing of round 2 or of the other epoch.
    expect(await charlie.applier.recover()).toBeGreaterThan(0);
    expect([await first('a2'), await first('b2')]).toEqual([0xa1, 0xb1]);
    await charlie.applier.commit(session.id, 'e1', 2, Date.now());
    expect([await first('a2'), await first('b2')]).toEqual([0xa2, 0xb1]);
  }, 120_000);

  it('refuses copy sets on another primary agent for session types other than async', async () => {
    sites = await startThreeSites();
    const s = sites;
    await s.bravo.engine.createVolume('b', 16 * MiB);
    await s.charlie.engine.createVolume('b2', 16 * MiB);
    const service = s.alpha.replication.service;
    await service.createSession('sy', 'sync', 'charlie');
    await expect(service.addPair('sy', 'b', 'b2', { primaryAgent: 'bravo' })).rejects.toMatchObject({ problem: 'not-supported' });
    await service.createSession('as', 'async', 'charlie');
    await expect(service.addPair('as', 'b', 'b2', { primaryAgent: 'nowhere' })).rejects.toMatchObject({ problem: 'not-paired' });
    await expect(service.addPair('as', 'b', 'b2', { primaryAgent: 'charlie' })).rejects.toMatchObject({ problem: 'bad-request' });
    expect(service.info(service.session('as')).pairs).toEqual([]);
  }, 60_000);
});

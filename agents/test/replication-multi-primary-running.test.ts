import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { secondPlacement, secondPrimary, startThreeSites, type Primaries, type ThreeSites } from './helpers/multi-primary-sites.ts';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadServerTls } from '../src/tls/files.ts';
import { readAll, startSite, waitFor, type Site } from './helpers/replication-sites.ts';
import { StampedWriter } from './helpers/stamped-writer.ts';

const MiB = 1024 * 1024;
const BLOCK = 4096;

let sites: ThreeSites | null = null;
const writers: StampedWriter[] = [];
/** A fourth site's teardown, when a test made one. */
let closeDelta: (() => Promise<void>) | null = null;
afterEach(async () => {
  await Promise.all(writers.splice(0).map((writer) => writer.stop()));
  await closeDelta?.();
  closeDelta = null;
  await sites?.close();
  sites = null;
});

/** A fourth site, delta (another primary agent), paired with alpha (the control agent) and charlie (the secondary). */
async function startDelta(s: ThreeSites): Promise<Site> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-mp-delta-'));
  const delta = await startSite('delta', root);
  const pair = async (from: Site, to: Site) => {
    from.replication.peers.add({
      agentId: to.engine.identity.agentId,
      site: to.name,
      caPem: (await loadServerTls(to.dir)).authority.certificatePem,
      linkAddress: to.replication.linkAddress,
      apiAddress: null,
    });
  };
  for (const other of [s.alpha, s.charlie]) {
    await pair(delta, other);
    await pair(other, delta);
  }
  closeDelta = async () => {
    await delta.replication.close();
    await delta.engine.close();
    await fs.rm(root, { recursive: true, force: true });
  };
  return delta;
}

const eventsOf = (s: ThreeSites, site: 'alpha' | 'bravo' | 'charlie', type: string) =>
  s[site].engine.catalog.listEvents(0, 5000).filter((event) => event.type === type);

/**
 * Copy sets added to and removed from a running multi-primary async session
 * (alpha the control agent, bravo a member, charlie the secondary), checked with
 * dependent writes across agents: charlie, frozen between applies, must be
 * exactly the primaries' image at the cut of the last round it applied, for
 * the member copy sets always and for a new copy set once it joined.
 */
describe.each([1, 2] as const)('copy sets of a running async session with %i primary agent(s)', (primaries: Primaries) => {
  it('adds copy sets at their primary agent and at the control agent under dependent writes: the secondary stays the members\' image, each new one joins, then removals leave the rest consistent', async () => {
    sites = await startThreeSites();
    const s = sites;
    // b, n and q at bravo (two primary agents) or at alpha beside a, c and m (one).
    const holder = secondPrimary(s, primaries);
    const placement = secondPlacement(primaries);
    const holderName = primaries === 2 ? 'bravo' : 'alpha';
    const primaryNames = primaries === 2 ? (['alpha', 'bravo'] as const) : (['alpha'] as const);
    const controlAgent = s.alpha.replication.service;
    await s.alpha.engine.createVolume('a', 16 * MiB);
    await s.alpha.engine.createVolume('c', 16 * MiB);
    await holder.engine.createVolume('b', 16 * MiB);
    await holder.engine.createVolume('n', 16 * MiB);
    await s.alpha.engine.createVolume('m', 16 * MiB);
    await holder.engine.createVolume('q', 16 * MiB);
    for (const name of ['a2', 'b2', 'c2', 'n2', 'm2', 'q2']) await s.charlie.engine.createVolume(name, 16 * MiB);
    // n holds data before it is added (the initial copy moves it); n2 holds stale data the add trims.
    await holder.replication.exports.openExport('n').write(5 * MiB, randomBytes(2 * MiB));
    await s.charlie.engine.device('n2').write(12 * MiB, Buffer.alloc(MiB, 9));
    await controlAgent.createSession('mp', 'async', 'charlie');
    await controlAgent.addPair('mp', 'a', 'a2');
    await controlAgent.addPair('mp', 'c', 'c2');
    await controlAgent.addPair('mp', 'b', 'b2', placement);
    await controlAgent.addPair('mp', 'q', 'q2', placement);
    await controlAgent.act('mp', 'start');
    await waitFor(() => controlAgent.session('mp').state === 'prepared', 60_000, 'prepared');
    const open = (site: Site, volume: string) => site.replication.exports.openExport(volume);

    // Members: stamp i at alpha's a, then at b. Joining: alpha's c, then the new n.
    const members = new StampedWriter(BLOCK);
    const joining = new StampedWriter(BLOCK);
    writers.push(members, joining);
    members.start({ a: open(s.alpha, 'a'), b: open(holder, 'b') });
    joining.start({ a: open(s.alpha, 'c'), b: open(holder, 'n') });
    await waitFor(() => members.writes.length > 50 && joining.writes.length > 50, 20_000, 'writes');

    const charlie = s.charlie.replication.service;
    const atCharlie = charlie.session('mp');
    const device = (name: string) => s.charlie.engine.device(name);
    const stats = { samples: 0, joinedSamples: 0, controlAgentTimeNull: 0, memberStates: new Set<string>(), maxMemberSyncing: 0 };
    let joinedAt = 0;
    /** The control agent's own new copy set m, written with q: checked once m joined. */
    const local = new StampedWriter(BLOCK);
    writers.push(local);
    let localJoinedAt = 0;
    let localSamples = 0;
    /** One sample: charlie frozen between applies is the writers' image at the cut of the round it applied last. */
    const sample = async (withJoining: boolean) => {
      const release = await charlie.applier.freeze(atCharlie.id);
      try {
        const applied = charlie.reports.appliedTimes.get(atCharlie.id);
        if (applied === undefined) return;
        const check = async (writer: StampedWriter, x: string, y: string) => {
          const [stampsX, stampsY] = await Promise.all([writer.stampsOf(device(x)), writer.stampsOf(device(y))]);
          const { match, lowest, highest } = writer.matchesCut(applied, stampsX, stampsY);
          expect(match, `${x}+${y} at ${new Date(applied).toISOString()} is the primaries' image after ${lowest}..${highest} writes`).toBe(true);
        };
        await check(members, 'a2', 'b2');
        stats.samples++;
        if (withJoining && joinedAt && applied > joinedAt) {
          await check(joining, 'c2', 'n2');
          stats.joinedSamples++;
        }
        if (localJoinedAt && applied > localJoinedAt) {
          await check(local, 'm2', 'q2');
          localSamples++;
        }
      } finally {
        release();
      }
      const info = controlAgent.info(controlAgent.session('mp'));
      if (info.consistencyTime === null) stats.controlAgentTimeNull++;
      for (const pair of info.pairs.filter((p) => p.h1Volume === 'a' || p.h1Volume === 'b')) stats.memberStates.add(pair.state);
    };

    await controlAgent.addPair('mp', 'n', 'n2', placement);
    expect(controlAgent.session('mp').state, 'Preparing while n joins').toBe('preparing');
    expect(controlAgent.info(controlAgent.session('mp')).pairs.find((pair) => pair.h1Volume === 'n')?.primarySite).toBe(primaries === 2 ? 'bravo' : undefined);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (!joinedAt) {
        const joined = eventsOf(s, 'alpha', 'pair.joined').find((event) => event.message.includes(primaries === 2 ? 'bravo:n -> n2' : 'n -> n2'));
        if (joined) joinedAt = Date.parse(joined.time);
      }
      await sample(true);
      if (joinedAt && controlAgent.session('mp').state === 'prepared' && stats.joinedSamples >= 10) break;
    }
    expect(joinedAt, 'n joined the consistency group (the control agent recorded it)').toBeGreaterThan(0);
    expect(controlAgent.session('mp').state).toBe('prepared');
    expect(stats.joinedSamples).toBeGreaterThanOrEqual(10);
    expect(stats.samples).toBeGreaterThan(10);
    expect(stats.controlAgentTimeNull, 'the control agent kept a consistency time (of the members) while n joined').toBe(0);
    expect([...stats.memberStates], 'a and b stayed duplex').toEqual(['duplex']);
    // n was copied synchronously while joining, then joined its primary agent's parts: that agent recorded both.
    expect(Number(eventsOf(s, holderName, 'pair.added').find((event) => event.message.includes('n -> n2'))?.data?.markedTracks)).toBeGreaterThanOrEqual(32);
    expect(eventsOf(s, holderName, 'pair.joined').some((event) => event.message.includes('n -> n2'))).toBe(true);
    // The members never resynced.
    for (const site of primaryNames) expect(eventsOf(s, site, 'session.resync'), `resyncs at ${site}`).toHaveLength(1);

    // A copy set at the control agent itself (m), written together with q: it joins the control agent's parts once duplex.
    local.start({ a: open(s.alpha, 'm'), b: open(holder, 'q') });
    await waitFor(() => local.writes.length > 50, 20_000, 'writes to m and q');
    await controlAgent.addPair('mp', 'm', 'm2');
    expect(controlAgent.session('mp').state, 'Preparing while m joins').toBe('preparing');
    const localDeadline = Date.now() + 60_000;
    while (Date.now() < localDeadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (!localJoinedAt) {
        const joined = eventsOf(s, 'alpha', 'pair.joined').find((event) => event.message.includes('m -> m2'));
        if (joined) localJoinedAt = Date.parse(joined.time);
      }
      await sample(true);
      if (localJoinedAt && controlAgent.session('mp').state === 'prepared' && localSamples >= 10) break;
    }
    expect(localJoinedAt, 'm joined the consistency group').toBeGreaterThan(0);
    expect(localSamples).toBeGreaterThanOrEqual(10);
    expect(controlAgent.session('mp').state).toBe('prepared');
    expect(stats.controlAgentTimeNull, 'the control agent kept a consistency time while m joined').toBe(0);
    await local.stop();

    // Remove n (at its primary agent) and c (at the control agent) while the members' writes go on.
    await joining.stop();
    const removedAtHolder = holder.replication.service.pairsOf(holder.replication.service.session('mp')).find((pair) => pair.h1Volume === 'n')!;
    await controlAgent.removePair('mp', 'n');
    await controlAgent.removePair('mp', 'c');
    const marker = Buffer.alloc(65536, 0x5a);
    await open(holder, 'n').write(0, marker);
    const samplesAtRemoval = stats.samples;
    const writesAtRemoval = members.writes.length;
    while (members.writes.length < writesAtRemoval + 200 || stats.samples < samplesAtRemoval + 10) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await sample(false);
    }
    await members.stop();
    expect(controlAgent.session('mp').state).toBe('prepared');
    expect(controlAgent.info(controlAgent.session('mp')).pairs.map((pair) => pair.h1Volume).sort()).toEqual(['a', 'b', 'm', 'q']);
    const heldAtHolder = holder.replication.service.pairsOf(holder.replication.service.session('mp')).map((pair) => pair.h1Volume).sort();
    expect(heldAtHolder).toEqual(primaries === 2 ? ['b', 'q'] : ['a', 'b', 'm', 'q']);
    expect(charlie.pairsOf(atCharlie).map((pair) => pair.h2Volume).sort()).toEqual(['a2', 'b2', 'm2', 'q2']);
    const members2 = primaries === 2 ? ['b', 'q'] : [];
    expect(controlAgent.multiPrimary.memberCopySets(controlAgent.session('mp')).map((pair) => pair.h1Volume)).toEqual(members2);
    expect(charlie.multiPrimary.memberCopySets(atCharlie).map((pair) => pair.h1Volume)).toEqual(members2);
    expect(() => holder.engine.bitmaps.view(removedAtHolder.outOfSyncBitmap!)).toThrow();
    // The secondary forgot it too.
    expect(charlie.pairsOf(atCharlie).some((pair) => pair.h2Volume === 'n2')).toBe(false);
    const there = Buffer.alloc(65536);
    await device('n2').readInto(0, there);
    expect(there.equals(marker), 'a write to n after its removal stays at bravo').toBe(false);
    // n2 and c2 take host writes again.
    await s.charlie.replication.exports.openExport('n2').write(0, Buffer.alloc(512, 1));
    await s.charlie.replication.exports.openExport('c2').write(0, Buffer.alloc(512, 1));

    const last = members.writes.at(-1)!.ackedAt;
    await waitFor(() => Date.parse(controlAgent.consistencyTime(controlAgent.session('mp')) ?? '0') > last, 30_000, 'caught up');
    expect((await readAll(s.alpha, 'a')).equals(await readAll(s.charlie, 'a2')), 'a == a2').toBe(true);
    expect((await readAll(holder, 'b')).equals(await readAll(s.charlie, 'b2')), 'b == b2').toBe(true);
    expect((await readAll(s.alpha, 'm')).equals(await readAll(s.charlie, 'm2')), 'm == m2').toBe(true);
    expect((await readAll(holder, 'q')).equals(await readAll(s.charlie, 'q2')), 'q == q2').toBe(true);
    for (const site of [...primaryNames, 'charlie'] as const) {
      expect(eventsOf(s, site, 'pair.removed').some((event) => event.message.includes('n -> n2')), `pair.removed for n at ${site}`).toBe(true);
    }
  }, 180_000);
});

describe('copy sets of a running multi-primary session', () => {

  it('a primary agent new to the running session takes part in the rounds with its first copy set once joined, and leaves them with its last', async () => {
    sites = await startThreeSites();
    const s = sites;
    const delta = await startDelta(s);
    const controlAgent = s.alpha.replication.service;
    await s.alpha.engine.createVolume('a', 16 * MiB);
    await s.bravo.engine.createVolume('b', 16 * MiB);
    await s.alpha.engine.createVolume('c', 16 * MiB);
    await delta.engine.createVolume('d', 16 * MiB);
    for (const name of ['a2', 'b2', 'c2', 'd2']) await s.charlie.engine.createVolume(name, 16 * MiB);
    await delta.replication.exports.openExport('d').write(2 * MiB, randomBytes(3 * MiB));
    await controlAgent.createSession('mp', 'async', 'charlie');
    await controlAgent.addPair('mp', 'a', 'a2');
    await controlAgent.addPair('mp', 'c', 'c2');
    await controlAgent.addPair('mp', 'b', 'b2', { primaryAgent: 'bravo' });
    await controlAgent.act('mp', 'start');
    await waitFor(() => controlAgent.session('mp').state === 'prepared', 60_000, 'prepared');
    const coordinator = () => controlAgent.rounds.coordinatorOf(controlAgent.session('mp'))!;
    const ids = { alpha: s.alpha.engine.identity.agentId, bravo: s.bravo.engine.identity.agentId, delta: delta.engine.identity.agentId };
    expect(coordinator().participantIds.sort()).toEqual([ids.alpha, ids.bravo].sort());

    // Dependent writes across alpha's a and bravo's b, and across alpha's c and delta's new d.
    const members = new StampedWriter(BLOCK);
    const newcomer = new StampedWriter(BLOCK);
    writers.push(members, newcomer);
    members.start({ a: s.alpha.replication.exports.openExport('a'), b: s.bravo.replication.exports.openExport('b') });
    newcomer.start({ a: s.alpha.replication.exports.openExport('c'), b: delta.replication.exports.openExport('d') });
    await waitFor(() => members.writes.length > 50 && newcomer.writes.length > 20, 20_000, 'writes');

    await controlAgent.addPair('mp', 'd', 'd2', { primaryAgent: 'delta' });
    expect(controlAgent.session('mp').state, 'Preparing while d joins').toBe('preparing');
    await waitFor(() => coordinator().participantIds.includes(ids.delta), 10_000, 'delta takes part in the rounds');
    const charlie = s.charlie.replication.service;
    const atCharlie = charlie.session('mp');
    let joinedAt = 0;
    let samples = 0;
    let joinedSamples = 0;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (!joinedAt) {
        const joined = eventsOf(s, 'alpha', 'pair.joined').find((event) => event.message.includes('delta:d -> d2'));
        if (joined) joinedAt = Date.parse(joined.time);
      }
      const release = await charlie.applier.freeze(atCharlie.id);
      try {
        const applied = charlie.reports.appliedTimes.get(atCharlie.id);
        if (applied === undefined) continue;
        const device = (name: string) => s.charlie.engine.device(name);
        const [a2, b2] = await Promise.all([members.stampsOf(device('a2')), members.stampsOf(device('b2'))]);
        expect(members.matchesCut(applied, a2, b2).match, 'a2+b2 are the primaries\' image').toBe(true);
        samples++;
        if (joinedAt && applied > joinedAt) {
          const [c2, d2] = await Promise.all([newcomer.stampsOf(device('c2')), newcomer.stampsOf(device('d2'))]);
          expect(newcomer.matchesCut(applied, c2, d2).match, 'c2+d2 are the primaries\' image once d joined').toBe(true);
          joinedSamples++;
        }
      } finally {
        release();
      }
      if (joinedAt && controlAgent.session('mp').state === 'prepared' && joinedSamples >= 10) break;
    }
    expect(joinedAt, 'd joined').toBeGreaterThan(0);
    expect(joinedSamples).toBeGreaterThanOrEqual(10);
    expect(samples).toBeGreaterThan(10);
    expect(controlAgent.session('mp').state).toBe('prepared');
    expect(controlAgent.info(controlAgent.session('mp')).pairs.map((pair) => `${pair.primarySite ?? 'alpha'}:${pair.h1Volume}`)).toEqual([
      'alpha:a',
      'alpha:c',
      'bravo:b',
      'delta:d',
    ]);
    await newcomer.stop();

    // d is delta's last copy set: delta leaves the rounds and stops; the rest goes on.
    await controlAgent.removePair('mp', 'd');
    await waitFor(() => !coordinator().participantIds.includes(ids.delta), 10_000, 'delta left the rounds');
    await waitFor(() => delta.replication.service.session('mp').state === 'suspended', 10_000, 'delta stopped running the session');
    const rounds = coordinator().rounds.complete;
    await waitFor(() => coordinator().rounds.complete > rounds + 10, 20_000, 'rounds without delta');
    expect(controlAgent.session('mp').state).toBe('prepared');
    await members.stop();
    const last = members.writes.at(-1)!.ackedAt;
    await waitFor(() => Date.parse(controlAgent.consistencyTime(controlAgent.session('mp')) ?? '0') > last, 30_000, 'caught up');
    expect((await readAll(s.alpha, 'a')).equals(await readAll(s.charlie, 'a2')), 'a == a2').toBe(true);
    expect((await readAll(s.bravo, 'b')).equals(await readAll(s.charlie, 'b2')), 'b == b2').toBe(true);
    // bravo's b is the session's last copy set at another agent: the session goes on with alpha's alone, in rounds.
    await controlAgent.removePair('mp', 'b');
    await waitFor(() => !coordinator().participantIds.includes(ids.bravo), 10_000, 'bravo left the rounds');
    expect(coordinator().participantIds).toEqual([ids.alpha]);
    const alone = coordinator().rounds.complete;
    await s.alpha.replication.exports.openExport('a').write(MiB, randomBytes(64 * 1024));
    const written = Date.now();
    await waitFor(() => coordinator().rounds.complete > alone + 5, 20_000, 'rounds with alpha alone');
    await waitFor(() => Date.parse(controlAgent.consistencyTime(controlAgent.session('mp')) ?? '0') > written, 30_000, 'caught up without bravo');
    expect(controlAgent.session('mp').state).toBe('prepared');
    expect((await readAll(s.alpha, 'a')).equals(await readAll(s.charlie, 'a2')), 'a == a2 with alpha alone').toBe(true);
    expect((await readAll(delta, 'd')).equals(await readAll(s.charlie, 'd2')), 'd == d2 (as of its removal; nothing written since)').toBe(true);
  }, 180_000);

  it('refuses what it cannot do while the session runs, with stable problem codes, and changes nothing', async () => {
    sites = await startThreeSites();
    const s = sites;
    const controlAgent = s.alpha.replication.service;
    await s.alpha.engine.createVolume('a', 8 * MiB);
    await s.bravo.engine.createVolume('b', 8 * MiB);
    await s.bravo.engine.createVolume('big', 16 * MiB);
    await s.bravo.engine.createVolume('extra', 8 * MiB);
    for (const name of ['a2', 'b2', 'x2']) await s.charlie.engine.createVolume(name, 8 * MiB);
    await controlAgent.createSession('mp', 'async', 'charlie');
    await controlAgent.addPair('mp', 'a', 'a2');
    await controlAgent.addPair('mp', 'b', 'b2', { primaryAgent: 'bravo' });
    await controlAgent.act('mp', 'start');
    await waitFor(() => controlAgent.session('mp').state === 'prepared', 60_000, 'prepared');

    await expect(controlAgent.addPair('mp', 'big', 'x2', { primaryAgent: 'bravo' })).rejects.toMatchObject({ problem: 'invalid-size' });
    await expect(controlAgent.addPair('mp', 'b', 'x2', { primaryAgent: 'bravo' })).rejects.toMatchObject({ problem: 'volume-busy' });
    await expect(controlAgent.addPair('mp', 'missing', 'x2', { primaryAgent: 'bravo' })).rejects.toMatchObject({ problem: 'not-found' });
    // Only the control agent adds and removes copy sets.
    await expect(s.bravo.replication.service.addPair('mp', 'extra', 'x2')).rejects.toMatchObject({ problem: 'invalid-state' });
    await expect(s.bravo.replication.service.removePair('mp', 'b')).rejects.toMatchObject({ problem: 'invalid-state' });

    const info = controlAgent.info(controlAgent.session('mp'));
    expect(info.state).toBe('prepared');
    expect(info.pairs.map((pair) => pair.h1Volume)).toEqual(['a', 'b']);
    expect(s.charlie.replication.service.pairsOf(s.charlie.replication.service.session('mp')).map((pair) => pair.h2Volume).sort()).toEqual(['a2', 'b2']);
    expect(s.bravo.replication.service.pairsOf(s.bravo.replication.service.session('mp')).map((pair) => pair.h1Volume)).toEqual(['b']);
    // x2 was not taken: it still takes host writes.
    await s.charlie.replication.exports.openExport('x2').write(0, Buffer.alloc(512, 1));
  }, 120_000);

  it('a session started with its primary volumes at the control agent only takes a copy set at another agent while it runs: bravo joins the rounds, its copy set joins, both copies match', async () => {
    sites = await startThreeSites();
    const s = sites;
    const controlAgent = s.alpha.replication.service;
    await s.alpha.engine.createVolume('solo', 8 * MiB);
    await s.bravo.engine.createVolume('extra', 8 * MiB);
    for (const name of ['solo2', 'extra2']) await s.charlie.engine.createVolume(name, 8 * MiB);
    await s.bravo.replication.exports.openExport('extra').write(0, randomBytes(2 * MiB));
    await controlAgent.createSession('single', 'async', 'charlie');
    await controlAgent.addPair('single', 'solo', 'solo2');
    await controlAgent.act('single', 'start');
    await waitFor(() => controlAgent.session('single').state === 'prepared', 60_000, 'single prepared');
    const coordinator = () => controlAgent.rounds.coordinatorOf(controlAgent.session('single'))!;
    const ids = { alpha: s.alpha.engine.identity.agentId, bravo: s.bravo.engine.identity.agentId };
    expect(coordinator().participantIds).toEqual([ids.alpha]);

    await controlAgent.addPair('single', 'extra', 'extra2', { primaryAgent: 'bravo' });
    await waitFor(() => coordinator().participantIds.includes(ids.bravo), 10_000, 'bravo takes part in the rounds');
    await waitFor(
      () => controlAgent.session('single').state === 'prepared' && eventsOf(s, 'alpha', 'pair.joined').some((event) => event.message.includes('bravo:extra -> extra2')),
      60_000,
      'extra joined, prepared',
    );
    await s.alpha.replication.exports.openExport('solo').write(0, randomBytes(MiB));
    await s.bravo.replication.exports.openExport('extra').write(4 * MiB, randomBytes(MiB));
    const written = Date.now();
    await waitFor(() => Date.parse(controlAgent.consistencyTime(controlAgent.session('single')) ?? '0') > written, 30_000, 'caught up');
    expect((await readAll(s.alpha, 'solo')).equals(await readAll(s.charlie, 'solo2')), 'solo == solo2').toBe(true);
    expect((await readAll(s.bravo, 'extra')).equals(await readAll(s.charlie, 'extra2')), 'extra == extra2').toBe(true);
    expect(controlAgent.info(controlAgent.session('single')).pairs.map((pair) => `${pair.primarySite ?? 'alpha'}:${pair.h1Volume}`)).toEqual([
      'alpha:solo',
      'bravo:extra',
    ]);
  }, 120_000);
});

import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startThreeSites, type ThreeSites } from './helpers/multi-primary-sites.ts';
import { readAll, waitFor } from './helpers/replication-sites.ts';
import { GroupApplier } from '../src/replication/group-applier.ts';

// Long rounds (read when multi-primary.ts loads): a burst of host writes lands in one round's part.
vi.hoisted(() => {
  process.env.TANDEM_MP_ROUND_INTERVAL_MS = '5000';
  process.env.TANDEM_MP_CONTROL_SILENCE_MS = '60000'; // members hear the control agent once a round
});

const MiB = 1024 * 1024;

let sites: ThreeSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

describe('multi-primary rounds larger than one peer-link frame', () => {
  it('stages a part of 80 MiB in pieces: the session stays prepared and the secondary converges', async () => {
    sites = await startThreeSites();
    const s = sites;
    await s.alpha.engine.createVolume('a', 16 * MiB);
    await s.bravo.engine.createVolume('b', 96 * MiB);
    await s.charlie.engine.createVolume('a2', 16 * MiB);
    await s.charlie.engine.createVolume('b2', 96 * MiB);
    const service = s.alpha.replication.service;
    await service.createSession('mp', 'async', 'charlie');
    await service.addPair('mp', 'a', 'a2');
    await service.addPair('mp', 'b', 'b2', { primaryAgent: 'bravo' });
    await service.act('mp', 'start');
    await waitFor(() => service.session('mp').state === 'prepared', 60_000, 'prepared');
    const coordinator = service.rounds.coordinatorOf(service.session('mp'))!;
    const firstEvent = s.alpha.engine.catalog.lastEventId();
    const firstEventBravo = s.bravo.engine.catalog.lastEventId();

    // 80 MiB at bravo between two round starts: one part, more than the 64 MiB a single cg.stage frame may carry.
    const b = s.bravo.replication.exports.openExport('b');
    const a = s.alpha.replication.exports.openExport('a');
    let oneRound = false;
    for (let attempt = 0; attempt < 5 && !oneRound; attempt++) {
      const before = coordinator.rounds.run;
      const burst = randomBytes(80 * MiB);
      for (let offset = 0; offset < burst.length; offset += MiB) await b.write(offset, burst.subarray(offset, offset + MiB));
      await a.write(MiB, randomBytes(MiB)); // the other primary's part of the same round
      oneRound = coordinator.rounds.run === before;
    }
    expect(oneRound, 'an 80 MiB burst fell within one round').toBe(true);
    const end = Date.now();

    await waitFor(() => {
      const time = service.consistencyTime(service.session('mp'));
      return service.session('mp').state === 'prepared' && time !== null && Date.parse(time) > end;
    }, 90_000, 'the round holding the burst committed');
    const events = [
      ...s.alpha.engine.catalog.listEvents(firstEvent, 1000),
      ...s.bravo.engine.catalog.listEvents(firstEventBravo, 1000),
    ].map((event) => `${event.type} ${event.message}`);
    // Never suspended on the way (a suspended session resumes by itself once the link is back, and a resync would converge too).
    expect(events.filter((event) => event.startsWith('session.state') && /suspend/.test(event)), events.join('\n')).toEqual([]);
    expect(service.rounds.coordinatorOf(service.session('mp')), 'the same run of the control agent').toBe(coordinator);
    expect(service.session('mp').state).toBe('prepared');
    expect(s.bravo.replication.service.session('mp').state).toBe('prepared');
    expect(coordinator.rounds.incomplete).toBe(0);
    expect((await readAll(s.bravo, 'b')).equals(await readAll(s.charlie, 'b2')), 'b == b2').toBe(true);
    expect((await readAll(s.alpha, 'a')).equals(await readAll(s.charlie, 'a2')), 'a == a2').toBe(true);
    // The part's pieces were applied and unstaged at the secondary (none of the committed rounds is left).
    const committed = await s.charlie.replication.service.applier.lastCommit(s.charlie.replication.service.session('mp').id);
    expect(committed!.time).toBeGreaterThan(end);
    const dir = path.join(s.charlie.engine.paths.root, 'staging');
    const rounds: number[] = [];
    for (const name of (await fsp.readdir(dir)).filter((file) => file.endsWith('.part'))) {
      const data = await fsp.readFile(path.join(dir, name)).catch(() => null); // committed since
      if (data) rounds.push((JSON.parse(data.subarray(4, 4 + data.readUInt32BE(0)).toString('utf8')) as { round: number }).round);
    }
    expect(rounds.filter((round) => round <= committed!.through)).toEqual([]);
  }, 180_000);

  it('a commit applies only complete parts: half a part staged before a restart is refused until its last piece arrives', async () => {
    sites = await startThreeSites();
    const s = sites;
    await s.alpha.engine.createVolume('a', 16 * MiB);
    await s.charlie.engine.createVolume('a2', 16 * MiB);
    const service = s.alpha.replication.service;
    await service.createSession('mp', 'async', 'charlie');
    await service.addPair('mp', 'a', 'a2');
    await service.act('mp', 'start');
    await waitFor(() => service.session('mp').state === 'prepared', 60_000, 'prepared');
    await service.act('mp', 'suspend'); // nothing ships now: the pieces below are the only ones
    const charlie = s.charlie.replication.service;
    const session = charlie.session('mp');
    const pair = charlie.pairsOf(session).find((p) => p.localVolume === 'a2')!;
    const BLOCK = 4096;
    const from = s.alpha.engine.identity.agentId;
    const piece = (index: number, last: boolean, offsets: number[]) => ({
      session: session.id,
      epoch: 'e1',
      from,
      round: 1,
      time: Date.now(),
      piece: index,
      last,
      entries: offsets.map((offset, n) => ({ pair: pair.id, kind: 'write' as const, offset, length: BLOCK, dataOffset: n * BLOCK })),
    });
    const read = async () => {
      const data = Buffer.alloc(2 * BLOCK);
      await s.charlie.engine.device('a2').readInto(0, data);
      return [data[0], data[BLOCK]];
    };
    const before = await read();
    await charlie.applier.stagePart(piece(0, false, [0]), Buffer.alloc(BLOCK, 0x11));
    // A restart: the staged piece is read back from its file.
    const restarted = new GroupApplier(s.charlie.engine, (id) => charlie.pairsOf(charlie.session(id)), () => {});
    await restarted.recover();
    await expect(restarted.stagePart(piece(2, true, [0]), Buffer.alloc(BLOCK, 0x99))).rejects.toMatchObject({ problem: 'invalid-state' });
    await expect(restarted.commit(session.id, 'e1', 1, Date.now())).rejects.toMatchObject({ problem: 'invalid-state' });
    expect(await read(), 'nothing of a part missing its last piece is applied').toEqual(before);
    // (The session's own rounds committed before the suspend left their marker, of another epoch.)
    expect((await restarted.lastCommit(session.id))?.epoch, 'no commit marker for the refused round').not.toBe('e1');
    // The rest arrives: the part applies whole, its pieces in order (piece 1 writes block 0 after piece 0).
    await restarted.stagePart(piece(1, true, [0, BLOCK]), Buffer.concat([Buffer.alloc(BLOCK, 0x22), Buffer.alloc(BLOCK, 0x33)]));
    await restarted.commit(session.id, 'e1', 1, Date.now());
    expect(await read()).toEqual([0x22, 0x33]);
    const dir = path.join(s.charlie.engine.paths.root, 'staging');
    // (A part of the session's own run left staged by the suspend stays until alpha fences its next run: a commit drops only its epoch's parts.)
    expect((await fsp.readdir(dir)).filter((name) => name.endsWith('.part') && name.includes('-e1-')), 'the pieces are unstaged').toEqual([]);
  }, 120_000);
});

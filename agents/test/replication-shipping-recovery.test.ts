import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readAll, startTwoSites, type TwoSites } from './helpers/replication-sites.ts';

/**
 * The target of a snapshot-shipping session after a crash: a cycle whose
 * manifest was committed is applied at start; a cycle staged without a
 * manifest (cut off before its commit) is dropped and the volume keeps the
 * previous image.
 */

const MiB = 1024 * 1024;
const TRACK = 65536;

let sites: TwoSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

describe('snapshot-shipping target recovery', () => {
  it('re-applies a committed cycle and drops an uncommitted one', async () => {
    sites = await startTwoSites();
    const s = sites;
    await s.h1.engine.createVolume('prod', 4 * MiB);
    await s.h2.engine.createVolume('copy', 4 * MiB);
    const service = s.h1.replication.service;
    await service.createSession('s1', 'snapshot-shipping', 'beta', { shipIntervalMs: 60 * 60_000 });
    const pair = await service.addPair('s1', 'prod', 'copy');
    const target = s.h2.replication.service;
    const session = target.session('s1');
    const receiver = target.receiver;
    const before = await readAll(s.h2, 'copy');

    // Cut off before its commit: staged data, no manifest. Dropped by recovery.
    const dir = path.join(s.h2.dir, 'shipping');
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, `${session.id}.data`), randomBytes(TRACK));
    expect(await receiver.recover()).toBe(0);
    expect(await fs.readdir(dir)).toEqual([]);
    expect((await readAll(s.h2, 'copy')).equals(before)).toBe(true);

    // Committed (manifest in place) but not applied when the agent died: applied at start.
    const data = randomBytes(2 * TRACK);
    await fs.writeFile(path.join(dir, `${session.id}.data`), data);
    const time = Date.now() - 5000;
    const manifest = {
      session: session.id,
      cycle: 7,
      time,
      entries: [
        { pair: pair.id, kind: 'write', offset: 3 * TRACK, length: TRACK, dataOffset: TRACK },
        { pair: pair.id, kind: 'write', offset: 10 * TRACK, length: TRACK, dataOffset: 0 },
      ],
    };
    await fs.writeFile(path.join(dir, `${session.id}.manifest`), JSON.stringify(manifest));
    expect(await receiver.recover()).toBe(1);
    expect(await fs.readdir(dir)).toEqual([]);
    const after = await readAll(s.h2, 'copy');
    expect(after.subarray(3 * TRACK, 4 * TRACK).equals(data.subarray(TRACK))).toBe(true);
    expect(after.subarray(10 * TRACK, 11 * TRACK).equals(data.subarray(0, TRACK))).toBe(true);
    expect(after.subarray(0, 3 * TRACK).equals(before.subarray(0, 3 * TRACK))).toBe(true);
    expect(target.consistencyTime(session)).toBe(new Date(time).toISOString());
    // The consistency time survives in the catalog (the session record).
    expect(target.store.sessions().find((record) => record.id === session.id)?.consistencyTime).toBe(new Date(time).toISOString());
  });
});

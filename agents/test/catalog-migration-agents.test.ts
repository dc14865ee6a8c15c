import Database from 'better-sqlite3';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventListSchema, SessionListSchema, VolumeListSchema, type SessionInfo } from '@tandem/contract';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { CATALOG_VERSION } from '../src/storage/catalog.ts';
import { until } from './helpers/session-views.ts';

/**
 * Catalog migration 8 on data dirs written by the code before it
 * (test/fixtures/catalog-v7, made by make-catalog-v7-data-dirs.ts at
 * 34bde69): every copy set gets its volume's id, at both sites and in every
 * session state; the two copy sets whose volumes were deleted under them at
 * the secondary (one made again under its name) are reported broken, once,
 * instead of the secondary's session list answering 404 (what that code did)
 * and the one made again being mirrored into as if it were the copy.
 */

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'catalog-v7');
let root: string;
let alpha: AgentProcess;
let beta: AgentProcess;

const sessions = async (agent: AgentProcess): Promise<Map<string, SessionInfo>> =>
  new Map((await agent.api.call('GET', '/v1/sessions', SessionListSchema)).sessions.map((session) => [session.name, session]));
const brokenEvents = async (agent: AgentProcess) =>
  (await agent.api.call('GET', '/v1/events?type=pair.broken&limit=1000', EventListSchema)).events.map((event) => event.subject).sort();

function catalogVersion(dataDir: string): number {
  const db = new Database(path.join(dataDir, 'catalog.db'), { readonly: true, fileMustExist: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

function catalogRows(dataDir: string): { version: number; pairs: Array<{ local_volume: string; local_volume_id: number | null }> } {
  const db = new Database(path.join(dataDir, 'catalog.db'), { readonly: true, fileMustExist: true });
  try {
    return {
      version: db.pragma('user_version', { simple: true }) as number,
      pairs: db.prepare('SELECT local_volume, local_volume_id FROM copy_sets ORDER BY local_volume').all() as Array<{ local_volume: string; local_volume_id: number | null }>,
    };
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tandem-catalog-v7-'));
  await cp(fixture, root, { recursive: true });
  expect(catalogVersion(path.join(root, 'beta')), 'the fixture is a catalog of the code before the migration').toBe(7);
  [alpha, beta] = await Promise.all([
    startAgentProcess({ dataDir: path.join(root, 'alpha') }),
    startAgentProcess({ dataDir: path.join(root, 'beta') }),
  ]);
  // The fixture's agents listened on other ports: each learns the other's link address now.
  await alpha.api.call('PATCH', '/v1/peers/beta', null, { linkAddress: beta.runInfo.linkAddress });
  await beta.api.call('PATCH', '/v1/peers/alpha', null, { linkAddress: alpha.runInfo.linkAddress });
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
  if (root) await rm(root, { recursive: true, force: true });
});

describe('catalog migration 8 (copy sets by volume id) on data dirs of the code before it', () => {
  it('gives every copy set its volume id at both sites; the copy sets whose volumes went are broken, once; every session still lists', async () => {
    // The secondary lists every session (before: 404 for the whole list, because of gone-c).
    const atBeta = await sessions(beta);
    expect([...atBeta.keys()].sort()).toEqual(['asy', 'born', 'def', 'gone', 'rec', 'run', 'shp', 'sus']);
    const betaVolumes = new Map((await beta.api.call('GET', '/v1/volumes', VolumeListSchema)).volumes.map((volume) => [volume.name, volume.id]));
    for (const name of ['def', 'run', 'asy', 'sus', 'rec', 'shp']) {
      expect(atBeta.get(name)!.pairs[0], name).toMatchObject({ h2Volume: `${name}-c`, localVolumeId: betaVolumes.get(`${name}-c`) });
      expect(atBeta.get(name)!.pairs[0].state, name).not.toBe('failed');
    }
    expect(atBeta.get('gone')!.pairs[0]).toMatchObject({ state: 'failed', localVolumeId: null, reason: expect.stringMatching(/gone-c at beta was already gone/) });
    // born-c was made again after the copy set existed (beta's own event log says so): not taken for the copy.
    expect(atBeta.get('born')!.pairs[0]).toMatchObject({ state: 'failed', localVolumeId: null, reason: expect.stringMatching(/born-c at beta was deleted and made again/) });
    for (const name of ['gone', 'born']) expect(atBeta.get(name)!.health, name).toBe('severe');

    // The primary: its copy sets by id, every state kept; the two broken ones learned from beta (suspended, severe).
    const alphaVolumes = new Map((await alpha.api.call('GET', '/v1/volumes', VolumeListSchema)).volumes.map((volume) => [volume.name, volume.id]));
    const atAlpha = await until('alpha settled', async () => {
      const all = await sessions(alpha);
      const settled =
        ['gone', 'born'].every((name) => all.get(name)?.state === 'suspended' && all.get(name)?.pairs[0].state === 'failed') &&
        ['run', 'asy', 'shp'].every((name) => all.get(name)?.state === 'prepared');
      return settled ? all : null;
    });
    for (const name of ['def', 'run', 'asy', 'sus', 'rec', 'shp', 'gone', 'born']) {
      expect(atAlpha.get(name)!.pairs[0].localVolumeId, name).toBe(alphaVolumes.get(`${name}-p`));
    }
    expect(Object.fromEntries([...atAlpha].map(([name, info]) => [name, info.state]))).toEqual({
      def: 'defined',
      run: 'prepared',
      asy: 'prepared',
      sus: 'suspended',
      rec: 'target-available',
      shp: 'prepared',
      gone: 'suspended',
      born: 'suspended',
    });
    expect(atAlpha.get('born')!.detail).toMatch(/^copy set born-p -> born-c of session born is broken: .*born-c at beta/);
    expect((await sessions(beta)).get('rec')).toMatchObject({ state: 'target-available', pairs: [expect.objectContaining({ state: 'target-available' })] });

    // Guards by id: the copies in copy sets are refused, the volume made again under born-c's name is free.
    const refused = await beta.cli(['volume', 'delete', 'run-c']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/volume-busy: run-c is the secondary \(H2\) volume of copy set run-p -> run-c in session run/);
    const freed = await beta.cli(['volume', 'delete', 'born-c']);
    expect(freed.code, freed.stderr).toBe(0);

    // Once: a restart reports nothing again.
    expect(await brokenEvents(beta)).toEqual(['born', 'gone']);
    expect(await brokenEvents(alpha)).toEqual(['born', 'gone']);
    await beta.restart({ samePorts: true });
    await until('beta up', async () => (await sessions(beta)).size === 8);
    expect(await brokenEvents(beta)).toEqual(['born', 'gone']);
    const rows = catalogRows(beta.dataDir);
    expect(rows.version).toBe(CATALOG_VERSION);
    expect(rows.pairs.filter((pair) => pair.local_volume_id === null).map((pair) => pair.local_volume)).toEqual(['born-c', 'gone-c']);
  }, 240_000);
});

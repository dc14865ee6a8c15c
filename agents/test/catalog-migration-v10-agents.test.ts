import Database from 'better-sqlite3';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionListSchema, VolumeListSchema, type SessionInfo } from '@tandem/contract';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { CATALOG_VERSION } from '../src/storage/catalog.ts';
import { qemuIo, sameBytes, sessionPath, until, untilSession } from './helpers/session-views.ts';

/**
 * Catalog migration 10 (one `copy_sets` table for every session, issue 12)
 * on the data dirs of three agents written by the code before it
 * (test/fixtures/catalog-v9, made by make-catalog-v9-data-dirs.ts at
 * ef3f352): alpha the control agent and H1 of every session, beta the H2
 * site, gamma a second primary agent of three multi-primary sessions. The
 * upgraded agents keep every copy set with its primary and secondary agent,
 * every session in its state, the bytes their copies held, and go on
 * mirroring: resumed, written, failed back, verified.
 */

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'catalog-v9');
const SITES = ['alpha', 'beta', 'gamma'] as const;
type SiteName = (typeof SITES)[number];
let root: string;
const agents = {} as Record<SiteName, AgentProcess>;
const agentIds = {} as Record<SiteName, string>;

interface CopySetRow {
  session: string;
  primary_agent_id: string;
  secondary_agent_id: string;
  h1_volume: string;
  h2_volume: string;
  local_site: 'h1' | 'h2' | null;
  local_volume: string | null;
  local_volume_id: number | null;
  out_of_sync_bitmap: number | null;
}

function readCatalog(dataDir: string): { version: number; tables: string[]; copySets: CopySetRow[] } {
  const db = new Database(path.join(dataDir, 'catalog.db'), { readonly: true, fileMustExist: true });
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((row) => row.name);
    const copySets = tables.includes('copy_sets')
      ? (db
          .prepare('SELECT s.name AS session, c.* FROM copy_sets c JOIN sessions s ON s.id = c.session_id ORDER BY c.h1_volume')
          .all() as CopySetRow[])
      : [];
    return { version: db.pragma('user_version', { simple: true }) as number, tables, copySets };
  } finally {
    db.close();
  }
}

const sessions = async (agent: AgentProcess): Promise<Map<string, SessionInfo>> =>
  new Map((await agent.api.call('GET', '/v1/sessions', SessionListSchema)).sessions.map((session) => [session.name, session]));
const states = (all: Map<string, SessionInfo>) => Object.fromEntries([...all].map(([name, info]) => [name, `${info.state} ${info.direction}`]));

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tandem-catalog-v9-'));
  await cp(fixture, root, { recursive: true });
  for (const site of SITES) {
    const before = readCatalog(path.join(root, site));
    expect(before.version, 'the fixture is a catalog of the code before the migration').toBe(9);
    expect(before.tables).toContain('pairs');
  }
  const started = await Promise.all(SITES.map((site) => startAgentProcess({ dataDir: path.join(root, site) })));
  for (const [index, site] of SITES.entries()) {
    agents[site] = started[index]!;
    agentIds[site] = (await agents[site].api.agentInfo()).agentId;
  }
  // The fixture's agents listened on other ports: each learns the others' link addresses now.
  for (const site of SITES) {
    for (const other of SITES) {
      if (other !== site) await agents[site].api.call('PATCH', `/v1/peers/${other}`, null, { linkAddress: agents[other].runInfo.linkAddress });
    }
  }
}, 180_000);

afterAll(async () => {
  await Promise.allSettled(SITES.map((site) => agents[site]?.stop()));
  if (root) await rm(root, { recursive: true, force: true });
});

describe('catalog migration 10 (one copy-set table) on data dirs of the code before it', () => {
  it('moves every copy set, with its primary and secondary agent, into copy_sets at all three agents', () => {
    const { alpha, beta, gamma } = agentIds;
    const catalogs = Object.fromEntries(SITES.map((site) => [site, readCatalog(agents[site].dataDir)])) as Record<SiteName, ReturnType<typeof readCatalog>>;
    for (const site of SITES) {
      expect(catalogs[site].version, site).toBe(CATALOG_VERSION);
      expect(catalogs[site].tables, site).toContain('copy_sets');
      expect(catalogs[site].tables, site).not.toContain('pairs');
      expect(catalogs[site].tables, site).not.toContain('multi_primary_pairs');
      for (const row of catalogs[site].copySets) expect(row.secondary_agent_id, `${site} ${row.h1_volume}`).toBe(beta);
    }
    const single = ['def', 'run', 'asy', 'sus', 'rec', 'fb', 'shp'];
    const multi = ['mp', 'mpd', 'mps'];
    // alpha: its own copy sets held (H1), gamma's known without a volume here.
    const atAlpha = catalogs.alpha.copySets;
    expect(atAlpha).toHaveLength(single.length + 2 * multi.length);
    for (const row of atAlpha) {
      const gammas = row.h1_volume.endsWith('-g');
      expect(row, row.h1_volume).toMatchObject(
        gammas
          ? { primary_agent_id: gamma, local_site: null, local_volume: null, local_volume_id: null, out_of_sync_bitmap: null }
          : { primary_agent_id: alpha, local_site: 'h1', local_volume: row.h1_volume },
      );
      if (!gammas) expect(row.local_volume_id, row.h1_volume).not.toBeNull();
    }
    // beta: every copy set held (H2), each with the agent holding its H1 volume.
    const atBeta = catalogs.beta.copySets;
    expect(atBeta).toHaveLength(single.length + 2 * multi.length);
    for (const row of atBeta) {
      expect(row, row.h1_volume).toMatchObject({ primary_agent_id: row.h1_volume.endsWith('-g') ? gamma : alpha, local_site: 'h2', local_volume: row.h2_volume });
      expect(row.local_volume_id, row.h2_volume).not.toBeNull();
    }
    // gamma: its own copy sets, gamma their primary although alpha controls the sessions.
    expect(catalogs.gamma.copySets.map((row) => [row.session, row.h1_volume, row.primary_agent_id, row.local_site])).toEqual(
      multi.map((name) => [name, `${name}-g`, gamma, 'h1']),
    );
    // Bitmaps kept: the out-of-sync bitmap of every started copy set at its source (fb's at beta: failed back, H2->H1).
    for (const row of [...atAlpha, ...catalogs.gamma.copySets]) {
      if (row.local_site === 'h1' && !['def', 'mpd', 'fb'].includes(row.session)) expect(row.out_of_sync_bitmap, row.h1_volume).not.toBeNull();
    }
    expect(atBeta.find((row) => row.session === 'fb')!.out_of_sync_bitmap).not.toBeNull();
  });

  it('keeps every session in its state at every agent, and the multi-primary copy sets with their primary sites', async () => {
    const expected = {
      def: 'defined h1-h2',
      run: 'prepared h1-h2',
      asy: 'prepared h1-h2',
      sus: 'suspended h1-h2',
      rec: 'target-available h1-h2',
      fb: 'prepared h2-h1',
      shp: 'prepared h1-h2',
      mp: 'prepared h1-h2',
      mpd: 'defined h1-h2',
      mps: 'suspended h1-h2',
    };
    const settled = (all: Map<string, SessionInfo>) => JSON.stringify(states(all)) === JSON.stringify(expected);
    const atAlpha = await until('alpha settled in the fixture states', async () => {
      const all = await sessions(agents.alpha);
      return settled(all) ? all : null;
    }, 90_000);
    const atBeta = await until('beta settled in the fixture states', async () => {
      const all = await sessions(agents.beta);
      return settled(all) ? all : null;
    }, 90_000);
    // gamma runs mp again when alpha says so (preparing until then).
    const atGamma = await until('gamma settled in the fixture states', async () => {
      const all = await sessions(agents.gamma);
      return JSON.stringify(states(all)) === JSON.stringify({ mp: 'prepared h1-h2', mpd: 'defined h1-h2', mps: 'suspended h1-h2' }) ? all : null;
    }, 90_000);
    for (const name of ['mp', 'mpd', 'mps']) {
      for (const [site, all] of [
        ['alpha', atAlpha],
        ['beta', atBeta],
      ] as const) {
        const pairs = all.get(name)!.pairs.map((pair) => `${pair.primarySite ?? 'alpha'}:${pair.h1Volume} -> ${pair.h2Volume}`).sort();
        expect(pairs, `${name} at ${site}`).toEqual([`alpha:${name}-a -> ${name}-a2`, `gamma:${name}-g -> ${name}-g2`]);
      }
      expect(atGamma.get(name)!.pairs.map((pair) => pair.h1Volume)).toEqual([`${name}-g`]);
    }
    // The broken-copy-set check (by volume id) finds nothing wrong after the move.
    for (const all of [atAlpha, atBeta, atGamma]) for (const session of all.values()) for (const pair of session.pairs) expect(pair.state, `${session.name} ${pair.h1Volume}`).not.toBe('failed');
  }, 180_000);

  it('mirrors on after the upgrade: the copies hold what was written before it and what is written after, at both sites', async () => {
    const { alpha, beta, gamma } = agents;
    // Mirroring again (the sessions come back prepared from the catalog; their links and sources follow).
    const duplex = (agent: AgentProcess, name: string) =>
      untilSession(agent, name, `${name} duplex at ${agent === beta ? 'beta' : 'alpha'}`, (view) => view.state === 'prepared' && view.pairs.every((pair) => pair.state === 'duplex'), 90_000);
    await Promise.all([duplex(alpha, 'run'), duplex(alpha, 'mp'), duplex(beta, 'fb')]);
    // Written before the upgrade, replicated before it: the copies hold it.
    await qemuIo(beta.nbdUri('run-c'), 'read -P 0x5a 0 128k');
    await qemuIo(beta.nbdUri('mp-g2'), 'read -P 0x67 0 128k');
    await qemuIo(beta.nbdUri('mp-a2'), 'read -P 0x61 0 128k');
    // Sync: a write after the upgrade is at the copy when it is acknowledged.
    await qemuIo(alpha.nbdUri('run-p'), 'write -P 0x71 1M 64k');
    await sameBytes(alpha.nbdUri('run-p'), beta.nbdUri('run-c'));
    // Multi-primary async: writes at both primary agents reach the copies with the next rounds.
    const before = Date.now();
    await qemuIo(gamma.nbdUri('mp-g'), 'write -P 0x72 2M 64k');
    await qemuIo(alpha.nbdUri('mp-a'), 'write -P 0x73 2M 64k');
    await untilSession(alpha, 'mp', 'mp consistent past the writes', (view) => view.consistencyTime !== null && Date.parse(view.consistencyTime) > before + 1000);
    await sameBytes(gamma.nbdUri('mp-g'), beta.nbdUri('mp-g2'));
    await sameBytes(alpha.nbdUri('mp-a'), beta.nbdUri('mp-a2'));
    // A multi-primary session suspended before the upgrade resumes: gamma's write while suspended is copied.
    await alpha.api.call('POST', `${sessionPath('mps')}/actions/resume`, null, {});
    await untilSession(alpha, 'mps', 'mps prepared again', (view) => view.state === 'prepared', 90_000);
    await sameBytes(gamma.nbdUri('mps-g'), beta.nbdUri('mps-g2'));
    await qemuIo(beta.nbdUri('mps-g2'), 'read -P 0x34 0 128k');
    // Failed back before the upgrade (H2->H1): beta is the source, its copy set at alpha the target.
    await qemuIo(alpha.nbdUri('fb-p'), 'read -P 0x45 0 128k');
    await qemuIo(beta.nbdUri('fb-c'), 'write -P 0x74 3M 64k');
    await sameBytes(beta.nbdUri('fb-c'), alpha.nbdUri('fb-p'));
    // A semi-sync session suspended before the upgrade resumes with the change made while suspended.
    await alpha.api.call('POST', `${sessionPath('sus')}/actions/resume`, null, {});
    await untilSession(alpha, 'sus', 'sus prepared again', (view) => view.state === 'prepared', 90_000);
    await sameBytes(alpha.nbdUri('sus-p'), beta.nbdUri('sus-c'));
    // Online verify of the multi-primary session compares every copy set at its own primary agent.
    const report = await until('mp verified', async () => {
      const result = await alpha.api.request('POST', `${sessionPath('mp')}/verify`, {});
      return result.status === 200 ? (result.body as { differingTracks: number; pairs: unknown[] }) : null;
    }, 120_000);
    expect(report).toMatchObject({ differingTracks: 0 });
    expect(report.pairs).toHaveLength(2);
  }, 300_000);

  it('adds and removes copy sets of another primary agent on the upgraded catalog', async () => {
    const { alpha, beta, gamma } = agents;
    const MiB = 1024 * 1024;
    await gamma.api.call('POST', '/v1/volumes', null, { name: 'mpd-g3', sizeBytes: 4 * MiB });
    await beta.api.call('POST', '/v1/volumes', null, { name: 'mpd-g4', sizeBytes: 4 * MiB });
    await alpha.api.call('POST', `${sessionPath('mpd')}/pairs`, null, { h1Volume: 'mpd-g3', h2Volume: 'mpd-g4', primaryAgent: 'gamma' });
    const added = readCatalog(alpha.dataDir).copySets.find((row) => row.h1_volume === 'mpd-g3');
    expect(added).toMatchObject({ primary_agent_id: agentIds.gamma, secondary_agent_id: agentIds.beta, local_site: null });
    expect(readCatalog(beta.dataDir).copySets.find((row) => row.h1_volume === 'mpd-g3')).toMatchObject({ primary_agent_id: agentIds.gamma, local_site: 'h2' });
    expect(readCatalog(gamma.dataDir).copySets.find((row) => row.h1_volume === 'mpd-g3')).toMatchObject({ primary_agent_id: agentIds.gamma, local_site: 'h1' });
    await alpha.api.call('DELETE', `${sessionPath('mpd')}/pairs/mpd-g3?primaryAgent=gamma`, null);
    for (const site of SITES) {
      await until(`mpd-g3 gone at ${site}`, async () => !readCatalog(agents[site].dataDir).copySets.some((row) => row.h1_volume === 'mpd-g3'));
    }
    const volumes = (await beta.api.call('GET', '/v1/volumes', VolumeListSchema)).volumes.map((volume) => volume.name);
    expect(volumes).toContain('mpd-g4');
  }, 120_000);
});

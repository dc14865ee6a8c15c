import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionHistorySchema, SessionInfoSchema, type HistoryPoint, type SessionHistory } from '@tandem/contract';
import { dataDirPaths } from '../src/data-dir.ts';
import { CATALOG_VERSION } from '../src/storage/catalog.ts';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { runCommand } from './helpers/run-command.ts';

/**
 * Session history with real agent processes sampling every 250 ms: each
 * agent records its own view of a session by itself (nobody watching),
 * across a suspension with writes, one shorter than the sample interval, a
 * silent peer and restarts; the history
 * survives a restart, the time the agent was down is a gap, an agent
 * upgraded on an existing data dir adds the history to its catalog, and bad
 * questions get problem codes.
 */

const INTERVAL_MS = 250;
/** The recorder's gap threshold for that interval: max(2.5 intervals, interval + 2 s). */
const GAP_MS = Math.max(2.5 * INTERVAL_MS, INTERVAL_MS + 2000);
const env = { TANDEM_HISTORY_INTERVAL_MS: String(INTERVAL_MS) };

let alpha: AgentProcess;
let beta: AgentProcess;

beforeAll(async () => {
  [alpha, beta] = await startPairedAgents([
    { site: 'alpha', env },
    { site: 'beta', env },
  ]);
  await alpha.api.call('POST', '/v1/volumes', null, { name: 'p-hist', sizeBytes: 16 * 1024 * 1024 });
  await beta.api.call('POST', '/v1/volumes', null, { name: 'c-hist', sizeBytes: 16 * 1024 * 1024 });
  await alpha.api.call('POST', '/v1/sessions', null, { name: 'hist', type: 'sync', peer: 'beta' });
  await alpha.api.call('POST', '/v1/sessions/hist/pairs', null, { h1Volume: 'p-hist', h2Volume: 'c-hist' });
  await alpha.api.call('POST', '/v1/sessions/hist/actions/start', null, {});
  await until('hist prepared', async () => (await show(alpha)).state === 'prepared');
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
});

function show(agent: AgentProcess) {
  return agent.api.call('GET', '/v1/sessions/hist', SessionInfoSchema);
}

/** The history at full resolution unless the query asks for fewer points (a loaded machine may make a test long). */
function history(agent: AgentProcess, query = ''): Promise<SessionHistory> {
  const search = new URLSearchParams(query.replace(/^\?/, ''));
  if (!search.has('maxPoints')) search.set('maxPoints', '10000');
  return agent.api.call('GET', `/v1/sessions/hist/history?${search}`, SessionHistorySchema);
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until the agent's history since `since` holds points matching `match`; returns the history. */
function historyWith(agent: AgentProcess, what: string, match: (points: HistoryPoint[]) => boolean, since: number): Promise<SessionHistory> {
  return until(what, async () => {
    const answer = await history(agent, `?from=${new Date(since).toISOString()}`);
    return match(answer.points) && answer;
  });
}

describe('session history at the agent', () => {
  it('records what the agent saw: duplex, a suspension whose exposure grows while writes are marked, the resync, a silent peer', async () => {
    const start = Date.now() - 1000;
    const duplex = await historyWith(alpha, 'duplex samples', (points) => points.filter((point) => point.state === 'prepared').length >= 3, start);
    expect(duplex).toMatchObject({ session: 'hist', site: 'alpha', sampleIntervalSeconds: 0.25, resolutionSeconds: 0.25, gaps: [] });
    expect(duplex.retentionSeconds).toBeGreaterThanOrEqual(7 * 86_400);
    expect(duplex.points.at(-1)).toMatchObject({ samples: 1, state: 'prepared', health: 'normal', exposureSeconds: 0, outOfSyncTracks: 0, peers: [{ site: 'beta', link: 'connected', unreachableSince: null }] });

    // Suspended, with 4 tracks written meanwhile: marked, and the exposure grows from the suspension on.
    await alpha.api.call('POST', '/v1/sessions/hist/actions/suspend', null, {});
    const written = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x68 0 256k', alpha.nbdUri('p-hist')]);
    expect(written.code, written.out).toBe(0);
    const suspended = await historyWith(
      alpha,
      'suspended samples with the writes marked',
      (points) => points.filter((point) => point.state === 'suspended' && point.outOfSyncTracks === 4).length >= 3,
      start,
    );
    const stretch = suspended.points.filter((point) => point.state === 'suspended' && point.outOfSyncTracks === 4);
    expect(stretch[0]).toMatchObject({ outOfSyncBytes: 4 * 65536, health: 'warning' });
    expect(new Set(stretch.map((point) => point.consistencyTime)).size).toBe(1);
    const exposures = stretch.map((point) => point.exposureSeconds!);
    expect(exposures.at(-1)!).toBeGreaterThan(exposures[0]);
    // Exposure = sample time - consistency time, for every sample.
    for (const point of stretch) expect(point.exposureSeconds! * 1000).toBeCloseTo(Date.parse(point.time) - Date.parse(point.consistencyTime!), -2);

    await alpha.api.call('POST', '/v1/sessions/hist/actions/resume', null, {});
    const resumedAt = Date.now();
    await historyWith(alpha, 'duplex again', (points) => points.some((point) => Date.parse(point.time) > resumedAt && point.state === 'prepared' && point.outOfSyncTracks === 0), start);

    // A suspension shorter than the sample interval (suspended and resumed back to back) is in the history all the same:
    // each state change is sampled as it happens.
    const blipFrom = Date.now();
    await alpha.api.call('POST', '/v1/sessions/hist/actions/suspend', null, {});
    await alpha.api.call('POST', '/v1/sessions/hist/actions/resume', null, {});
    const blipTo = Date.now();
    expect(blipTo - blipFrom).toBeLessThan(INTERVAL_MS * 4);
    const blip = await historyWith(alpha, 'the short suspension, then duplex', (points) => points.some((point) => Date.parse(point.time) > blipTo && point.state === 'prepared'), blipFrom);
    const blipped = blip.points.filter((point) => point.state === 'suspended' && Date.parse(point.time) >= blipFrom && Date.parse(point.time) <= blipTo);
    expect(blipped.length, JSON.stringify(blip.points.map((point) => [point.time, point.state]))).toBeGreaterThan(0);

    // beta goes silent: alpha's samples say so (link, since when, health) within seconds.
    const killedAt = Date.now();
    await beta.kill('SIGKILL');
    const silent = await historyWith(
      alpha,
      'the silent secondary in the history',
      (points) => points.some((point) => point.health === 'warning' && point.peers[0]?.unreachableSince !== null && Date.parse(point.time) > killedAt),
      start,
    );
    const noticed = silent.points.find((point) => point.health === 'warning' && point.peers[0]?.unreachableSince !== null && Date.parse(point.time) > killedAt)!;
    expect(noticed.peers[0].link).not.toBe('connected');
    expect(Date.parse(noticed.time) - killedAt).toBeLessThan(10_000);
    expect(noticed.detail).toMatch(/secondary site beta unreachable since/);
    // beta itself took no samples while it was dead: its history has a gap there once it runs again.
    await beta.restart({ samePorts: true });
    const back = await historyWith(beta, 'beta sampling again', (points) => points.some((point) => Date.parse(point.time) > killedAt + 1000), start);
    expect(back.gaps.some((gap) => Date.parse(gap.from) <= killedAt + INTERVAL_MS && Date.parse(gap.to) > killedAt + GAP_MS)).toBe(true);
    await until('hist prepared again', async () => (await show(alpha)).state === 'prepared');
  });

  it('survives a restart: what was sampled before is still there, the time the agent was down is a gap', async () => {
    const start = Date.now() - 60_000;
    const before = await history(alpha, `?from=${new Date(start).toISOString()}`);
    // The points before the stretch still being sampled (its points move while it grows: a steady exposure, say).
    const last = before.points.at(-1)!;
    const sameStretch = (point: HistoryPoint) => point.state === last.state && point.health === last.health && point.detail === last.detail;
    let open = before.points.length - 1;
    while (open > 0 && sameStretch(before.points[open - 1])) open--;
    const kept = before.points.slice(0, open);
    expect(kept.length).toBeGreaterThan(3);
    const stoppedAt = Date.now();
    await alpha.kill('SIGTERM');
    // The agent may take a last sample while it shuts down: the gap starts at its last sample, before it exited.
    const exitedAt = Date.now();
    // Down for longer than the gap threshold, so the time without samples is a gap, not a late sample.
    await until('alpha down longer than a gap', async () => Date.now() - exitedAt > GAP_MS + 500);
    await alpha.restart({ samePorts: true });
    const restartedAt = Date.now();
    const after = await historyWith(alpha, 'samples after the restart', (points) => points.some((point) => Date.parse(point.time) >= restartedAt - 500), start);
    expect(after.points.slice(0, kept.length)).toEqual(kept);
    const gap = after.gaps.find((each) => Date.parse(each.to) > stoppedAt);
    expect(gap, JSON.stringify(after.gaps)).toBeDefined();
    expect(Date.parse(gap!.from)).toBeGreaterThanOrEqual(Date.parse(last.time));
    expect(Date.parse(gap!.from)).toBeLessThanOrEqual(exitedAt);
    expect(Date.parse(gap!.to)).toBeGreaterThanOrEqual(exitedAt + GAP_MS);
    expect(Date.parse(gap!.to) - Date.parse(gap!.from)).toBeGreaterThan(GAP_MS);
    // No point lies inside the gap.
    expect(after.points.filter((point) => Date.parse(point.time) > Date.parse(gap!.from) && Date.parse(point.time) < Date.parse(gap!.to))).toEqual([]);
    await until('hist prepared after the restart', async () => (await show(alpha)).state === 'prepared');
  });

  it('a wide range comes back as at most maxPoints points, each standing for several samples', async () => {
    const answer = await history(alpha, `?from=${new Date(Date.now() - 120_000).toISOString()}&maxPoints=10`);
    expect(answer.points.length).toBeLessThanOrEqual(10);
    expect(answer.resolutionSeconds).toBeGreaterThan(answer.sampleIntervalSeconds);
    expect(answer.points.some((point) => point.samples > 1)).toBe(true);
  });

  it('answers bad questions with problem codes', async () => {
    const now = Date.now();
    const ask = (query: string) => alpha.api.request('GET', `/v1/sessions/hist/history${query}`);
    const reversed = await ask(`?from=${new Date(now).toISOString()}&to=${new Date(now - 1000).toISOString()}`);
    expect(reversed).toMatchObject({ status: 400, body: { problem: 'bad-request', message: expect.stringContaining('from must be before to') } });
    expect(await ask('?from=yesterday')).toMatchObject({ status: 400, body: { problem: 'bad-request', message: expect.stringContaining('ISO time') } });
    expect(await ask('?maxPoints=0')).toMatchObject({ status: 400, body: { problem: 'bad-request' } });
    expect(await alpha.api.request('GET', '/v1/sessions/nobody/history')).toMatchObject({ status: 404, body: { problem: 'not-found' } });
  });

  it('tandem-agent session history prints the stretches and the gap, or the answer as JSON', async () => {
    const text = await alpha.cli(['session', 'history', 'hist', '--since', '10m']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^session hist as sampled at alpha, .* a sample every 0\.25 s/);
    expect(text.stdout).toMatch(/FROM\s+TO\s+STATE\s+HEALTH\s+EXPOSURE\s+OUT OF SYNC\s+SAMPLES\s+PEERS\s+DETAIL/);
    expect(text.stdout).toMatch(/suspended\s+warning\s+[\d.]+ s \.\. [\d.]+ s\s+4 \(256 KiB\)/);
    expect(text.stdout).toContain('no samples');
    expect(text.stdout).toMatch(/prepared\s+normal\s+0\.0 s\s+0 \(0 B\)/);
    const json = await alpha.cli(['session', 'history', 'hist', '--since', '1h', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const parsed = SessionHistorySchema.parse(JSON.parse(json.stdout));
    expect(Date.parse(parsed.to) - Date.parse(parsed.from)).toBe(3600_000);
    const bad = await alpha.cli(['session', 'history', 'hist', '--since', '5 weeks']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("'5 weeks' is not a duration");
  });

  it('an agent upgraded on an existing data dir adds the history to its catalog and keeps its sessions', async () => {
    await alpha.kill('SIGTERM');
    // The catalog as the release before the history left it (schema version 8): no history table, no audit log
    // (migration 11), no alerts (migration 12), no roles (migration 13), no journals (migration 14) and its copy sets in
    // `pairs` (migration 10 made `copy_sets` of them, see catalog-migration-v10-agents.test.ts).
    const db = new Database(dataDirPaths(alpha.dataDir).catalog);
    db.exec(`DROP TABLE session_history;
      DROP TABLE session_journals;
      DROP TABLE audit_log;
      DROP TABLE alerts;
      DROP TABLE alert_thresholds;
      DROP TABLE alert_settings;
      ALTER TABLE pairing_tokens DROP COLUMN role;
      ALTER TABLE clients DROP COLUMN role;
      ALTER TABLE clients DROP COLUMN narrowed_role;
      CREATE TABLE pairs (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        h1_volume TEXT NOT NULL,
        h2_volume TEXT NOT NULL,
        local_volume TEXT NOT NULL,
        local_site TEXT NOT NULL CHECK (local_site IN ('h1', 'h2')),
        out_of_sync_bitmap INTEGER,
        target_changed_bitmap INTEGER,
        created_at TEXT NOT NULL,
        joining INTEGER NOT NULL DEFAULT 0,
        local_volume_id INTEGER,
        broken_reason TEXT,
        broken_at TEXT
      );
      INSERT INTO pairs SELECT id, session_id, h1_volume, h2_volume, local_volume, local_site, out_of_sync_bitmap,
        target_changed_bitmap, created_at, joining, local_volume_id, broken_reason, broken_at FROM copy_sets;
      DROP TABLE copy_sets;`);
    db.pragma('user_version = 8');
    db.close();
    await alpha.restart({ samePorts: true });
    const restartedAt = Date.now();
    const session = await until('hist prepared on the upgraded catalog', async () => {
      const info = await show(alpha);
      return info.state === 'prepared' && info;
    });
    expect(session.pairs.map((pair) => `${pair.h1Volume}->${pair.h2Volume}`)).toEqual(['p-hist->c-hist']);
    const fresh = await historyWith(alpha, 'samples on the upgraded catalog', (points) => points.length >= 2, restartedAt - 60_000);
    expect(fresh.points.every((point) => Date.parse(point.time) >= restartedAt - 5000)).toBe(true);
    const check = new Database(dataDirPaths(alpha.dataDir).catalog, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(CATALOG_VERSION);
    check.close();
  });
});

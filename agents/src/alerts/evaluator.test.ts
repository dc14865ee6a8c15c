import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentEvent, PoolStats, SessionAlertThresholds, SessionInfo } from '@tandem/contract';
import type { SessionReader } from '../replication/session-reader.ts';
import type { SessionRecord } from '../replication/session-store.ts';
import { Catalog } from '../storage/catalog.ts';
import { AlertEvaluator, type AlertSources } from './evaluator.ts';
import { evaluateRules, poolUsedPercent } from './rules.ts';

const gib = 1024 ** 3;

function pool(usedBytes: number, freeBytes: number): PoolStats {
  const trackSize = 65536;
  const extents = Math.ceil(usedBytes / trackSize);
  return {
    trackSize,
    extentCount: extents,
    usedExtents: extents,
    freeExtents: 0,
    sharedExtents: 0,
    usedBytes: extents * trackSize,
    provisionedBytes: 0,
    fileBytes: 0,
    filesystemFreeBytes: freeBytes,
    volumes: 0,
    snapshots: 0,
  };
}

function sessionInfo(overrides: Partial<SessionInfo> = {}): SessionInfo {
  return {
    id: 's1',
    name: 'gold',
    type: 'sync',
    state: 'prepared',
    health: 'normal',
    direction: 'h1-h2',
    recoverable: true,
    role: 'h1',
    h1Site: 'alpha',
    h2Site: 'beta',
    consistencyTime: null,
    exposureSeconds: 0,
    detail: null,
    pairs: [],
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    observedAt: '2026-01-01T00:00:00.000Z',
    stateFrom: { site: 'alpha', at: '2026-01-01T00:00:00.000Z' },
    peers: [{ site: 'beta', role: 'target', link: 'connected', since: '2026-01-01T00:00:00.000Z', unreachableSince: null }],
    ...overrides,
  };
}

const defaults: SessionAlertThresholds = { rpoTargetSeconds: null, linkDownSeconds: 30, backlogPercent: 80, enabled: true };

describe('alert rules', () => {
  it('pool-full raises at the threshold and holds until 5 points under it', () => {
    const at = (percent: number) => pool(percent * gib, (100 - percent) * gib);
    expect(Math.round(poolUsedPercent(at(91)))).toBe(91);
    const rules = (percent: number, active: string[]) =>
      evaluateRules({ now: Date.now(), sessions: [], pool: at(percent), poolFullPercent: 90, active: new Set(active) }).map((condition) => condition.key);
    expect(rules(89, [])).toEqual([]);
    expect(rules(91, [])).toEqual(['pool-full']);
    expect(rules(87, ['pool-full'])).toEqual(['pool-full']);
    expect(rules(84, ['pool-full'])).toEqual([]);
  });

  it('exposure only with an RPO target, held until under 90 % of it; link down only past its seconds', () => {
    const now = Date.parse('2026-01-01T00:01:00.000Z');
    const down = sessionInfo({
      exposureSeconds: 9.5,
      peers: [{ site: 'beta', role: 'target', link: 'down', since: '2026-01-01T00:00:40.000Z', unreachableSince: '2026-01-01T00:00:40.000Z' }],
    });
    const keys = (thresholds: SessionAlertThresholds, active: string[] = []) =>
      evaluateRules({ now, sessions: [{ info: down, thresholds, backlog: undefined }], pool: null, poolFullPercent: 90, active: new Set(active) }).map((c) => c.key);
    expect(keys(defaults)).toEqual([]); // down 20 s of 30, no RPO target
    expect(keys({ ...defaults, linkDownSeconds: 10 })).toEqual(['link-down:gold:beta']);
    expect(keys({ ...defaults, rpoTargetSeconds: 5 })).toEqual(['exposure:gold']);
    expect(keys({ ...defaults, rpoTargetSeconds: 10 })).toEqual([]);
    expect(keys({ ...defaults, rpoTargetSeconds: 10 }, ['exposure:gold'])).toEqual(['exposure:gold']);
    expect(keys({ ...defaults, linkDownSeconds: 10, enabled: false })).toEqual([]);
    // Active: held while the link is down, whatever its "down since" says (it starts anew when the agent restarts).
    expect(keys(defaults, ['link-down:gold:beta'])).toEqual(['link-down:gold:beta']);
  });

  it('suspended, broken copy sets, verify differences and backlog', () => {
    const info = sessionInfo({
      state: 'suspended',
      detail: 'link lost',
      pairs: [
        {
          id: 'p1', h1Volume: 'a', h2Volume: 'b', state: 'failed', reason: 'volume deleted', outOfSyncTracks: 0, targetChangedTracks: 0,
          trackCount: 16, trackSize: 65536, syncedPercent: null, etaSeconds: null,
        },
      ],
      lastVerify: {
        startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:00:01.000Z', trigger: 'request', comparedTracks: 16,
        differingTracks: 2, unverifiedTracks: 0, ok: false, resyncStarted: true,
      },
    });
    const found = evaluateRules({
      now: Date.now(),
      sessions: [{ info, thresholds: defaults, backlog: { bytes: 85, limitBytes: 100 } }],
      pool: null,
      poolFullPercent: 90,
      active: new Set(),
    });
    expect(found.map((c) => [c.key, c.severity])).toEqual([
      ['session-suspended:gold', 'critical'],
      ['copy-set-failed:gold:p1', 'critical'],
      ['verify-differences:gold', 'warning'],
      ['backlog:gold', 'warning'],
    ]);
    expect(found[0].message).toBe('session gold is suspended: link lost');
  });
});

describe('alert evaluator', () => {
  let dir: string;
  let catalog: Catalog;
  let info: SessionInfo;
  let events: AgentEvent[];
  /** The evaluators' clock (ms): moved by the tests, never by waiting. */
  let clock = Date.parse('2026-12-07T12:00:00Z');
  const record = { id: 's1', name: 'gold' } as SessionRecord;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-alerts-'));
    catalog = new Catalog(path.join(dir, 'catalog.db'));
    catalog.db.prepare("INSERT INTO sessions (id, name, type, control_agent_id, peer_agent_id, state, direction, created_at, updated_at) VALUES ('s1', 'gold', 'sync', 'A', 'B', 'prepared', 'h1-h2', 'x', 'x')").run();
    info = sessionInfo();
    events = [];
    catalog.events.on('event', (event: AgentEvent) => events.push(event));
  });
  afterEach(async () => {
    catalog.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  function evaluator(clearAfterMs: number): AlertEvaluator {
    const sessions = { sessions: new Map([['s1', record]]), info: () => info } as unknown as SessionReader;
    const sources: AlertSources = {
      agent: () => ({ site: 'alpha', agentId: 'A', version: '0', trackSize: 65536, startedAt: 'x', apiAddress: '', nbdAddress: null, nbdSocket: null, certificateFingerprint: '' }),
      sessions,
      pool: async () => pool(gib, 100 * gib),
      backlog: () => undefined,
    };
    return new AlertEvaluator(catalog, sources, pino({ level: 'silent' }), { intervalMs: 60_000, clearAfterMs, now: () => clock });
  }

  it('raises once, carries the alert through flapping shorter than the clear delay, clears after it', async () => {
    const alerts = evaluator(200);
    info = sessionInfo({ state: 'suspended' });
    await alerts.evaluate();
    const raised = alerts.list({ recent: 10 }).active;
    expect(raised.map((alert) => alert.key)).toEqual(['session-suspended:gold']);
    // Flapping: away, back, away again within the clear delay.
    info = sessionInfo();
    await alerts.evaluate();
    info = sessionInfo({ state: 'suspended' });
    await alerts.evaluate();
    info = sessionInfo();
    await alerts.evaluate();
    expect(alerts.list({ recent: 10 }).active.map((alert) => alert.id)).toEqual([raised[0].id]);
    expect(events.filter((event) => event.type === 'alert.raised')).toHaveLength(1);
    // The condition has been away since the evaluation above: just short of the delay it holds, at the delay it clears.
    clock += 199;
    await alerts.evaluate();
    expect(alerts.list({ recent: 10 }).active.map((alert) => alert.id)).toEqual([raised[0].id]);
    clock += 1;
    await alerts.evaluate();
    const list = alerts.list({ recent: 10 });
    expect(list.active).toEqual([]);
    expect(list.recent).toEqual([expect.objectContaining({ id: raised[0].id, clearedAt: expect.any(String) })]);
    expect(events.map((event) => event.type)).toEqual(['alert.raised', 'alert.cleared']);
    expect(events[0]).toMatchObject({ severity: 'error', subject: 'gold', data: { alert: { key: 'session-suspended:gold', clearedAt: null } } });
    expect(events[1]).toMatchObject({ severity: 'info', subject: 'gold' });
    await alerts.close();
  });

  it('an active alert survives a new evaluator on the same catalog (a restart) as the same alert', async () => {
    info = sessionInfo({ state: 'suspended' });
    const first = evaluator(200);
    await first.evaluate();
    const [alert] = first.list({ recent: 0 }).active;
    await first.close();
    const second = evaluator(200);
    await second.evaluate();
    expect(second.list({ recent: 0 }).active).toEqual([alert]);
    expect(events.filter((event) => event.type === 'alert.raised')).toHaveLength(1);
    await second.close();
  });

  it('session thresholds are stored per session and removed with it', () => {
    const alerts = evaluator(200);
    alerts.store.setOwnThresholds('s1', { linkDownSeconds: 5, rpoTargetSeconds: 60 });
    alerts.store.setOwnThresholds('s1', { rpoTargetSeconds: null });
    expect(alerts.store.ownThresholds('s1')).toEqual({ rpoTargetSeconds: null, linkDownSeconds: 5, backlogPercent: null, enabled: null });
    catalog.db.prepare("DELETE FROM sessions WHERE id = 's1'").run();
    expect(alerts.store.allOwnThresholds().size).toBe(0);
  });
});

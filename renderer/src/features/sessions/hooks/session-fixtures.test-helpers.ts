import type { ClusterInfo, PairInfo, SessionInfo } from '@tandem/contract';
import { liveReach, type SiteReach } from '../../../lib/site-reach.ts';
import type { SiteCluster } from './session-model.ts';
import { siteFixture } from '../../../test/fixtures.ts';

export const alpha = siteFixture({ id: 'agent-a', site: 'alpha', address: '127.0.0.1:7001' });
export const beta = siteFixture({ id: 'agent-b', site: 'beta', address: '127.0.0.1:7002' });

export function pairFixture(overrides: Partial<PairInfo> = {}): PairInfo {
  return {
    id: 'p1',
    h1Volume: 'db',
    h2Volume: 'db-copy',
    state: 'duplex',
    reason: null,
    outOfSyncTracks: 0,
    targetChangedTracks: 0,
    trackCount: 160,
    trackSize: 65536,
    syncedPercent: null,
    etaSeconds: null,
    ...overrides,
  };
}

export function sessionFixture(overrides: Partial<SessionInfo> = {}): SessionInfo {
  return {
    id: 's1',
    name: 'orders',
    type: 'sync',
    state: 'prepared',
    health: 'normal',
    direction: 'h1-h2',
    recoverable: true,
    role: 'h1',
    h1Site: 'alpha',
    h2Site: 'beta',
    consistencyTime: '2026-01-01T00:00:00.000Z',
    exposureSeconds: 0.5,
    detail: null,
    pairs: [pairFixture()],
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    observedAt: '2026-01-01T00:00:00.000Z',
    stateFrom: { site: 'alpha', at: '2026-01-01T00:00:00.000Z' },
    peers: [{ site: 'beta', role: 'target', link: 'connected', since: '2026-01-01T00:00:00.000Z', unreachableSince: null }],
    ...overrides,
  };
}

export function clusterFixture(name: string, sessions: SessionInfo[], overrides: Partial<ClusterInfo> = {}): ClusterInfo {
  return {
    name,
    processorSite: 'alpha',
    intervalSeconds: 2,
    timeoutSeconds: 6,
    health: 'normal',
    consistencyTime: '2026-01-01T00:00:00.000Z',
    exposureSeconds: 0.5,
    members: sessions.map((session) => ({
      session: session.name,
      sessionId: session.id,
      site: 'alpha',
      agentId: 'agent-a',
      local: true,
      status: 'reporting' as const,
      state: session.state,
      health: session.health,
      consistencyTime: session.consistencyTime,
      exposureSeconds: session.exposureSeconds,
      reportedAt: '2026-01-01T00:00:00.000Z',
      detail: null,
    })),
    consolidatedAt: '2026-01-01T00:00:00.000Z',
    masterDataSet: { lastSequence: 3, records: 3, bytes: 300 },
    createdAt: '2026-01-01T00:00:00.000Z',
    ...overrides,
  };
}

/** A cluster as read from its processor's site (alpha, live unless `reach` says otherwise). */
export function siteClusterFixture(cluster: ClusterInfo, reach: SiteReach = liveReach, receivedAt = Date.now()): SiteCluster {
  return { cluster, siteId: 'agent-a', siteName: cluster.processorSite, receivedAt, reach };
}

import type { VolumeInfo } from '@tandem/contract';
import type { SiteSummary } from '../../../main/src/shared/console-api.ts';

export function siteFixture(overrides: Partial<SiteSummary> = {}): SiteSummary {
  return {
    id: 'agent-1',
    site: 'primary',
    address: '127.0.0.1:7450',
    certificateFingerprint: 'AA:BB',
    addedAt: '2026-01-01T00:00:00.000Z',
    connection: { state: 'connected', since: '2026-01-01T00:00:00.000Z', lastProblem: null, nextAttemptAt: null },
    agent: null,
    role: 'administrator',
    ...overrides,
  };
}

export function volumeFixture(name: string, overrides: Partial<VolumeInfo> = {}): VolumeInfo {
  return {
    id: 1,
    name,
    kind: 'volume',
    source: null,
    sizeBytes: 1024 ** 3,
    trackSize: 65536,
    trackCount: 16384,
    allocatedBytes: 0,
    sharedBytes: 0,
    exclusiveBytes: 0,
    snapshots: [],
    readOnly: false,
    createdAt: '2026-01-01T00:00:00.000Z',
    ...overrides,
  };
}

import type { FlashPairInfo, FlashSessionInfo } from '@tandem/contract';

export function flashPairFixture(overrides: Partial<FlashPairInfo> = {}): FlashPairInfo {
  return {
    id: 'fp1',
    source: 'db',
    target: 'db-pit',
    state: 'copying',
    trackSize: 65536,
    totalTracks: 16384,
    copiedTracks: 4096,
    percent: 25,
    changedTracks: null,
    mirror: 'none',
    remoteTarget: null,
    reason: null,
    ...overrides,
  };
}

export function flashSessionFixture(overrides: Partial<FlashSessionInfo> = {}): FlashSessionInfo {
  return {
    name: 'nightly',
    state: 'copying',
    options: { backgroundCopy: true, rateMiBps: null, incremental: false, writeInhibitTarget: false, preserveMirror: false },
    coordinated: false,
    pairs: [flashPairFixture()],
    pointInTime: '2026-01-01T00:00:00.000Z',
    holdMs: 1.5,
    copyBytesPerSecond: 64 * 1024 * 1024,
    etaSeconds: 12,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...overrides,
  };
}

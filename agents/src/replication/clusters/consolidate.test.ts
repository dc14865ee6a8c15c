import { describe, expect, it } from 'vitest';
import type { SessionHealth } from '@tandem/contract';
import { consolidate, type MemberReport, type MemberView } from './consolidate.ts';

const NOW = Date.parse('2026-01-01T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

function member(
  name: string,
  report: Partial<MemberReport> | null,
  options: { local?: boolean; lastError?: string } = {},
): MemberView {
  return {
    definition: { sessionId: `id-${name}`, session: name, agentId: 'agent', site: 'alpha', local: options.local ?? true },
    last:
      report === null
        ? null
        : {
            state: 'prepared',
            health: 'normal',
            consistencyTime: iso(NOW - 1000),
            exposureSeconds: 0,
            detail: null,
            receivedAt: NOW - 1000,
            ...report,
          },
    lastError: options.lastError ?? null,
  };
}

describe('consolidation', () => {
  it('takes the minimum consistency time and the largest exposure, aged to now', () => {
    const result = consolidate(
      [
        member('a', { consistencyTime: iso(NOW - 500), exposureSeconds: 0, receivedAt: NOW - 500 }),
        member('b', { state: 'suspended', health: 'warning', consistencyTime: iso(NOW - 60_000), exposureSeconds: 59, receivedAt: NOW - 1000 }),
        member('c', { consistencyTime: iso(NOW - 2000), exposureSeconds: 1, receivedAt: NOW - 1000 }),
      ],
      NOW,
      3000,
    );
    expect(result.consistencyTime).toBe(iso(NOW - 60_000));
    expect(result.exposureSeconds).toBe(60);
    expect(result.members.map((m) => m.exposureSeconds)).toEqual([0.5, 60, 2]);
    expect(result.health).toBe('warning');
  });

  it('has no consistency time or exposure while a member has none', () => {
    const result = consolidate(
      [member('a', {}), member('b', { state: 'defined', health: 'inactive', consistencyTime: null, exposureSeconds: null })],
      NOW,
      3000,
    );
    expect(result.consistencyTime).toBeNull();
    expect(result.exposureSeconds).toBeNull();
    expect(result.health).toBe('normal');
  });

  it.each<[SessionHealth[], SessionHealth]>([
    [['inactive', 'inactive'], 'inactive'],
    [['inactive', 'normal'], 'normal'],
    [['normal', 'warning', 'inactive'], 'warning'],
    [['warning', 'severe', 'normal'], 'severe'],
    [['severe', 'inactive'], 'severe'],
  ])('health of %j is %s (the worst)', (healths, expected) => {
    const views = healths.map((health, i) => member(`m${i}`, { health }));
    expect(consolidate(views, NOW, 3000).health).toBe(expected);
  });

  it('shows a member silent for longer than the timeout as unknown, and the cluster at least warning', () => {
    const fresh = member('a', { receivedAt: NOW - 2999 });
    const silent = member('b', { receivedAt: NOW - 3001, consistencyTime: iso(NOW - 3001), exposureSeconds: 0 }, { local: false, lastError: 'beta does not answer: timeout' });
    const result = consolidate([fresh, silent], NOW, 3000);
    expect(result.members.map((m) => [m.session, m.status, m.state, m.health])).toEqual([
      ['a', 'reporting', 'prepared', 'normal'],
      ['b', 'unknown', 'unknown', 'unknown'],
    ]);
    expect(result.members[1].detail).toBe('beta does not answer: timeout');
    expect(result.health).toBe('warning');
    // Its last known consistency time still bounds the cluster's, and its exposure keeps growing.
    expect(result.consistencyTime).toBe(iso(NOW - 3001));
    expect(result.exposureSeconds).toBe(3.001);
    // A severe member stays severe next to an unknown one.
    expect(consolidate([member('c', { health: 'severe' }), silent], NOW, 3000).health).toBe('severe');
  });

  it('shows a member that never reported as unknown', () => {
    const result = consolidate([member('a', {}), member('b', null)], NOW, 3000);
    expect(result.members[1]).toMatchObject({ status: 'unknown', state: 'unknown', reportedAt: null, consistencyTime: null });
    expect(result.health).toBe('warning');
    expect(result.consistencyTime).toBeNull();
  });

  it('is inactive with no members', () => {
    expect(consolidate([], NOW, 3000)).toEqual({ health: 'inactive', consistencyTime: null, exposureSeconds: null, members: [] });
  });
});

import { describe, expect, it } from 'vitest';
import { volumeFixture } from '../../../test/fixtures.ts';
import { sessionFixture } from '../../sessions/hooks/session-fixtures.test-helpers.ts';
import {
  availableFlashActions,
  canChangeRate,
  defaultDraft,
  draftProblems,
  establishRequest,
  flashActionPlan,
  mirrorUse,
  sourceChoices,
  sourceRefusal,
  targetChoices,
  volumeFlashRoles,
} from './flash-model.ts';
import { flashPairFixture, flashSessionFixture } from './flash-fixtures.test-helpers.ts';

const gib = 1024 ** 3;
const volumes = [
  volumeFixture('db', { sizeBytes: gib }),
  volumeFixture('db-pit', { sizeBytes: gib }),
  volumeFixture('spare', { sizeBytes: gib }),
  volumeFixture('big', { sizeBytes: 2 * gib }),
  volumeFixture('db.snap', { sizeBytes: gib, kind: 'snapshot', source: 'db' }),
  volumeFixture('frozen', { sizeBytes: gib, readOnly: true }),
  volumeFixture('mirror-copy', { sizeBytes: gib }),
  volumeFixture('logs', { sizeBytes: gib }),
];
const noMirror = mirrorUse([]);

describe('targetChoices', () => {
  it('offers only writable volumes of the same size that are no copy target, and says why the others are not offered', () => {
    const roles = volumeFlashRoles([flashSessionFixture()]);
    const mirror = mirrorUse([sessionFixture({ role: 'h2', pairs: [{ ...sessionFixture().pairs[0], h1Volume: 'x', h2Volume: 'mirror-copy' }] })]);
    const { offered, refused } = targetChoices(volumes[0], volumes, roles, mirror, []);
    expect(offered.map((volume) => volume.name)).toEqual(['spare', 'logs']);
    expect(Object.fromEntries(refused.map(({ volume, reason }) => [volume.name, reason]))).toEqual({
      'db-pit': 'already the target of db in flash session nightly',
      big: '2 GiB, not 1 GiB',
      'db.snap': 'a snapshot',
      frozen: 'read-only',
      'mirror-copy': 'the mirror copy of session orders',
    });
  });

  it('never offers the source itself, nor a volume already used by another pair of the group', () => {
    const group = [{ source: 'logs', target: 'spare' }];
    const { offered, refused } = targetChoices(volumes[0], volumes, new Map(), noMirror, group);
    expect(offered.map((volume) => volume.name)).toEqual(['db-pit', 'mirror-copy']);
    expect(refused.find((each) => each.volume.name === 'db')).toBeUndefined();
    expect(refused.find((each) => each.volume.name === 'spare')?.reason).toBe('already a target in this group');
    expect(refused.find((each) => each.volume.name === 'logs')?.reason).toBe('a source in this group');
    expect(sourceChoices(volumes, new Map(), group).map((volume) => volume.name)).not.toContain('spare');
    expect(sourceChoices(volumes, new Map(), group).map((volume) => volume.name)).not.toContain('logs');
  });

  it('follows the agent: a flash source is never a target, a flash target never a source', () => {
    const roles = volumeFlashRoles([flashSessionFixture()]);
    const { refused } = targetChoices(volumes[2], volumes, roles, noMirror, []);
    expect(refused.find((each) => each.volume.name === 'db')?.reason).toBe('the source of db-pit in flash session nightly');
    expect(sourceRefusal(volumes[1], roles)).toBe('the target of db in flash session nightly');
    expect(sourceRefusal(volumes[0], roles)).toBeNull();
    expect(sourceChoices(volumes, roles, []).map((volume) => volume.name)).toEqual(['db', 'spare', 'big', 'db.snap', 'frozen', 'mirror-copy', 'logs']);
  });

  it('treats a withdrawn session as holding no relationship', () => {
    for (const withdrawn of [flashSessionFixture({ state: 'stopped' }), flashSessionFixture({ state: 'idle-copied', withdrawnAt: '2026-01-01T01:00:00.000Z' })]) {
      const roles = volumeFlashRoles([withdrawn]);
      expect(roles.size).toBe(0);
      expect(targetChoices(volumes[0], volumes, roles, noMirror, []).offered.map((volume) => volume.name)).toContain('db-pit');
    }
  });

  it('tells mirrored primaries from mirror copies by role and direction', () => {
    const pair = { ...sessionFixture().pairs[0], h1Volume: 'db', h2Volume: 'db-copy' };
    expect(mirrorUse([sessionFixture({ role: 'h1', pairs: [pair] })]).mirroredPrimaries.get('db')).toBe('orders to beta');
    // After a failback the direction is reversed: the H1 volume receives.
    expect(mirrorUse([sessionFixture({ role: 'h1', direction: 'h2-h1', pairs: [pair] })]).mirrorTargets.get('db')).toBe('orders');
    expect(mirrorUse([sessionFixture({ role: 'h1', state: 'defined', pairs: [pair] })]).mirroredPrimaries.size).toBe(0);
  });
});

describe('draft validation', () => {
  const pairs = [{ source: 'db', target: 'spare' }];

  it('needs a pair, a valid name if any, and a positive rate when limited', () => {
    expect(draftProblems(defaultDraft)).toEqual({ pairs: 'choose a source and a target' });
    expect(draftProblems({ ...defaultDraft, pairs, name: 'bad name' }).name).toMatch(/letters, digits/);
    expect(draftProblems({ ...defaultDraft, pairs, rateLimited: true, rateMiBps: 0 }).rate).toMatch(/above zero/);
    expect(draftProblems({ ...defaultDraft, pairs, rateLimited: true, rateMiBps: '' }).rate).toMatch(/above zero/);
    expect(draftProblems({ ...defaultDraft, pairs, rateLimited: true, rateMiBps: 200_000 }).rate).toMatch(/at most/);
    // A rate is only read when the background copy is limited.
    expect(draftProblems({ ...defaultDraft, pairs, backgroundCopy: false, rateLimited: true, rateMiBps: 0 })).toEqual({});
  });

  it('builds the establish request: the rate only with a limited background copy, the name only when given', () => {
    expect(establishRequest({ ...defaultDraft, pairs, rateLimited: true, rateMiBps: 40, incremental: true })).toEqual({
      pairs,
      backgroundCopy: true,
      rateMiBps: 40,
      incremental: true,
      writeInhibitTarget: false,
      preserveMirror: false,
      holdTimeoutMs: 2000,
      coordinated: false,
    });
    expect(establishRequest({ ...defaultDraft, pairs, name: ' n1 ', backgroundCopy: false, rateLimited: true, rateMiBps: 40 })).toMatchObject({ name: 'n1', backgroundCopy: false, rateMiBps: null });
  });
});

describe('flash actions', () => {
  it('says what reverse overwrites, naming source and target', () => {
    const plan = flashActionPlan(flashSessionFixture({ pairs: [flashPairFixture(), flashPairFixture({ id: 'fp2', source: 'logs', target: 'logs-pit' })] }), 'reverse');
    expect(plan.consequences[0]).toMatch(/^Reverse restore overwrites source db with the point-in-time image in db-pit \(taken /);
    expect(plan.consequences[1]).toMatch(/^Reverse restore overwrites source logs with the point-in-time image in logs-pit/);
    expect(plan.warnings[0]).toContain('db and logs');
    expect(plan.confirm).toBe('acknowledge');
  });

  it('warns that withdrawing an unfinished copy leaves the target unusable, and not when it is complete', () => {
    expect(flashActionPlan(flashSessionFixture(), 'withdraw').consequences[1]).toContain('db-pit 25 %');
    const done = flashSessionFixture({ state: 'idle-copied', pairs: [flashPairFixture({ state: 'idle-copied', copiedTracks: 16384, percent: 100 })] });
    expect(flashActionPlan(done, 'withdraw').consequences[1]).toContain('db-pit keeps the full point-in-time image');
  });

  it('lets the rate change only while a background copy has something left to copy', () => {
    expect(canChangeRate(flashSessionFixture())).toBe(true);
    expect(canChangeRate(flashSessionFixture({ state: 'suspended' }))).toBe(true);
    expect(canChangeRate(flashSessionFixture({ options: { ...flashSessionFixture().options, backgroundCopy: false } }))).toBe(false);
    expect(canChangeRate(flashSessionFixture({ pairs: [flashPairFixture({ copiedTracks: 16384, percent: 100 })] }))).toBe(false);
    expect(canChangeRate(flashSessionFixture({ withdrawnAt: '2026-01-01T01:00:00.000Z' }))).toBe(false);
  });

  it('offers refresh only for incremental sessions and pause only while copying', () => {
    const labels = (session: Parameters<typeof availableFlashActions>[0]) => availableFlashActions(session).map((plan) => plan.action);
    expect(labels(flashSessionFixture())).toEqual(['pause', 'reverse', 'withdraw']);
    expect(labels(flashSessionFixture({ state: 'suspended', options: { ...flashSessionFixture().options, incremental: true } }))).toEqual(['refresh', 'resume', 'reverse', 'withdraw']);
    expect(labels(flashSessionFixture({ state: 'stopping' }))).toEqual([]);
    expect(labels(flashSessionFixture({ state: 'preparing' }))).toEqual([]);
    // A no-copy session can start its background copy instead of pausing one.
    expect(labels(flashSessionFixture({ options: { ...flashSessionFixture().options, backgroundCopy: false } }))).toEqual(['start-copy', 'reverse', 'withdraw']);
    // Withdrawn (kept until forgotten): only forget.
    expect(labels(flashSessionFixture({ state: 'idle-copied', withdrawnAt: '2026-01-01T01:00:00.000Z' }))).toEqual(['forget']);
    expect(labels(flashSessionFixture({ state: 'stopped', withdrawnAt: '2026-01-01T01:00:00.000Z' }))).toEqual(['forget']);
  });
});

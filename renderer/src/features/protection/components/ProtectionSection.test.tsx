import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { ImageAccessInfo, JournalPoint, JournalView } from '@tandem/contract';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { siteFixture } from '../../../test/fixtures.ts';
import { renderWithBackend, type FakeRoutes } from '../../../test/render.tsx';
import { journalRequest, pointStep } from '../hooks/use-journal.ts';
import { ProtectionSection } from './ProtectionSection.tsx';
import { GiB, journalViewFixture, pointFixture } from '../journal-fixtures.test-helpers.ts';

const base = '/api/sites/agent-2/sessions/gold';
const now = Date.now();
const point = (seq: number, agoSeconds: number, bookmark: string | null = null): JournalPoint => pointFixture(now, seq, agoSeconds, bookmark);
const view: JournalView = journalViewFixture(
  'gold',
  now,
  {
    usedBytes: 9.2 * GiB,
    requiredWindowSeconds: 24 * 3600,
    predictedWindowSeconds: 6.5 * 3600,
    warnings: [
      { level: 'severe', code: 'window-short', message: 'the journal holds about 27 % of the required window' },
      { level: 'warning', code: 'nearly-full', message: 'the journal holds 92 % of its budget' },
    ],
  },
  { requiredWindowSeconds: 24 * 3600 },
);
const points = { session: 'gold', points: [point(1, 6 * 3600), point(40, 3 * 3600, 'before-upgrade'), point(120, 1)] };
const image: ImageAccessInfo = {
  id: 3,
  session: 'gold',
  point: point(40, 3 * 3600, 'before-upgrade'),
  openedAt: new Date(now).toISOString(),
  exports: [{ volume: 'db-replica', export: 'image-3-db-replica' }],
  writtenBytes: 0,
};

/** Two paired sites: the primary and the session's secondary (agent-2), where the journal is. */
function sites(secondary: Partial<SiteSummary> = {}): FakeRoutes {
  return {
    'GET /api/sites': [200, { sites: [siteFixture({ id: 'agent-1', site: 'primary' }), siteFixture({ id: 'agent-2', site: 'secondary', ...secondary })] }],
  };
}
const section = <ProtectionSection session="gold" h2Site="secondary" viewSiteIds={['agent-1', 'agent-2']} />;
const bodyOf = (calls: string[], prefix: string) => {
  const call = calls.find((each) => each.startsWith(`${prefix} `));
  return call === undefined ? undefined : (JSON.parse(call.slice(prefix.length + 1)) as unknown);
};
const input = (testId: string) => screen.getByTestId(testId) as HTMLInputElement;

describe('journalRequest', () => {
  it('turns GiB, hours and days into the contract request and refuses what the schema refuses', () => {
    expect(journalRequest({ spaceGiB: 20, windowHours: 12, retentionDays: 7 })).toEqual({
      request: { budgetBytes: 20 * GiB, requiredWindowSeconds: 12 * 3600, bookmarkRetentionSeconds: 7 * 86_400 },
      errors: {},
    });
    expect(journalRequest({ spaceGiB: 1, windowHours: 1, retentionDays: '' }).request).toEqual({ budgetBytes: GiB, requiredWindowSeconds: 3600, bookmarkRetentionSeconds: null });
    const bad = journalRequest({ spaceGiB: 0, windowHours: '', retentionDays: -1 });
    expect(bad.request).toBeNull();
    expect(bad.errors).toEqual({ spaceGiB: 'must be above 0', windowHours: 'required', retentionDays: 'must be above 0' });
  });
});

describe('pointStep', () => {
  it('keeps the timeline to about 200 ticks with a few fixed steps', () => {
    expect(pointStep(0)).toBe(60);
    expect(pointStep(3600)).toBe(60);
    expect(pointStep(6 * 3600)).toBe(300);
    expect(pointStep(7 * 86_400)).toBe(3600);
    expect(pointStep(400 * 86_400)).toBe(86_400);
  });
});

describe('ProtectionSection', () => {
  it('without a journal: "Protect with a journal…" sends the PUT the form stands for', async () => {
    const calls: string[] = [];
    renderWithBackend(section, { ...sites(), [`GET ${base}/journal`]: [404, { problem: 'not-found', message: 'session gold has no journal' }], [`PUT ${base}/journal`]: [200, view] }, calls);
    fireEvent.click(await screen.findByRole('button', { name: 'Protect with a journal…' }));
    fireEvent.change(input('journal-space'), { target: { value: '0' } });
    expect(await screen.findByText('must be above 0')).toBeInTheDocument();
    expect(screen.getByTestId('journal-save')).toBeDisabled();
    fireEvent.change(input('journal-space'), { target: { value: '20' } });
    fireEvent.change(input('journal-window'), { target: { value: '12' } });
    fireEvent.change(input('journal-retention'), { target: { value: '7' } });
    await waitFor(() => expect(screen.getByTestId('journal-save')).not.toBeDisabled());
    fireEvent.click(screen.getByTestId('journal-save'));
    await waitFor(() => expect(bodyOf(calls, `PUT ${base}/journal`)).toEqual({ budgetBytes: 20 * GiB, requiredWindowSeconds: 12 * 3600, bookmarkRetentionSeconds: 7 * 86_400 }));
  });

  it('shows the agent\'s refusal of the journal with its problem code', async () => {
    renderWithBackend(section, {
      ...sites(),
      [`GET ${base}/journal`]: [404, { problem: 'not-found', message: 'session gold has no journal' }],
      [`PUT ${base}/journal`]: [400, { problem: 'invalid-size', message: 'the pool cannot hold a journal of 10 GiB' }],
    });
    fireEvent.click(await screen.findByRole('button', { name: 'Protect with a journal…' }));
    fireEvent.click(await screen.findByTestId('journal-save'));
    expect(await screen.findByText('the pool cannot hold a journal of 10 GiB')).toBeInTheDocument();
    expect(screen.getByTestId('problem')).toHaveTextContent('invalid-size');
    expect(screen.getByTestId('journal-form')).toBeInTheDocument();
  });

  it('with a journal: the window covered of the required one, space used of the budget, the warnings in their colours, the bookmarks', async () => {
    const calls: string[] = [];
    renderWithBackend(section, { ...sites(), [`GET ${base}/journal`]: [200, view], [`GET ${base}/journal/points`]: [200, points] }, calls);
    expect(await screen.findByTestId('journal-window-covered')).toHaveTextContent('6 h covered of 24 h required');
    expect(screen.getByTestId('journal-space-used')).toHaveTextContent('9.2 GiB of 10 GiB (92 %)');
    expect(screen.getByTestId('journal-warning-window-short')).toHaveTextContent('the journal holds about 27 % of the required window');
    expect(screen.getByTestId('journal-warning-window-short').getAttribute('data-color')).toBe('red');
    expect(screen.getByTestId('journal-warning-nearly-full').getAttribute('data-color')).toBe('orange');
    expect(await screen.findByTestId('bookmark-before-upgrade')).toBeInTheDocument();
    expect(screen.getAllByTestId('timeline-bookmark')).toHaveLength(1);
    // 6 h covered: one tick per 5 min at most (72), every bookmark.
    expect(calls).toContain(`GET ${base}/journal/points?every=300`);
    expect(calls.some((call) => call.includes('/api/sites/agent-1/'))).toBe(false);
  });

  it('"Bookmark…" sends the POST with the name', async () => {
    const calls: string[] = [];
    renderWithBackend(section, { ...sites({ role: 'operator' }), [`GET ${base}/journal`]: [200, view], [`GET ${base}/journal/points`]: [200, points], [`POST ${base}/journal/bookmarks`]: [201, point(121, 0, 'pre-migration')] }, calls);
    fireEvent.click(await screen.findByRole('button', { name: 'Bookmark…' }));
    expect(screen.getByTestId('bookmark-save')).toBeDisabled();
    fireEvent.change(input('bookmark-name'), { target: { value: 'pre-migration' } });
    fireEvent.click(screen.getByTestId('bookmark-save'));
    await waitFor(() => expect(bodyOf(calls, `POST ${base}/journal/bookmarks`)).toEqual({ name: 'pre-migration' }));
    // An operator bookmarks and opens images; settings and turning off are the administrator's.
    expect(screen.getByRole('button', { name: 'Journal settings…' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Turn off…' }).closest('[data-testid="role-gated"]')?.getAttribute('aria-label')).toBe(
      'Needs the administrator role; this console is paired with secondary as operator.',
    );
  });

  it('"Open image…" at a bookmark opens it, shows the export names for hosts, and "End access" sends the DELETE', async () => {
    const calls: string[] = [];
    const routes: FakeRoutes = {
      ...sites(),
      [`GET ${base}/journal`]: [200, view],
      [`GET ${base}/journal/points`]: [200, points],
      [`POST ${base}/images`]: [201, image],
      [`DELETE ${base}/images/3`]: [204, undefined],
    };
    renderWithBackend(section, routes, calls);
    const row = await screen.findByTestId('bookmark-before-upgrade');
    // From now on the agent lists the image as open.
    routes[`GET ${base}/journal`] = [200, { ...view, images: [image] }];
    fireEvent.click(within(row).getByRole('button', { name: 'Open image…' }));
    fireEvent.click(await screen.findByTestId('image-open'));
    await waitFor(() => expect(bodyOf(calls, `POST ${base}/images`)).toEqual({ bookmark: 'before-upgrade' }));
    const modal = await screen.findByRole('dialog');
    expect(await within(modal).findByText('image-3-db-replica')).toBeInTheDocument();
    fireEvent.click(within(modal).getByRole('button', { name: 'End access' }));
    await waitFor(() => expect(calls).toContain(`DELETE ${base}/images/3`));
    // The section lists the open image too.
    expect(within(screen.getByTestId('journal-images')).getByText('image-3-db-replica')).toBeInTheDocument();
  });

  it('"Turn off…" says what is lost and sends the DELETE only once confirmed', async () => {
    const calls: string[] = [];
    renderWithBackend(section, { ...sites(), [`GET ${base}/journal`]: [200, view], [`GET ${base}/journal/points`]: [200, points], [`DELETE ${base}/journal`]: [204, undefined] }, calls);
    fireEvent.click(await screen.findByRole('button', { name: 'Turn off…' }));
    expect(screen.getByTestId('journal-off-warning')).toHaveTextContent('Every point in time and every bookmark (120 points, 1 bookmark) is lost');
    expect(calls).not.toContain(`DELETE ${base}/journal`);
    fireEvent.click(screen.getByTestId('journal-off-confirm'));
    await waitFor(() => expect(calls).toContain(`DELETE ${base}/journal`));
  });

  it('a monitor sees the journal and no buttons, with the reason', async () => {
    renderWithBackend(section, { ...sites({ role: 'monitor' }), [`GET ${base}/journal`]: [200, view], [`GET ${base}/journal/points`]: [200, points] });
    expect(await screen.findByTestId('journal-window-covered')).toBeInTheDocument();
    await screen.findByTestId('bookmark-before-upgrade');
    expect(screen.getByTestId('role-note')).toHaveTextContent('Journal actions (protect, bookmark, image access, settings) are not offered. Needs the operator role; this console is paired with secondary as monitor.');
    expect(within(screen.getByTestId('protection-section')).queryAllByRole('button')).toHaveLength(0);
  });

  it('a monitor without a journal gets no "Protect with a journal…" either', async () => {
    renderWithBackend(section, { ...sites({ role: 'monitor' }), [`GET ${base}/journal`]: [404, { problem: 'not-found', message: 'no journal' }] });
    expect(await screen.findByTestId('protection-none')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Protect with a journal…' })).toBeNull();
    expect(screen.getByTestId('role-note')).toHaveTextContent('Needs the operator role');
  });

  it('a secondary the console does not reach: the journal state is unknown and nothing is fetched', async () => {
    const calls: string[] = [];
    renderWithBackend(
      section,
      {
        ...sites({ connection: { state: 'reconnecting', since: '2026-01-01T00:00:00.000Z', lastProblem: { problem: 'agent-unreachable', message: 'connect ECONNREFUSED' }, nextAttemptAt: null } }),
        [`GET ${base}/journal`]: [200, view],
      },
      calls,
    );
    expect(await screen.findByTestId('protection-unknown')).toHaveTextContent('Journal state unknown: the console does not reach secondary');
    expect(screen.queryByTestId('journal-window-covered')).toBeNull();
    expect(calls.some((call) => call.includes('/journal'))).toBe(false);
  });

  it('a journal that was shown and then cannot be read: unknown, not the old numbers', async () => {
    const routes: FakeRoutes = { ...sites(), [`GET ${base}/journal`]: [200, view], [`GET ${base}/journal/points`]: [200, points] };
    const { queryClient } = renderWithBackend(section, routes);
    await screen.findByTestId('journal-window-covered');
    routes[`GET ${base}/journal`] = [502, { problem: 'agent-unreachable', message: 'the agent at secondary does not answer' }];
    await queryClient.invalidateQueries();
    expect(await screen.findByTestId('protection-unknown')).toHaveTextContent('Journal state unknown');
    expect(screen.queryByTestId('journal-window-covered')).toBeNull();
    expect(screen.queryByTestId('journal-space-used')).toBeNull();
    expect(screen.getByTestId('problem')).toHaveTextContent('agent-unreachable');
  });
});

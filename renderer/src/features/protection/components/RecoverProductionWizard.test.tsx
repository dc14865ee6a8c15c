import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import type { FailbackPreflight, JournalPoint, JournalView } from '@tandem/contract';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { siteFixture } from '../../../test/fixtures.ts';
import { renderWithBackend, type FakeRoutes } from '../../../test/render.tsx';
import { pairFixture, sessionFixture } from '../../sessions/hooks/session-fixtures.test-helpers.ts';
import { ProtectionSection, type RecoverOffer } from './ProtectionSection.tsx';
import { recoverChoice } from './RecoverProductionWizard.tsx';
import { journalViewFixture, pointFixture } from '../journal-fixtures.test-helpers.ts';

const base = '/api/sites/agent-2/sessions/gold';
const now = Date.now();
const point = (seq: number, agoSeconds: number, bookmark: string | null = null): JournalPoint => pointFixture(now, seq, agoSeconds, bookmark);
const view: JournalView = journalViewFixture('gold', now);
const points = { session: 'gold', points: [point(1, 6 * 3600), point(40, 3 * 3600, 'before-upgrade'), point(120, 1)] };
const pair = pairFixture({ id: 'p1', h1Volume: 'db', h2Volume: 'db-replica' });
const preflight: FailbackPreflight = {
  session: 'gold',
  pairs: [{ pair: 'p1', h1Volume: 'db', targetChangedTracks: 37, outOfSyncTracks: 0, candidateTracks: 37, differingTracks: 37, codesComputed: 74 }],
  tracksToCopy: 37,
  bytesToCopy: 37 * 65536,
  estimatedSeconds: 1,
  verifyCodes: true,
  fullCompare: false,
};

function routes(secondary: Partial<SiteSummary> = {}): FakeRoutes {
  return {
    'GET /api/sites': [200, { sites: [siteFixture({ id: 'agent-1', site: 'primary' }), siteFixture({ id: 'agent-2', site: 'secondary', ...secondary })] }],
    [`GET ${base}/journal`]: [200, view],
    [`GET ${base}/journal/points`]: [200, points],
  };
}
const section = (recover: RecoverOffer) => <ProtectionSection session="gold" h2Site="secondary" viewSiteIds={['agent-1', 'agent-2']} recover={recover} />;
const bodyOf = (calls: string[], prefix: string) => {
  const call = calls.find((each) => each.startsWith(`${prefix} `));
  return call === undefined ? undefined : (JSON.parse(call.slice(prefix.length + 1)) as unknown);
};

describe('recoverChoice', () => {
  it('turns a bookmark, a point or a local time into the one field of the recover body', () => {
    expect(recoverChoice('bookmark', 'good')).toEqual({ options: { bookmark: 'good' }, words: 'bookmark good' });
    expect(recoverChoice('point', '40')).toEqual({ options: { seq: 40 }, words: 'point 40' });
    const time = recoverChoice('time', '2026-12-07T23:30:00');
    expect('options' in time && time.options).toEqual({ at: new Date('2026-12-07T23:30:00').toISOString() });
    expect(recoverChoice('time', 'yesterday')).toEqual({ error: 'not a time' });
    expect(recoverChoice('bookmark', '')).toEqual({ error: 'choose a bookmark' });
  });
});

describe('RecoverProductionWizard', () => {
  it('recovers at a bookmark: says what happens, sends the bookmark, waits for target-available, shows the failback preflight and opens the failback', async () => {
    const calls: string[] = [];
    const onFailback = vi.fn();
    const fake: FakeRoutes = {
      ...routes({ role: 'operator' }),
      [`POST ${base}/actions/recover`]: [200, sessionFixture({ name: 'gold', state: 'recovering', pairs: [pair] })],
      [`GET ${base}`]: [200, sessionFixture({ name: 'gold', state: 'recovering', pairs: [pair] })],
      [`GET ${base}/failback-preflight`]: [200, preflight],
    };
    renderWithBackend(section({ allowed: true, primarySites: 'primary', onFailback }), fake, calls);
    const row = await screen.findByTestId('bookmark-before-upgrade');
    fireEvent.click(within(row).getByRole('button', { name: 'Recover to here…' }));
    const dialog = await screen.findByRole('dialog');
    expect((within(dialog).getByTestId('recover-bookmark') as HTMLSelectElement).value).toBe('before-upgrade');
    expect(within(dialog).getByTestId('timeline-selected').getAttribute('aria-label')).toBe('chosen point 40');
    fireEvent.click(within(dialog).getByTestId('recover-next'));

    const consequence = within(dialog).getByTestId('recover-consequence');
    expect(consequence).toHaveTextContent('The replica volumes at secondary (db-replica) are rolled back to that point');
    expect(consequence).toHaveTextContent('The journal ends: its 120 points and 1 bookmark are gone');
    expect(consequence).toHaveTextContent('hosts may write at secondary from now on');
    expect(consequence).toHaveTextContent('marked for the failback');
    expect(within(dialog).getByText("Roll secondary's replica of gold back to bookmark before-upgrade?")).toBeInTheDocument();
    // Nothing is sent before the acknowledgement.
    expect(within(dialog).getByTestId('recover-start')).toBeDisabled();
    fireEvent.click(within(dialog).getByTestId('recover-acknowledge'));
    fireEvent.click(within(dialog).getByTestId('recover-start'));
    await waitFor(() => expect(bodyOf(calls, `POST ${base}/actions/recover`)).toEqual({ bookmark: 'before-upgrade' }));

    // Recovering at first: no preflight asked yet; then target-available.
    expect(await within(dialog).findByText(/waiting for secondary to report the session target-available/)).toBeInTheDocument();
    expect(calls.some((call) => call.startsWith(`GET ${base}/failback-preflight`))).toBe(false);
    expect(within(dialog).getByTestId('recover-failback')).toBeDisabled();
    fake[`GET ${base}`] = [200, sessionFixture({ name: 'gold', state: 'target-available', pairs: [pair] })];
    expect(await within(dialog).findByTestId('preflight-tracks-to-copy', {}, { timeout: 4000 })).toHaveTextContent('37 tracks to copy');
    expect(calls).toContain(`GET ${base}/failback-preflight?verifyCodes=true&fullCompare=false`);
    expect(within(dialog).getByTestId('recover-done')).toHaveTextContent('Recovered at bookmark before-upgrade: secondary holds the image of that point and takes host writes');
    fireEvent.click(within(dialog).getByTestId('recover-failback'));
    expect(onFailback).toHaveBeenCalledTimes(1);
  });

  it('a point picked on the timeline list and a time each send their own field', async () => {
    const calls: string[] = [];
    renderWithBackend(
      section({ allowed: true, primarySites: 'primary' }),
      { ...routes(), [`POST ${base}/actions/recover`]: [409, { problem: 'volume-busy', message: 'an image is in use' }] },
      calls,
    );
    fireEvent.click(await screen.findByTestId('recover-production'));
    const dialog = await screen.findByRole('dialog');
    fireEvent.click(within(dialog).getByText('Point on the timeline'));
    fireEvent.change(within(dialog).getByTestId('recover-seq'), { target: { value: '40' } });
    fireEvent.click(within(dialog).getByTestId('recover-next'));
    fireEvent.click(within(dialog).getByTestId('recover-acknowledge'));
    fireEvent.click(within(dialog).getByTestId('recover-start'));
    await waitFor(() => expect(bodyOf(calls, `POST ${base}/actions/recover`)).toEqual({ seq: 40 }));
    fireEvent.click(await within(dialog).findByRole('button', { name: 'Back' }));
    fireEvent.click(within(dialog).getByText('Time'));
    fireEvent.change(within(dialog).getByTestId('recover-time'), { target: { value: '2026-12-07T23:30:15' } });
    fireEvent.click(within(dialog).getByTestId('recover-next'));
    fireEvent.click(within(dialog).getByTestId('recover-start'));
    await waitFor(() => expect(calls.filter((call) => call.startsWith(`POST ${base}/actions/recover`)).at(-1)).toBe(`POST ${base}/actions/recover ${JSON.stringify({ at: new Date('2026-12-07T23:30:15').toISOString() })}`));
  });

  it("shows the agent's refusal with its problem code and stays on the confirm step; nothing else is asked", async () => {
    const calls: string[] = [];
    renderWithBackend(
      section({ allowed: true, primarySites: 'primary' }),
      { ...routes(), [`POST ${base}/actions/recover`]: [409, { problem: 'volume-busy', message: 'image 3 of session gold is in use by 1 NBD client' }] },
      calls,
    );
    fireEvent.click(await screen.findByTestId('recover-production'));
    const dialog = await screen.findByRole('dialog');
    fireEvent.click(within(dialog).getByTestId('recover-next'));
    fireEvent.click(within(dialog).getByTestId('recover-acknowledge'));
    fireEvent.click(within(dialog).getByTestId('recover-start'));
    const problem = await within(dialog).findByTestId('problem');
    expect(problem).toHaveTextContent('image 3 of session gold is in use by 1 NBD client');
    expect(problem).toHaveTextContent('volume-busy');
    expect(problem).toHaveTextContent('Production was not recovered; nothing changed');
    expect(within(dialog).getByTestId('recover-consequence')).toBeInTheDocument();
    expect(within(dialog).queryByTestId('recover-done')).toBeNull();
    expect(calls.some((call) => call.startsWith(`GET ${base}/failback-preflight`) || call === `GET ${base}`)).toBe(false);
  });

  it('role and state rules: a monitor at the secondary and a session not recoverable get no recover', async () => {
    const monitor = renderWithBackend(section({ allowed: true, primarySites: 'primary' }), routes({ role: 'monitor' }));
    await screen.findByTestId('bookmark-before-upgrade');
    expect(screen.queryByTestId('recover-production')).toBeNull();
    expect(screen.queryByRole('button', { name: 'Recover to here…' })).toBeNull();
    expect(screen.getByTestId('role-note')).toHaveTextContent('Needs the operator role; this console is paired with secondary as monitor.');
    monitor.unmount();

    // Failed over already (target-available): nothing to recover; bookmarking still offered.
    renderWithBackend(section({ allowed: false, primarySites: 'primary' }), routes({ role: 'operator' }));
    await screen.findByTestId('bookmark-before-upgrade');
    expect(screen.getByRole('button', { name: 'Bookmark…' })).toBeInTheDocument();
    expect(screen.queryByTestId('recover-production')).toBeNull();
    expect(screen.queryByRole('button', { name: 'Recover to here…' })).toBeNull();
  });
});

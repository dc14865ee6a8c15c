import { fireEvent, screen, within } from '@testing-library/react';
import type { SessionInfo } from '@tandem/contract';
import { describe, expect, it } from 'vitest';
import { volumeFixture } from '../../../test/fixtures.ts';
import { renderWithBackend, type FakeRoutes } from '../../../test/render.tsx';
import { alpha, beta, pairFixture, sessionFixture } from '../hooks/session-fixtures.test-helpers.ts';
import { mergeSessions } from '../hooks/session-model.ts';
import { SessionCard } from './SessionCard.tsx';

const gib = 1024 ** 3;
const log = pairFixture({ id: 'p2', h1Volume: 'log', h2Volume: 'log-copy' });

/** The card of a session as both sites report it (the source's view is shown). */
function renderCard(session: SessionInfo, extra: FakeRoutes = {}, calls: string[] = []) {
  const [entry] = mergeSessions([
    { siteId: alpha.id, siteName: 'alpha', sessions: [session] },
    { siteId: beta.id, siteName: 'beta', sessions: [{ ...session, role: 'h2' }] },
  ]);
  renderWithBackend(
    <SessionCard entry={entry} />,
    {
      'GET /api/sites': [200, { sites: [alpha, beta] }],
      'GET /api/sites/agent-a/volumes': [200, { volumes: [volumeFixture('db', { sizeBytes: gib }), volumeFixture('log', { sizeBytes: gib }), volumeFixture('web', { sizeBytes: gib })] }],
      'GET /api/sites/agent-b/volumes': [
        200,
        { volumes: [volumeFixture('db-copy', { sizeBytes: gib }), volumeFixture('web-copy', { sizeBytes: gib }), volumeFixture('web-big', { sizeBytes: 2 * gib })] },
      ],
      ...extra,
    },
    calls,
  );
  return screen.getByTestId(`session-card-${session.name}`);
}

/** Buttons that act at the H1 site wait for the site list. */
async function clickWhenEnabled(button: HTMLElement) {
  await expect.poll(() => button.hasAttribute('disabled')).toBe(false);
  fireEvent.click(button);
}

const posts = (calls: string[]) => calls.filter((call) => !call.startsWith('GET'));

describe('SessionCard copy sets', () => {
  it('adds a copy set to a running session at its H1 site, offering only free volumes of the same size', async () => {
    const calls: string[] = [];
    // Failed back: beta is the source (its view is shown), but copy sets are added at alpha, the H1 site.
    const running = sessionFixture({ state: 'prepared', direction: 'h2-h1' });
    const card = renderCard(running, { 'POST /api/sites/agent-a/sessions/orders/pairs': [201, { ...running, pairs: [...running.pairs, log] }] }, calls);
    fireEvent.click(within(card).getByRole('button', { name: 'Add copy set…' }));
    const dialog = await screen.findByRole('dialog');
    const source = (await within(dialog).findByLabelText('Volume at alpha')) as HTMLSelectElement;
    expect([...source.options].map((option) => option.value)).toEqual(['', 'log', 'web']);
    fireEvent.change(source, { target: { value: 'web' } });
    const copy = within(dialog).getByLabelText('Copy at beta') as HTMLSelectElement;
    expect([...copy.options].map((option) => option.value)).toEqual(['', 'web-copy']);
    fireEvent.change(copy, { target: { value: 'web-copy' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Add copy set' }));
    expect(within(dialog).getByTestId('add-copy-set-consequence')).toHaveTextContent('starts copying at once');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Add to orders' }));
    await expect.poll(() => posts(calls)).toEqual(['POST /api/sites/agent-a/sessions/orders/pairs {"h1Volume":"web","h2Volume":"web-copy"}']);
    await expect.poll(() => screen.queryByRole('dialog')).toBeNull();
  });

  it('shows the agent refusing a copy set with its problem code and keeps the dialog open', async () => {
    const running = sessionFixture({ state: 'suspended' });
    const card = renderCard(running, {
      'POST /api/sites/agent-a/sessions/orders/pairs': [409, { problem: 'volume-busy', message: 'web is already in a copy set' }],
    });
    fireEvent.click(within(card).getByRole('button', { name: 'Add copy set…' }));
    const dialog = await screen.findByRole('dialog');
    fireEvent.change(await within(dialog).findByLabelText('Volume at alpha'), { target: { value: 'web' } });
    fireEvent.change(within(dialog).getByLabelText('Copy at beta'), { target: { value: 'web-copy' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Add copy set' }));
    fireEvent.click(within(dialog).getByRole('button', { name: 'Add to orders' }));
    const problem = await within(dialog).findByTestId('problem');
    expect(problem).toHaveTextContent('web is already in a copy set');
    expect(problem).toHaveTextContent('volume-busy');
  });

  it('confirms removing a copy set with what happens, then removes it by its H1 volume', async () => {
    const calls: string[] = [];
    const running = sessionFixture({ state: 'prepared', pairs: [pairFixture(), log] });
    const card = renderCard(running, { 'DELETE /api/sites/agent-a/sessions/orders/pairs/log': [204, undefined] }, calls);
    fireEvent.click(within(within(card).getByTestId('pair-row-log')).getByRole('button', { name: 'Remove copy set log' }));
    const dialog = await screen.findByRole('dialog');
    const consequence = within(dialog).getByTestId('remove-consequence');
    expect(consequence).toHaveTextContent('alpha:log stops being mirrored to beta:log-copy');
    expect(consequence).toHaveTextContent('its out-of-sync tracking at both sites is dropped');
    expect(consequence).toHaveTextContent('The other copy set keeps mirroring.');
    expect(posts(calls)).toEqual([]);
    await clickWhenEnabled(within(dialog).getByRole('button', { name: 'Remove copy set' }));
    await expect.poll(() => posts(calls)).toEqual(['DELETE /api/sites/agent-a/sessions/orders/pairs/log']);
  });

  it("shows the agent's refusal to remove the last copy set of a running session", async () => {
    const running = sessionFixture({ state: 'preparing' });
    const card = renderCard(running, {
      'DELETE /api/sites/agent-a/sessions/orders/pairs/db': [409, { problem: 'invalid-state', message: 'db is the last copy set of orders; terminate the session instead' }],
    });
    fireEvent.click(within(card).getByRole('button', { name: 'Remove copy set db' }));
    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByTestId('remove-consequence')).toHaveTextContent('It is the session’s only copy set.');
    await clickWhenEnabled(within(dialog).getByRole('button', { name: 'Remove copy set' }));
    const problem = await within(dialog).findByTestId('problem');
    expect(problem).toHaveTextContent('terminate the session instead');
    expect(problem).toHaveTextContent('invalid-state');
  });

  it('offers no copy-set changes while the session is failed over', () => {
    const card = renderCard(sessionFixture({ state: 'target-available' }));
    expect(within(card).queryByRole('button', { name: 'Add copy set…' })).toBeNull();
    expect(within(card).queryByRole('button', { name: /Remove copy set/ })).toBeNull();
  });

  it('adds a copy set whose primary is at another site to a running async session, sent to the H1 site with primaryAgent', async () => {
    const calls: string[] = [];
    const gamma = { ...alpha, id: 'agent-g', site: 'gamma', address: '127.0.0.1:7003' };
    const running = sessionFixture({ type: 'async', state: 'prepared', pairs: [pairFixture(), { ...log, primarySite: 'gamma' }] });
    const card = renderCard(
      running,
      {
        'GET /api/sites': [200, { sites: [alpha, beta, gamma] }],
        'GET /api/sites/agent-g/volumes': [200, { volumes: [volumeFixture('log', { sizeBytes: gib }), volumeFixture('web', { sizeBytes: gib })] }],
        'POST /api/sites/agent-a/sessions/orders/pairs': [201, running],
      },
      calls,
    );
    fireEvent.click(within(card).getByRole('button', { name: 'Add copy set…' }));
    const dialog = await screen.findByRole('dialog');
    const primary = (await within(dialog).findByLabelText(/Primary site/)) as HTMLSelectElement;
    expect([...primary.options].map((option) => option.value)).toEqual(['alpha', 'gamma']);
    fireEvent.change(primary, { target: { value: 'gamma' } });
    // gamma's log is in the session already: only web is offered there.
    const source = (await within(dialog).findByLabelText('Volume at gamma')) as HTMLSelectElement;
    expect([...source.options].map((option) => option.value)).toEqual(['', 'web']);
    fireEvent.change(source, { target: { value: 'web' } });
    fireEvent.change(within(dialog).getByLabelText('Copy at beta'), { target: { value: 'web-copy' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Add copy set' }));
    expect(within(dialog).getByTestId('add-copy-set-consequence')).toHaveTextContent('every allocated track of the gamma volume');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Add to orders' }));
    await expect
      .poll(() => posts(calls))
      .toEqual(['POST /api/sites/agent-a/sessions/orders/pairs {"h1Volume":"web","h2Volume":"web-copy","primaryAgent":"gamma"}']);
  });

  it("shows each pair's primary site when another agent holds the primary", () => {
    const card = renderCard(sessionFixture({ type: 'async', pairs: [pairFixture(), { ...log, primarySite: 'gamma' }] }));
    expect(within(within(card).getByTestId('pair-row-log')).getByTestId('primary-site')).toHaveTextContent('primary at gamma');
    expect(within(within(card).getByTestId('pair-row-db')).getByTestId('primary-site')).toHaveTextContent('primary at alpha');
    expect(within(card).getByTestId('session-sites')).toHaveTextContent('H1 alpha, gamma · H2 beta');
    expect(within(card).getByTestId('session-direction')).toHaveTextContent('alpha, gamma → beta');
    expect(within(card).queryByTestId('production-site')).toBeNull();
  });

  it('after a failback of a multi-primary session: production at the old secondary, every primary site receives', () => {
    const card = renderCard(sessionFixture({ type: 'async', direction: 'h2-h1', role: 'h2', pairs: [pairFixture(), { ...log, primarySite: 'gamma' }] }));
    expect(within(card).getByTestId('session-direction')).toHaveTextContent('beta → alpha, gamma');
    expect(within(card).getByTestId('production-site')).toHaveTextContent('Production runs at beta (the old secondary) since the failback; alpha, gamma receive its writes.');
    // Data flows from the H2 volumes back to the H1 volumes at both primary sites.
    expect(within(card).getByRole('columnheader', { name: /^Copy set/ })).toHaveTextContent('Copy setH2 beta → H1 alpha, gamma');
    expect(within(card).getByTestId('pair-row-log')).toHaveTextContent('log-copy → log');
    expect(within(within(card).getByTestId('pair-row-log')).getByTestId('primary-site')).toHaveTextContent('primary at gamma');
  });
});

describe('SessionCard verification and shipping', () => {
  const verify = { startedAt: '2026-01-01T03:11:00.000Z', finishedAt: '2026-01-01T03:12:00.000Z', trigger: 'failback' as const, resyncStarted: false };

  it('shows the verify the agent recorded; a failed one says which tracks differ or went unverified', () => {
    const card = renderCard(
      sessionFixture({ lastVerify: { ...verify, comparedTracks: 4096, differingTracks: 2, unverifiedTracks: 1, ok: false, resyncStarted: true } }),
    );
    const shown = within(card).getByTestId('last-verify');
    expect(shown).toHaveTextContent('Verified by the agent after the failback at');
    expect(shown).toHaveTextContent('4,096 tracks compared, 2 differ');
    expect(shown).toHaveTextContent('2 tracks held different data at alpha and beta; they were marked and are being copied again');
    expect(shown).toHaveTextContent('1 track was being written during the compare and could not be verified');
  });

  it('says nothing about verification before the first verify, and no failure when it was ok', () => {
    expect(within(renderCard(sessionFixture())).queryByTestId('last-verify')).toBeNull();
  });

  it('shows the shipping interval, changes it and ships now', async () => {
    const calls: string[] = [];
    const shipping = sessionFixture({ type: 'snapshot-shipping', shipIntervalSeconds: 30 });
    const card = renderCard(
      shipping,
      {
        'PATCH /api/sites/agent-a/sessions/orders': [200, { ...shipping, shipIntervalSeconds: 5 }],
        'POST /api/sites/agent-a/sessions/orders/ship-now': [200, { session: 'orders', cycle: 12, time: '2026-01-01T03:12:00.000Z', tracks: 7, bytesSent: 458752, durationMs: 250 }],
      },
      calls,
    );
    expect(within(card).getByTestId('ship-interval')).toHaveTextContent('30 s');
    fireEvent.click(within(card).getByRole('button', { name: 'Change interval…' }));
    const dialog = await screen.findByRole('dialog');
    const input = within(dialog).getByLabelText('Seconds between cycles');
    fireEvent.change(input, { target: { value: '0' } });
    expect(within(dialog).getByRole('button', { name: 'Change interval' })).toBeDisabled();
    fireEvent.change(input, { target: { value: '5' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Change interval' }));
    await expect.poll(() => posts(calls)).toEqual(['PATCH /api/sites/agent-a/sessions/orders {"shipIntervalSeconds":5}']);
    fireEvent.click(within(card).getByRole('button', { name: 'Ship now' }));
    expect(await within(card).findByTestId('ship-now-result')).toHaveTextContent('Cycle 12 committed at beta');
    expect(posts(calls)).toContain('POST /api/sites/agent-a/sessions/orders/ship-now');
  });
});

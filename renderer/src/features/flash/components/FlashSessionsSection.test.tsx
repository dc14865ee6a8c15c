import { fireEvent, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { applyConsoleEvent } from '../../../app/console-events.ts';
import { renderWithBackend } from '../../../test/render.tsx';
import { alpha, beta } from '../../sessions/hooks/session-fixtures.test-helpers.ts';
import { flashKeys } from '../api/flash-keys.ts';
import { flashPairFixture, flashSessionFixture } from '../hooks/flash-fixtures.test-helpers.ts';
import { FlashSessionsSection, sortFlashSessions } from './FlashSessionsSection.tsx';
import type { SiteFlashSession } from '../hooks/use-flash.ts';

const nightly = flashSessionFixture({ options: { ...flashSessionFixture().options, incremental: true }, pairs: [flashPairFixture({ changedTracks: { source: 3, target: 1 } })] });
const done = flashSessionFixture({ name: 'weekly', state: 'idle-copied', pairs: [flashPairFixture({ id: 'fp9', source: 'logs', target: 'logs-pit', state: 'idle-copied', copiedTracks: 16384, percent: 100 })], copyBytesPerSecond: 0, etaSeconds: null });

function routes(extra: Record<string, [number, unknown]> = {}) {
  return {
    'GET /api/sites': [200, { sites: [alpha, beta] }],
    'GET /api/sites/agent-a/flash-sessions': [200, { sessions: [nightly] }],
    'GET /api/sites/agent-b/flash-sessions': [200, { sessions: [done] }],
    ...extra,
  } as Record<string, [number, unknown]>;
}

describe('FlashSessionsSection', () => {
  it('lists the flash sessions of every site with state, progress, rate and ETA', async () => {
    renderWithBackend(<FlashSessionsSection />, routes());
    const card = await screen.findByTestId('flash-card-nightly');
    expect(card).toHaveTextContent('at alpha');
    expect(within(card).getByTestId('flash-state')).toHaveTextContent('Copying');
    expect(within(card).getByTestId('flash-rate')).toHaveTextContent('64 MiB/s');
    expect(within(card).getByTestId('flash-eta')).toHaveTextContent('12 s');
    expect(within(card).getByTestId('flash-pair-changed')).toHaveTextContent('3 / 1');
    const other = await screen.findByTestId('flash-card-weekly');
    expect(other).toHaveTextContent('at beta');
    expect(within(other).getByTestId('flash-state')).toHaveTextContent('Idle / copied');
    expect(within(other).getByTestId('flash-eta')).toHaveTextContent('done');
  });

  it('confirms a reverse restore with what it overwrites, needing an acknowledgement, then sends it', async () => {
    const calls: string[] = [];
    renderWithBackend(<FlashSessionsSection />, routes({ 'POST /api/sites/agent-a/flash-sessions/nightly/reverse': [200, nightly] }), calls);
    const card = await screen.findByTestId('flash-card-nightly');
    fireEvent.click(within(card).getByRole('button', { name: 'Reverse restore…' }));
    const dialog = await screen.findByRole('dialog', { name: 'Reverse restore nightly?' });
    expect(within(dialog).getByTestId('flash-action-consequence')).toHaveTextContent('Reverse restore overwrites source db with the point-in-time image in db-pit');
    expect(within(dialog).getByRole('button', { name: 'Reverse restore' })).toBeDisabled();
    fireEvent.click(within(dialog).getByLabelText('I understand which volumes this overwrites or ends'));
    fireEvent.click(within(dialog).getByRole('button', { name: 'Reverse restore' }));
    await expect.poll(() => calls).toContain('POST /api/sites/agent-a/flash-sessions/nightly/reverse {}');
  });

  it('withdraws an unfinished copy finishing it first unless told otherwise', async () => {
    const calls: string[] = [];
    renderWithBackend(<FlashSessionsSection />, routes({ 'POST /api/sites/agent-a/flash-sessions/nightly/withdraw': [200, { ...nightly, state: 'stopped' }] }), calls);
    const card = await screen.findByTestId('flash-card-nightly');
    fireEvent.click(within(card).getByRole('button', { name: 'Withdraw…' }));
    const dialog = await screen.findByRole('dialog', { name: 'Withdraw nightly?' });
    expect(within(dialog).getByTestId('flash-action-consequence')).toHaveTextContent('db-pit 25 %');
    fireEvent.click(within(dialog).getByLabelText(/^Finish the background copy first/));
    fireEvent.click(within(dialog).getByLabelText('I understand which volumes this overwrites or ends'));
    fireEvent.click(within(dialog).getByRole('button', { name: 'Withdraw' }));
    await expect.poll(() => calls).toContain('POST /api/sites/agent-a/flash-sessions/nightly/withdraw {"finishCopy":false}');
  });

  it('changes the background copy rate, and starts the background copy of a no-copy session', async () => {
    const calls: string[] = [];
    const noCopy = flashSessionFixture({ name: 'quick', options: { ...flashSessionFixture().options, backgroundCopy: false }, pairs: [flashPairFixture({ id: 'fq', source: 'web', target: 'web-pit' })] });
    renderWithBackend(
      <FlashSessionsSection />,
      routes({
        'GET /api/sites/agent-b/flash-sessions': [200, { sessions: [noCopy] }],
        'PATCH /api/sites/agent-a/flash-sessions/nightly': [200, nightly],
        'PATCH /api/sites/agent-b/flash-sessions/quick': [200, noCopy],
      }),
      calls,
    );
    const card = await screen.findByTestId('flash-card-nightly');
    fireEvent.click(within(card).getByRole('button', { name: 'Change rate…' }));
    const rate = await screen.findByRole('dialog', { name: 'Background copy rate of nightly' });
    fireEvent.click(within(rate).getByLabelText('Limited, to spare host I/O'));
    fireEvent.change(within(rate).getByLabelText('Rate (MiB/s)'), { target: { value: '0' } });
    expect(within(rate).getByRole('button', { name: 'Set rate' })).toBeDisabled();
    fireEvent.change(within(rate).getByLabelText('Rate (MiB/s)'), { target: { value: '25' } });
    fireEvent.click(within(rate).getByRole('button', { name: 'Set rate' }));
    await expect.poll(() => calls).toContain('PATCH /api/sites/agent-a/flash-sessions/nightly {"rateMiBps":25}');

    const quick = await screen.findByTestId('flash-card-quick');
    expect(within(quick).queryByRole('button', { name: 'Change rate…' })).toBeNull();
    fireEvent.click(within(quick).getByRole('button', { name: 'Start background copy…' }));
    const start = await screen.findByRole('dialog', { name: 'Start the background copy of quick?' });
    expect(within(start).getByTestId('flash-action-consequence')).toHaveTextContent('web-pit no longer depends on web');
    fireEvent.click(within(start).getByRole('button', { name: 'Start background copy' }));
    await expect.poll(() => calls).toContain('PATCH /api/sites/agent-b/flash-sessions/quick {"backgroundCopy":true}');
  });

  it('refreshes the sessions and the event log live when a flash event of the site arrives', async () => {
    const calls: string[] = [];
    const established = { id: 8, time: '2026-01-01T00:00:00.000Z', type: 'flash.established', severity: 'info', subject: 'nightly', message: 'flash session nightly established' };
    const { queryClient } = renderWithBackend(<FlashSessionsSection />, routes({ 'GET /api/sites/agent-a/flash-sessions/nightly/events': [200, { events: [established] }] }), calls);
    const card = await screen.findByTestId('flash-card-nightly');
    fireEvent.click(within(card).getByRole('button', { name: 'Show events' }));
    expect(await within(card).findByTestId('flash-events-nightly')).toHaveTextContent('flash.established');
    const count = (path: string) => calls.filter((call) => call.startsWith(path)).length;
    const before = { list: calls.filter((call) => call === 'GET /api/sites/agent-a/flash-sessions').length, events: count('GET /api/sites/agent-a/flash-sessions/nightly/events') };
    applyConsoleEvent(queryClient, { kind: 'agent-event', siteId: 'agent-a', event: { id: 9, time: 't', type: 'flash.state', severity: 'info', subject: 'nightly', message: 'idle-copied' } });
    expect(queryClient.getQueryState(flashKeys.list('agent-b'))?.isInvalidated).toBe(false);
    await expect.poll(() => calls.filter((call) => call === 'GET /api/sites/agent-a/flash-sessions').length).toBe(before.list + 1);
    await expect.poll(() => count('GET /api/sites/agent-a/flash-sessions/nightly/events')).toBe(before.events + 1);
  });
});

describe('FlashSessionsSection at scale', () => {
  const many = Array.from({ length: 25 }, (_, i) =>
    flashSessionFixture({ name: `pit-${String(i).padStart(2, '0')}`, pairs: [flashPairFixture({ id: `f${i}`, source: `vol-${i}`, target: `vol-${i}-pit` })] }),
  );
  const manyRoutes = () => routes({ 'GET /api/sites/agent-a/flash-sessions': [200, { sessions: many }] });
  const cards = () => screen.queryAllByTestId(/^flash-card-/);

  it('draws a page of cards, shows more on request, and searches by name, site and volume', async () => {
    renderWithBackend(<FlashSessionsSection />, manyRoutes());
    await screen.findByTestId('flash-card-pit-00');
    await expect.poll(() => screen.getByTestId('flash-shown').textContent).toBe('20 of 26 shown');
    expect(cards()).toHaveLength(20);
    fireEvent.click(screen.getByRole('button', { name: 'Show 6 more' }));
    await expect.poll(() => cards().length).toBe(26);
    const search = screen.getByLabelText('Search flash copies');
    fireEvent.change(search, { target: { value: 'vol-17' } });
    await expect.poll(() => cards().map((card) => card.dataset.testid)).toEqual(['flash-card-pit-17']);
    fireEvent.change(search, { target: { value: 'logs beta' } });
    await expect.poll(() => cards().map((card) => card.dataset.testid)).toEqual(['flash-card-weekly']);
    fireEvent.change(search, { target: { value: 'nothing-like-it' } });
    await screen.findByText('No flash copy matches the search.');
  }, 60_000);

  it('orders the cards by name, needing attention first, least copied first or newest point in time first', async () => {
    const half = (copiedTracks: number) => [flashPairFixture({ id: `h${copiedTracks}`, totalTracks: 100, copiedTracks, percent: copiedTracks })];
    const sessions = [
      flashSessionFixture({ name: 'b-old', state: 'idle-copied', pointInTime: '2026-01-01T00:00:00.000Z', pairs: half(100) }),
      flashSessionFixture({ name: 'a-mid', state: 'copying', pointInTime: '2026-03-01T00:00:00.000Z', pairs: half(50) }),
      flashSessionFixture({ name: 'c-held', state: 'suspended', pointInTime: '2026-02-01T00:00:00.000Z', pairs: half(80) }),
      flashSessionFixture({ name: 'd-new', state: 'copying', pointInTime: '2026-04-01T00:00:00.000Z', pairs: half(10) }),
    ];
    const entries = sessions.map((session) => ({ siteId: 'agent-a', siteName: 'alpha', session }) as SiteFlashSession);
    const names = (sort: Parameters<typeof sortFlashSessions>[1]) => sortFlashSessions(entries, sort).map((entry) => entry.session.name);
    expect(names('name')).toEqual(['a-mid', 'b-old', 'c-held', 'd-new']);
    expect(names('attention')).toEqual(['c-held', 'a-mid', 'b-old', 'd-new']);
    expect(names('progress')).toEqual(['d-new', 'a-mid', 'c-held', 'b-old']);
    expect(names('newest')).toEqual(['d-new', 'a-mid', 'c-held', 'b-old']);

    renderWithBackend(<FlashSessionsSection />, routes({ 'GET /api/sites/agent-a/flash-sessions': [200, { sessions }], 'GET /api/sites/agent-b/flash-sessions': [200, { sessions: [] }] }));
    await screen.findByTestId('flash-card-d-new');
    await expect.poll(() => cards().map((card) => card.dataset.testid)).toEqual(['flash-card-a-mid', 'flash-card-b-old', 'flash-card-c-held', 'flash-card-d-new']);
    fireEvent.change(screen.getByLabelText('Order flash copies'), { target: { value: 'progress' } });
    await expect.poll(() => cards().map((card) => card.dataset.testid)).toEqual(['flash-card-d-new', 'flash-card-a-mid', 'flash-card-c-held', 'flash-card-b-old']);
  }, 60_000);
});

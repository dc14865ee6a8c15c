import { fireEvent, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { alpha, pairFixture, sessionFixture } from '../hooks/session-fixtures.test-helpers.ts';
import { mergeSessions } from '../hooks/session-model.ts';
import { FailbackProgress } from './FailbackProgress.tsx';

const report = {
  session: 'orders',
  startedAt: 't0',
  finishedAt: 't1',
  pairs: [],
  comparedTracks: 160,
  differingTracks: 0,
  unverifiedTracks: 0,
  resyncStarted: false,
};

describe('FailbackProgress result', () => {
  it('verifies once prepared, then offers the way back only after the applications are said to be stopped', async () => {
    const calls: string[] = [];
    const failedBack = sessionFixture({ direction: 'h2-h1', state: 'prepared' });
    const [entry] = mergeSessions([{ siteId: alpha.id, siteName: 'alpha', sessions: [failedBack] }]);
    renderWithBackend(
      <FailbackProgress entry={entry} phase="result" />,
      {
        'POST /api/sites/agent-a/sessions/orders/verify': [200, report],
        'POST /api/sites/agent-a/sessions/orders/actions/recover': [200, { ...failedBack, state: 'target-available' }],
        'POST /api/sites/agent-a/sessions/orders/actions/failback': [200, { ...failedBack, state: 'preparing', direction: 'h1-h2' }],
      },
      calls,
    );
    expect(await screen.findByTestId('verify-summary')).toHaveTextContent('160 tracks compared, 0 differing, 0 unverified');
    const back = screen.getByRole('button', { name: 'Return to alpha → beta' });
    expect(back).toBeDisabled();
    fireEvent.click(screen.getByLabelText('The applications at beta are stopped'));
    fireEvent.click(back);
    const result = screen.getByTestId('failback-result');
    expect(await within(result).findByText(/Returning: alpha is the source again/)).toBeInTheDocument();
    expect(calls.filter((call) => call.startsWith('POST'))).toEqual([
      'POST /api/sites/agent-a/sessions/orders/verify',
      'POST /api/sites/agent-a/sessions/orders/actions/recover {}',
      'POST /api/sites/agent-a/sessions/orders/actions/failback {"verifyCodes":true,"fullCompare":false}',
    ]);
  });

  it("shows the agent's own verify of the failback in the result step", async () => {
    const lastVerify = {
      startedAt: '2026-01-01T03:11:00.000Z', finishedAt: '2026-01-01T03:12:00.000Z', trigger: 'failback' as const,
      comparedTracks: 4096, differingTracks: 0, unverifiedTracks: 0, ok: true, resyncStarted: false,
    };
    const failedBack = sessionFixture({ direction: 'h2-h1', state: 'prepared', lastVerify });
    const [entry] = mergeSessions([{ siteId: alpha.id, siteName: 'alpha', sessions: [failedBack] }]);
    renderWithBackend(<FailbackProgress entry={entry} phase="result" />, { 'POST /api/sites/agent-a/sessions/orders/verify': [200, report] });
    const shown = await screen.findByTestId('last-verify');
    expect(shown).toHaveTextContent('Verified by the agent after the failback at');
    expect(shown).toHaveTextContent('4,096 tracks compared, 0 differ');
    expect(shown).not.toHaveTextContent('Not verified equal');
  });

  it('multi-primary: the verified result per primary site, and the way back names every primary site', async () => {
    const pairA = pairFixture({ id: 'pa', h1Volume: 'a', h2Volume: 'a2', trackCount: 256 });
    const pairB = pairFixture({ id: 'pb', h1Volume: 'b', h2Volume: 'b2', trackCount: 256, primarySite: 'gamma' });
    const failedBack = sessionFixture({ type: 'async', direction: 'h2-h1', state: 'prepared', role: 'h2', pairs: [pairA, pairB] });
    const [entry] = mergeSessions([{ siteId: alpha.id, siteName: 'beta', sessions: [failedBack] }]);
    const pairReport = (pair: string, h1Volume: string, differingCount: number) => ({
      pair, h1Volume, h2Volume: `${h1Volume}2`, trackCount: 256, comparedTracks: 256, differingCount, differingTracks: [], recheckedTracks: 0, unverifiedCount: 0, unverifiedTracks: [], codesComputed: 0,
    });
    renderWithBackend(<FailbackProgress entry={entry} phase="result" />, {
      'POST /api/sites/agent-a/sessions/orders/verify': [200, { ...report, pairs: [pairReport('pa', 'a', 0), pairReport('pb', 'b', 2)], comparedTracks: 512, differingTracks: 2 }],
    });
    expect(await screen.findByTestId('verify-site-alpha')).toHaveTextContent('alpha (1 copy set): 256 tracks compared with beta, 0 differing');
    expect(screen.getByTestId('verify-site-gamma')).toHaveTextContent('gamma (1 copy set): 256 tracks compared with beta, 2 differing');
    expect(screen.getByText('Differences found')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Return to alpha, gamma → beta' })).toBeDisabled();
  });

  it("multi-primary: each verified copy set names the primary site the verify reports (even one the session's view does not list)", async () => {
    const pairA = pairFixture({ id: 'pa', h1Volume: 'a', h2Volume: 'a2', trackCount: 256 });
    const pairB = pairFixture({ id: 'pb', h1Volume: 'b', h2Volume: 'b2', trackCount: 256 });
    const failedBack = sessionFixture({ type: 'async', direction: 'h2-h1', state: 'prepared', role: 'h2', pairs: [pairA, pairB] });
    const [entry] = mergeSessions([{ siteId: alpha.id, siteName: 'beta', sessions: [failedBack] }]);
    const pairReport = (pair: string, h1Volume: string, differingCount: number, primarySite?: string) => ({
      pair, h1Volume, h2Volume: `${h1Volume}2`, ...(primarySite ? { primarySite } : {}), trackCount: 256, comparedTracks: 256, differingCount, differingTracks: [], recheckedTracks: 0, unverifiedCount: 1, unverifiedTracks: [7], codesComputed: 0,
    });
    renderWithBackend(<FailbackProgress entry={entry} phase="result" />, {
      'POST /api/sites/agent-a/sessions/orders/verify': [200, { ...report, pairs: [pairReport('pa', 'a', 0, 'alpha'), pairReport('pb', 'b', 2, 'gamma')], comparedTracks: 512, differingTracks: 2 }],
    });
    expect(await screen.findByTestId('verify-copy-set-a')).toHaveTextContent('a ⇄ a2, primary at alpha: 256 compared, 0 differing, 1 unverified');
    expect(screen.getByTestId('verify-copy-set-b')).toHaveTextContent('b ⇄ b2, primary at gamma: 256 compared, 2 differing, 1 unverified');
  });

  it('a verify without primary sites lists no per-copy-set primaries', async () => {
    const failedBack = sessionFixture({ direction: 'h2-h1', state: 'prepared' });
    const [entry] = mergeSessions([{ siteId: alpha.id, siteName: 'alpha', sessions: [failedBack] }]);
    const pair = { pair: 'p1', h1Volume: 'db', h2Volume: 'db-copy', trackCount: 160, comparedTracks: 160, differingCount: 0, differingTracks: [], recheckedTracks: 0, unverifiedCount: 0, unverifiedTracks: [], codesComputed: 0 };
    renderWithBackend(<FailbackProgress entry={entry} phase="result" />, { 'POST /api/sites/agent-a/sessions/orders/verify': [200, { ...report, pairs: [pair] }] });
    expect(await screen.findByTestId('verify-summary')).toHaveTextContent('160 tracks compared');
    expect(screen.queryByTestId('verify-per-copy-set')).toBeNull();
  });

  it("multi-primary: the result shows what the failback copied per site and per copy set (the source's last session.synced), and the last verify per copy set with its primary site", async () => {
    const pairA = pairFixture({ id: 'pa', h1Volume: 'a', h2Volume: 'a2', trackCount: 256 });
    const pairB = pairFixture({ id: 'pb', h1Volume: 'b', h2Volume: 'b2', trackCount: 256, primarySite: 'gamma' });
    const lastVerify = {
      startedAt: '2026-01-01T03:11:00.000Z', finishedAt: '2026-01-01T03:12:00.000Z', trigger: 'failback' as const,
      comparedTracks: 512, differingTracks: 1, unverifiedTracks: 0, ok: false, resyncStarted: true,
      pairs: [
        { pair: 'pa', h1Volume: 'a', h2Volume: 'a2', primarySite: 'alpha', comparedTracks: 256, differingTracks: 0, unverifiedTracks: 0 },
        { pair: 'pb', h1Volume: 'b', h2Volume: 'b2', primarySite: 'gamma', comparedTracks: 256, differingTracks: 1, unverifiedTracks: 0 },
      ],
    };
    const failedBack = sessionFixture({ type: 'async', direction: 'h2-h1', state: 'prepared', role: 'h2', pairs: [pairA, pairB], lastVerify });
    const [entry] = mergeSessions([{ siteId: alpha.id, siteName: 'beta', sessions: [failedBack] }]);
    const synced = (id: number, a: number, b: number) => ({
      id, time: 't', type: 'session.synced', severity: 'info', subject: 'orders', message: 'copied',
      data: {
        copiedTracks: a + b, bytesSent: (a + b) * 65536,
        pairs: [
          { pair: 'pa', h1Volume: 'a', h2Volume: 'a2', primarySite: 'alpha', copiedTracks: a, bytesSent: a * 65536 },
          { pair: 'pb', h1Volume: 'b', h2Volume: 'b2', primarySite: 'gamma', copiedTracks: b, bytesSent: b * 65536 },
        ],
      },
    });
    renderWithBackend(<FailbackProgress entry={entry} phase="result" />, {
      'POST /api/sites/agent-a/sessions/orders/verify': [200, report],
      // The newest session.synced counts (an older one of the first start is listed too).
      'GET /api/sites/agent-a/sessions/orders/events': [200, { events: [synced(9, 5, 7), synced(3, 256, 256)] }],
    });
    expect(await screen.findByTestId('copied-summary')).toHaveTextContent('The failback copied 12 tracks (768 KiB sent) from beta.');
    expect(screen.getByTestId('copied-site-alpha')).toHaveTextContent('to alpha (1 copy set): 5 tracks copied');
    expect(screen.getByTestId('copied-site-gamma')).toHaveTextContent('to gamma (1 copy set): 7 tracks copied');
    expect(screen.getByTestId('copied-copy-set-b')).toHaveTextContent('b ⇄ b2, primary at gamma: 7 tracks copied (458,752 bytes)');
    expect(screen.getByTestId('last-verify-copy-set-a')).toHaveTextContent('a ⇄ a2, primary at alpha: 256 compared, 0 differ');
    expect(screen.getByTestId('last-verify-copy-set-b')).toHaveTextContent('b ⇄ b2, primary at gamma: 256 compared, 1 differ');
  });

  it('shows no copy result while the source recorded no session.synced, and no per copy set last verify without primary sites', async () => {
    const lastVerify = {
      startedAt: '2026-01-01T03:11:00.000Z', finishedAt: '2026-01-01T03:12:00.000Z', trigger: 'failback' as const,
      comparedTracks: 256, differingTracks: 0, unverifiedTracks: 0, ok: true, resyncStarted: false,
      pairs: [{ pair: 'p1', h1Volume: 'db', h2Volume: 'db-copy', comparedTracks: 256, differingTracks: 0, unverifiedTracks: 0 }],
    };
    const failedBack = sessionFixture({ direction: 'h2-h1', state: 'prepared', lastVerify });
    const [entry] = mergeSessions([{ siteId: alpha.id, siteName: 'alpha', sessions: [failedBack] }]);
    renderWithBackend(<FailbackProgress entry={entry} phase="result" />, {
      'POST /api/sites/agent-a/sessions/orders/verify': [200, report],
      'GET /api/sites/agent-a/sessions/orders/events': [200, { events: [] }],
    });
    expect(await screen.findByTestId('verify-summary')).toHaveTextContent('160 tracks compared');
    expect(screen.queryByTestId('failback-copied')).toBeNull();
    expect(screen.queryByTestId('last-verify-copy-set-db')).toBeNull();
  });
});

describe('FailbackProgress: what moves and what moved', () => {
  it('counts progress by the bytes the copy moves, never by tracks', () => {
    const copying = sessionFixture({
      direction: 'h2-h1',
      state: 'preparing',
      pairs: [pairFixture({ state: 'syncing', syncedPercent: 50, trackCount: 4096, outOfSyncTracks: 3000, copyBytes: { total: 8 * 1024 * 1024, done: 2 * 1024 * 1024 } })],
    });
    const [entry] = mergeSessions([{ siteId: alpha.id, siteName: 'alpha', sessions: [copying] }]);
    renderWithBackend(<FailbackProgress entry={entry} phase="progress" />, { 'GET /api/sites/agent-a/sessions/orders/events': [200, { events: [] }] });
    expect(screen.getByTestId('failback-moved')).toHaveTextContent('2 MiB of 8 MiB copied');
    const row = screen.getByTestId('pair-row-db');
    // 2 of 8 MiB is 25 %, whatever the share of tracks: the agent's bytes decide.
    expect(within(row).getByRole('progressbar').getAttribute('aria-valuenow')).toBe('25');
    expect(row).toHaveTextContent('syncing 25 %');
    expect(within(row).getByTestId('out-of-sync')).toHaveTextContent('3,000 (187.5 MiB)');
  });

  it('sets what was copied beside what the confirmed preflight said', async () => {
    const failedBack = sessionFixture({ direction: 'h2-h1', state: 'prepared' });
    const [entry] = mergeSessions([{ siteId: alpha.id, siteName: 'alpha', sessions: [failedBack] }]);
    const synced = { id: 4, time: 't', type: 'session.synced', severity: 'info', subject: 'orders', message: 'copied', data: { copiedTracks: 12, recopiedTracks: 2, bytesSent: 12 * 65536 } };
    renderWithBackend(
      <FailbackProgress
        entry={entry}
        phase="result"
        preflight={{ session: 'orders', pairs: [], tracksToCopy: 10, bytesToCopy: 10 * 65536, estimatedSeconds: 1, verifyCodes: true, fullCompare: false }}
      />,
      { 'POST /api/sites/agent-a/sessions/orders/verify': [200, report], 'GET /api/sites/agent-a/sessions/orders/events': [200, { events: [synced] }] },
    );
    expect(await screen.findByTestId('copied-vs-preflight')).toHaveTextContent('said 10 tracks (640 KiB); 2 more were copied');
    expect(screen.getByTestId('copied-vs-preflight')).toHaveTextContent('2 recopied');
  });
});

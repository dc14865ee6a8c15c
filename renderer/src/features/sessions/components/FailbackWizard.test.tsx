import { fireEvent, screen, within } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { alpha, beta, pairFixture, sessionFixture } from '../hooks/session-fixtures.test-helpers.ts';
import { mergeSessions } from '../hooks/session-model.ts';
import { useSessionsUi } from '../hooks/sessions-ui-store.ts';
import { FailbackWizard, preflightDrift } from './FailbackWizard.tsx';

const failedOver = sessionFixture({ state: 'target-available', pairs: [pairFixture({ state: 'target-available', targetChangedTracks: 3 })] });
const preflight = (fullCompare: boolean) => ({
  session: 'orders',
  pairs: [{ pair: 'db', targetChangedTracks: 3, outOfSyncTracks: 1, candidateTracks: 4, differingTracks: fullCompare ? 5 : 3, codesComputed: 4 }],
  tracksToCopy: fullCompare ? 5 : 3,
  bytesToCopy: (fullCompare ? 5 : 3) * 65536,
  estimatedSeconds: 0.2,
  verifyCodes: true,
  fullCompare,
});

describe('FailbackWizard', () => {
  beforeEach(() => useSessionsUi.setState({ failbackOpen: true, failbackSessionId: 's1' }));

  it('shows the preflight counts, takes options, and starts failback with them', async () => {
    const calls: string[] = [];
    const sessions = mergeSessions([{ siteId: alpha.id, siteName: 'alpha', sessions: [failedOver] }]);
    renderWithBackend(
      <FailbackWizard sessions={sessions} />,
      {
        'GET /api/sites': [200, { sites: [alpha, beta] }],
        'GET /api/sites/agent-a/sessions/orders/failback-preflight': [200, preflight(false)],
        'POST /api/sites/agent-a/sessions/orders/actions/failback': [200, { ...failedOver, state: 'preparing', direction: 'h2-h1' }],
      },
      calls,
    );
    const dialog = await screen.findByRole('dialog');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Next' }));
    expect(await within(dialog).findByTestId('preflight-bitmap-tracks')).toHaveTextContent('4');
    expect(within(dialog).getByTestId('preflight-code-tracks')).toHaveTextContent('3');
    expect(within(dialog).getByTestId('preflight-bytes')).toHaveTextContent('192 KiB');
    expect(calls).toContain('GET /api/sites/agent-a/sessions/orders/failback-preflight?verifyCodes=true&fullCompare=false');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Next' }));
    fireEvent.click(within(dialog).getByLabelText(/^Full compare/));
    fireEvent.click(within(dialog).getByRole('button', { name: 'Next' }));
    expect(within(dialog).getByTestId('failback-consequence')).toHaveTextContent("copies beta's changes back to alpha");
    await expect.poll(() => calls).toContain('GET /api/sites/agent-a/sessions/orders/failback-preflight?verifyCodes=true&fullCompare=true');
    // The confirm step shows what the chosen options copy, with its age.
    await expect.poll(() => within(dialog).queryByTestId('preflight-total-to-copy')?.textContent).toBe('3');
    expect(within(dialog).getByTestId('preflight-tracks-to-copy')).toHaveTextContent('3 tracks to copy (192 KiB)');
    expect(within(dialog).getByTestId('preflight-age')).toHaveTextContent(/Computed by alpha at .* ago|just now/);
    const fullComparesBefore = calls.filter((call) => call.endsWith('fullCompare=true')).length;
    fireEvent.click(within(dialog).getByRole('button', { name: 'Start failback' }));
    await expect.poll(() => calls).toContain('POST /api/sites/agent-a/sessions/orders/actions/failback {"verifyCodes":true,"fullCompare":true}');
    // Computed again right before starting.
    expect(calls.filter((call) => call.endsWith('fullCompare=true')).length).toBeGreaterThan(fullComparesBefore);
    expect(await within(dialog).findByTestId('failback-progress')).toBeInTheDocument();
  });

  it('starts only with the numbers it showed: a preflight that changed right before starting is shown, and Start again goes on', async () => {
    const calls: string[] = [];
    const sessions = mergeSessions([{ siteId: alpha.id, siteName: 'alpha', sessions: [failedOver] }]);
    const routes: Record<string, [number, unknown]> = {
      'GET /api/sites': [200, { sites: [alpha, beta] }],
      'GET /api/sites/agent-a/sessions/orders/failback-preflight': [200, preflight(false)],
      'POST /api/sites/agent-a/sessions/orders/actions/failback': [200, { ...failedOver, state: 'preparing', direction: 'h2-h1' }],
    };
    renderWithBackend(<FailbackWizard sessions={sessions} />, routes, calls);
    const dialog = await screen.findByRole('dialog');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Next' }));
    await within(dialog).findByTestId('preflight-bitmap-tracks');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Next' }));
    fireEvent.click(within(dialog).getByRole('button', { name: 'Next' }));
    await expect.poll(() => within(dialog).queryByTestId('preflight-total-to-copy')?.textContent).toBe('3');
    // The production site writes on: 4 tracks now.
    routes['GET /api/sites/agent-a/sessions/orders/failback-preflight'] = [200, { ...preflight(false), tracksToCopy: 4, bytesToCopy: 4 * 65536 }];
    fireEvent.click(within(dialog).getByRole('button', { name: 'Start failback' }));
    expect(await within(dialog).findByTestId('preflight-changed')).toHaveTextContent('4 tracks (256 KiB) instead of 3 tracks (192 KiB)');
    expect(within(dialog).getByTestId('preflight-total-to-copy')).toHaveTextContent('4');
    expect(calls.some((call) => call.startsWith('POST'))).toBe(false);
    fireEvent.click(within(dialog).getByRole('button', { name: 'Start failback' }));
    await expect.poll(() => calls.some((call) => call.startsWith('POST /api/sites/agent-a/sessions/orders/actions/failback'))).toBe(true);
  });

  it('offers Cancel on every step before the failback starts', async () => {
    const sessions = mergeSessions([{ siteId: alpha.id, siteName: 'alpha', sessions: [failedOver] }]);
    renderWithBackend(<FailbackWizard sessions={sessions} />, {
      'GET /api/sites': [200, { sites: [alpha, beta] }],
      'GET /api/sites/agent-a/sessions/orders/failback-preflight': [200, preflight(false)],
    });
    const dialog = await screen.findByRole('dialog');
    for (let step = 0; step < 4; step++) {
      expect(within(dialog).getByRole('button', { name: 'Cancel' })).toBeInTheDocument();
      if (step < 3) {
        await expect.poll(() => within(dialog).getByRole('button', { name: 'Next' }).hasAttribute('disabled')).toBe(false);
        fireEvent.click(within(dialog).getByRole('button', { name: 'Next' }));
      }
    }
    fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(useSessionsUi.getState().failbackOpen).toBe(false);
  });
});

describe('preflightDrift', () => {
  it('finds copy sets written to since the preflight, by a session read after it', () => {
    const counted = preflight(false);
    const later = mergeSessions([{ siteId: alpha.id, siteName: 'alpha', sessions: [{ ...failedOver, pairs: [pairFixture({ id: 'db', state: 'target-available', targetChangedTracks: 7 })] }], receivedAt: 2000 }])[0];
    expect(preflightDrift(counted, 1000, later)).toEqual([{ pair: 'db', counted: 3, now: 7 }]);
    // A session read before the preflight says nothing about it.
    expect(preflightDrift(counted, 3000, later)).toEqual([]);
    const same = mergeSessions([{ siteId: alpha.id, siteName: 'alpha', sessions: [{ ...failedOver, pairs: [pairFixture({ id: 'db', state: 'target-available', targetChangedTracks: 3 })] }], receivedAt: 2000 }])[0];
    expect(preflightDrift(counted, 1000, same)).toEqual([]);
  });
});

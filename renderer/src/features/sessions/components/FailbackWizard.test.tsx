import { fireEvent, screen, within } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { alpha, beta, pairFixture, sessionFixture } from '../hooks/session-fixtures.test-helpers.ts';
import { mergeSessions } from '../hooks/session-model.ts';
import { useSessionsUi } from '../hooks/sessions-ui-store.ts';
import { FailbackWizard } from './FailbackWizard.tsx';

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
    fireEvent.click(within(dialog).getByRole('button', { name: 'Start failback' }));
    await expect.poll(() => calls).toContain('POST /api/sites/agent-a/sessions/orders/actions/failback {"verifyCodes":true,"fullCompare":true}');
    expect(await within(dialog).findByTestId('failback-progress')).toBeInTheDocument();
  });
});

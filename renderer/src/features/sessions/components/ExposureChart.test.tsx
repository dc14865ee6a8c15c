import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import type { SessionHistory } from '@tandem/contract';
import { beforeEach, describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { useExposureStore } from '../hooks/exposure-store.ts';
import { alpha, beta, sessionFixture } from '../hooks/session-fixtures.test-helpers.ts';
import { mergeSessions } from '../hooks/session-model.ts';
import { ExposureChart } from './ExposureChart.tsx';

const t0 = Date.parse('2026-03-01T12:00:00Z');
const at = (seconds: number) => new Date(t0 + seconds * 1000).toISOString();

function historyAt(site: string, gaps: SessionHistory['gaps'] = []): SessionHistory {
  return {
    session: 'orders',
    sessionId: 's1',
    site,
    from: at(-3600),
    to: at(0),
    sampleIntervalSeconds: 10,
    resolutionSeconds: 10,
    retentionSeconds: 8 * 86_400,
    points: [-60, -50, -40, -10, 0].map((offset) => ({
      time: at(offset),
      samples: 1,
      state: 'prepared' as const,
      health: 'normal' as const,
      consistencyTime: at(offset),
      exposureSeconds: 0,
      outOfSyncTracks: 0,
      outOfSyncBytes: 0,
      peers: [],
      detail: null,
    })),
    gaps,
  };
}

const history = (siteId: string) => `GET /api/sites/${siteId}/sessions/orders/history`;
/** Views composed just now (`observedAt`), by agents whose clocks agree with the console's unless `betaAheadMs`. */
const bothSites = (betaAheadMs = 0) =>
  mergeSessions([
    { siteId: alpha.id, siteName: 'alpha', sessions: [sessionFixture({ observedAt: new Date().toISOString() })] },
    { siteId: beta.id, siteName: 'beta', sessions: [sessionFixture({ role: 'h2', observedAt: new Date(Date.now() + betaAheadMs).toISOString() })] },
  ])[0];

/** The `from`..`to` span (seconds) and maxPoints of the history calls made for a site. */
function asked(calls: string[], siteId: string): Array<{ seconds: number; maxPoints: number }> {
  return calls
    .filter((call) => call.startsWith(`${history(siteId)}?`))
    .map((call) => {
      const query = new URLSearchParams(call.split('?')[1]);
      return { seconds: (Date.parse(query.get('to')!) - Date.parse(query.get('from')!)) / 1000, maxPoints: Number(query.get('maxPoints')) };
    });
}

describe('ExposureChart: the agents’ history, not the browser’s', () => {
  beforeEach(() => useExposureStore.setState({ ranges: {} }));

  it('asks every site holding the session for the last hour, names the span a site took no samples, and a site that failed', async () => {
    const calls: string[] = [];
    renderWithBackend(
      <ExposureChart entry={bothSites()} />,
      {
        [history(alpha.id)]: [200, historyAt('alpha', [{ from: at(-40), to: at(-10) }])],
        [history(beta.id)]: [502, { problem: 'agent-unreachable', message: 'cannot reach the agent at 127.0.0.1:7002' }],
      },
      calls,
    );
    const chart = screen.getByTestId('exposure-chart-orders');
    await waitFor(() => expect(within(chart).getByTestId('exposure-site-alpha')).toHaveTextContent(/sampled at alpha · no samples .* \(agent not running\)/));
    await waitFor(() => expect(within(chart).getByTestId('exposure-site-beta')).toHaveTextContent('no history from beta: cannot reach the agent at 127.0.0.1:7002'));
    expect(asked(calls, alpha.id)).toEqual([{ seconds: 3600, maxPoints: 720 }]);
    expect(asked(calls, beta.id)).toEqual([{ seconds: 3600, maxPoints: 720 }]);
    expect(within(chart).getByText(/a point per 10 s/)).toBeInTheDocument();
  });

  it("a site whose clock runs ahead is asked for the range in its clock and drawn in the console's, and the legend says so", async () => {
    const calls: string[] = [];
    renderWithBackend(<ExposureChart entry={bothSites(120_000)} />, { [history(alpha.id)]: [200, historyAt('alpha')], [history(beta.id)]: [200, historyAt('beta')] }, calls);
    const chart = screen.getByTestId('exposure-chart-orders');
    await waitFor(() => expect(within(chart).getByTestId('exposure-site-beta')).toHaveTextContent(/sampled at beta · its clock is 12\d s ahead of this console's: drawn in this console's time/));
    expect(within(chart).getByTestId('exposure-site-alpha')).not.toHaveTextContent('clock');
    const toOf = (siteId: string) => Date.parse(new URLSearchParams(calls.find((call) => call.startsWith(`${history(siteId)}?`))!.split('?')[1]).get('to')!);
    expect(toOf(beta.id) - toOf(alpha.id)).toBeGreaterThan(110_000);
    expect(toOf(beta.id) - toOf(alpha.id)).toBeLessThan(130_000);
  });

  it('switches to 24 h and 7 d: new questions to the agents, the choice kept for the session', async () => {
    const calls: string[] = [];
    renderWithBackend(<ExposureChart entry={bothSites()} />, { [history(alpha.id)]: [200, historyAt('alpha')], [history(beta.id)]: [200, historyAt('beta')] }, calls);
    await waitFor(() => expect(asked(calls, alpha.id)).toHaveLength(1));
    fireEvent.click(screen.getByRole('radio', { name: '24 h' }));
    await waitFor(() => expect(asked(calls, alpha.id).at(-1)).toEqual({ seconds: 86_400, maxPoints: 720 }));
    fireEvent.click(screen.getByRole('radio', { name: '7 d' }));
    await waitFor(() => expect(asked(calls, beta.id).at(-1)).toEqual({ seconds: 7 * 86_400, maxPoints: 1008 }));
    expect(useExposureStore.getState().ranges.s1).toBe('7d');
  });

  it('names a site of the session the console does not reach, with since when', async () => {
    const [onlyAlpha] = mergeSessions([{ siteId: alpha.id, siteName: 'alpha', sessions: [sessionFixture()] }]);
    const since = '2026-03-01T11:58:00.000Z';
    const reconnecting = { ...beta, connection: { state: 'reconnecting' as const, since, lastProblem: { problem: 'agent-unreachable' as const, message: 'connection refused' }, nextAttemptAt: null } };
    renderWithBackend(<ExposureChart entry={onlyAlpha} />, { [history(alpha.id)]: [200, historyAt('alpha')], 'GET /api/sites': [200, { sites: [alpha, reconnecting] }] });
    await waitFor(() =>
      expect(screen.getByTestId('exposure-site-beta')).toHaveTextContent(`no history from beta: not reachable, reconnecting since ${new Date(since).toLocaleString()} (connection refused)`),
    );
    await waitFor(() => expect(screen.getByTestId('exposure-site-alpha')).toHaveTextContent('sampled at alpha'));
  });

  it('names a site of the session that is not connected to this console at all', async () => {
    const [onlyAlpha] = mergeSessions([{ siteId: alpha.id, siteName: 'alpha', sessions: [sessionFixture()] }]);
    renderWithBackend(<ExposureChart entry={onlyAlpha} />, { [history(alpha.id)]: [200, historyAt('alpha')], 'GET /api/sites': [200, { sites: [alpha] }] });
    expect(await screen.findByTestId('exposure-site-beta')).toHaveTextContent('no history from beta: not connected to this console');
    await waitFor(() => expect(screen.getByTestId('exposure-site-alpha')).toHaveTextContent('sampled at alpha'));
  });
});

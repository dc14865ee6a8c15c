import { act, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Alert, AlertList } from '@tandem/contract';
import { renderWithBackend } from '../../../test/render.tsx';
import { siteFixture } from '../../../test/fixtures.ts';
import { alertKeys } from '../api/alerts-keys.ts';
import { useReadAlertsStore } from '../hooks/read-alerts-store.ts';
import { NotificationCentre } from './NotificationCentre.tsx';

const alert = (over: Partial<Alert>): Alert => ({
  id: 1,
  key: 'session-suspended:gold',
  kind: 'session-suspended',
  severity: 'critical',
  site: 'alpha',
  subject: { kind: 'session', session: 'gold', name: null },
  message: 'session gold is suspended',
  raisedAt: '2026-12-07T10:00:00.000Z',
  clearedAt: null,
  value: null,
  threshold: null,
  ...over,
});

const list = (site: string, alerts: Alert[]): AlertList => ({
  site,
  active: alerts.filter((each) => each.clearedAt === null),
  recent: alerts.filter((each) => each.clearedAt !== null),
  evaluatedAt: '2026-12-07T10:05:00.000Z',
});

const alpha = siteFixture({ id: 'agent-a', site: 'alpha' });
const beta = siteFixture({ id: 'agent-b', site: 'beta' });
const gamma = siteFixture({
  id: 'agent-c',
  site: 'gamma',
  connection: { state: 'reconnecting', since: '2026-12-07T09:00:00.000Z', lastProblem: null, nextAttemptAt: null },
});

const suspended = alert({});
const linkDown = alert({
  id: 2,
  key: 'link-down:gold:alpha',
  kind: 'link-down',
  site: 'beta',
  subject: { kind: 'link', session: 'gold', name: 'alpha' },
  message: 'session gold: the link to alpha has been down since 2026-12-07T10:01:00.000Z (over 30 s)',
  raisedAt: '2026-12-07T10:01:00.000Z',
});
const exposure = alert({
  id: 3,
  key: 'exposure:silver',
  kind: 'exposure',
  severity: 'warning',
  subject: { kind: 'session', session: 'silver', name: null },
  message: 'session silver: exposure 12 s is above its RPO target of 10 s',
  raisedAt: '2026-12-07T10:03:00.000Z',
});
const cleared = alert({ id: 4, key: 'pool-full', kind: 'pool-full', severity: 'warning', subject: { kind: 'pool', session: null, name: null }, message: 'the pool is 91 % full', clearedAt: '2026-12-07T10:04:00.000Z' });

function routes(alphaAlerts: Alert[], betaAlerts: Alert[]) {
  return {
    'GET /api/sites': [200, { sites: [alpha, beta, gamma] }] as [number, unknown],
    'GET /api/sites/agent-a/alerts': [200, list('alpha', alphaAlerts)] as [number, unknown],
    'GET /api/sites/agent-b/alerts': [200, list('beta', betaAlerts)] as [number, unknown],
  };
}

beforeEach(() => {
  localStorage.clear();
  useReadAlertsStore.setState({ read: new Set(), open: false });
});
afterEach(() => {
  delete (window as unknown as { tandem?: unknown }).tandem;
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

const bell = () => screen.getByTestId('alert-bell');

describe('NotificationCentre', () => {
  it('counts unread active alerts across sites and lists active first (critical, newest), cleared greyed last', async () => {
    renderWithBackend(<NotificationCentre />, routes([suspended, exposure, cleared], [linkDown]));
    await waitFor(() => expect(bell().getAttribute('aria-label')).toBe('Alerts, 3 unread'));
    expect(screen.getByTestId('alert-unread-count')).toHaveTextContent('3');
    fireEvent.click(bell());
    const drawer = await screen.findByTestId('alert-summary');
    expect(drawer).toHaveTextContent('3 active, 3 unread');
    const rows = screen.getAllByTestId(/^alert-agent-/);
    expect(rows.map((row) => row.getAttribute('data-testid'))).toEqual(['alert-agent-b:2', 'alert-agent-a:1', 'alert-agent-a:3', 'alert-agent-a:4']);
    expect(rows.map((row) => row.getAttribute('data-state'))).toEqual(['active', 'active', 'active', 'cleared']);
    expect(rows[0]).toHaveTextContent('beta: gold link to alpha');
    expect(rows[2]).toHaveTextContent('alpha: session silver');
    expect(rows[3]).toHaveTextContent('cleared');
    expect(rows[3].getAttribute('style')).toContain('opacity: 0.55');
    // A site the console cannot reach says its alerts are unknown, not that it has none.
    expect(screen.getByTestId('alert-site-unknown-agent-c')).toHaveTextContent('gamma: alerts unknown (reconnecting since');
  });

  it('marks one read, then all read; the marks are kept for the next run', async () => {
    renderWithBackend(<NotificationCentre />, routes([suspended, exposure], [linkDown]));
    await waitFor(() => expect(bell().getAttribute('aria-label')).toBe('Alerts, 3 unread'));
    fireEvent.click(bell());
    const row = await screen.findByTestId('alert-agent-a:1');
    fireEvent.click(within(row).getByRole('button', { name: /Mark session gold read/ }));
    await waitFor(() => expect(bell().getAttribute('aria-label')).toBe('Alerts, 2 unread'));
    expect(screen.getByTestId('alert-agent-a:1').getAttribute('data-read')).toBe('true');
    expect(within(screen.getByTestId('alert-agent-a:1')).queryByRole('button')).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Mark all read' }));
    await waitFor(() => expect(bell().getAttribute('aria-label')).toBe('Alerts, 0 unread'));
    expect(screen.getByRole('button', { name: 'Mark all read' })).toBeDisabled();
    expect(JSON.parse(localStorage.getItem('tandem.alerts.read')!)).toEqual(expect.arrayContaining(['agent-a:1', 'agent-a:3', 'agent-b:2']));
  });

  it('a new alert raised while watching becomes unread and a desktop notification (the desktop app\'s); those already there do not', async () => {
    const showNotification = vi.fn(async () => true);
    (window as unknown as { tandem: unknown }).tandem = { desktop: true, showNotification };
    const table = routes([suspended], []);
    const { queryClient } = renderWithBackend(<NotificationCentre />, table);
    await waitFor(() => expect(bell().getAttribute('aria-label')).toBe('Alerts, 1 unread'));
    expect(showNotification).not.toHaveBeenCalled();
    table['GET /api/sites/agent-b/alerts'] = [200, list('beta', [linkDown])];
    await act(() => queryClient.invalidateQueries({ queryKey: alertKeys.all }));
    await waitFor(() => expect(bell().getAttribute('aria-label')).toBe('Alerts, 2 unread'));
    expect(showNotification).toHaveBeenCalledTimes(1);
    expect(showNotification).toHaveBeenCalledWith({
      title: 'Critical at beta: gold link to alpha',
      body: 'session gold: the link to alpha has been down since 2026-12-07T10:01:00.000Z (over 30 s)',
    });
    // Refetching the same alerts notifies nothing more.
    await act(() => queryClient.invalidateQueries({ queryKey: alertKeys.all }));
    expect(showNotification).toHaveBeenCalledTimes(1);
  });

  it('in a browser asks for permission only when clicked, and uses the Notification API once granted', async () => {
    const shown: Array<{ title: string; body?: string }> = [];
    class FakeNotification {
      static permission: NotificationPermission = 'default';
      static requestPermission = vi.fn(async () => {
        FakeNotification.permission = 'granted';
        return 'granted' as NotificationPermission;
      });
      constructor(title: string, options?: NotificationOptions) {
        shown.push({ title, body: options?.body });
      }
    }
    vi.stubGlobal('Notification', FakeNotification);
    const table = routes([], []);
    const { queryClient } = renderWithBackend(<NotificationCentre />, table);
    await waitFor(() => expect(bell().getAttribute('aria-label')).toBe('Alerts, 0 unread'));
    expect(FakeNotification.requestPermission).not.toHaveBeenCalled();
    fireEvent.click(bell());
    // gamma is unreachable: no 'No alerts.' while a site's alerts are unknown.
    expect(await screen.findByTestId('alert-summary')).toHaveTextContent('0 active, 0 unread');
    expect(screen.queryByTestId('alert-empty')).toBeNull();
    fireEvent.click(screen.getByTestId('alert-enable-desktop'));
    await waitFor(() => expect(screen.queryByTestId('alert-enable-desktop')).toBeNull());
    expect(FakeNotification.requestPermission).toHaveBeenCalledTimes(1);
    table['GET /api/sites/agent-a/alerts'] = [200, list('alpha', [exposure])];
    await act(() => queryClient.invalidateQueries({ queryKey: alertKeys.all }));
    await waitFor(() => expect(shown).toEqual([{ title: 'Warning at alpha: session silver', body: exposure.message }]));
  });

  it('a denied permission degrades quietly: no prompt button, a note, the bell still counts', async () => {
    class DeniedNotification {
      static permission: NotificationPermission = 'denied';
      static requestPermission = vi.fn();
    }
    vi.stubGlobal('Notification', DeniedNotification);
    renderWithBackend(<NotificationCentre />, routes([suspended], []));
    await waitFor(() => expect(bell().getAttribute('aria-label')).toBe('Alerts, 1 unread'));
    fireEvent.click(bell());
    expect(await screen.findByText(/Desktop notifications are blocked/)).toBeInTheDocument();
    expect(screen.queryByTestId('alert-enable-desktop')).toBeNull();
    expect(DeniedNotification.requestPermission).not.toHaveBeenCalled();
  });
});

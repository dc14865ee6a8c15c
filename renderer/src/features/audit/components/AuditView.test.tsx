import { fireEvent, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { auditCsvColumns, type AuditEntry, type AuditList } from '@tandem/contract';
import { renderWithBackend } from '../../../test/render.tsx';
import { AuditView } from './AuditView.tsx';

const entry = (over: Partial<AuditEntry>): AuditEntry => ({
  id: 1,
  time: '2026-12-07T10:00:00.000Z',
  client: { subject: 'console on desk', serial: '0A', fingerprint: 'AB:CD', role: 'operator' },
  user: 'alice',
  remoteAddress: '127.0.0.1',
  method: 'POST',
  route: '/v1/volumes',
  url: '/v1/volumes',
  target: 'volume db',
  session: null,
  params: { body: { name: 'db', sizeBytes: 4096 } },
  status: 201,
  problem: null,
  message: null,
  durationMs: 3.2,
  ...over,
});

const created = entry({});
const started = entry({ id: 2, time: '2026-12-07T10:01:00.000Z', route: '/v1/sessions/:name/actions/:action', url: '/v1/sessions/gold/actions/start', target: 'session gold', session: 'gold', params: { path: { name: 'gold', action: 'start' } } });
const refused = entry({
  id: 3,
  time: '2026-12-07T10:02:00.000Z',
  method: 'DELETE',
  route: '/v1/volumes/:name',
  url: '/v1/volumes/db',
  client: null,
  user: null,
  status: 401,
  problem: 'unauthenticated',
  message: 'this route needs a client certificate; pair with the agent first',
  params: { path: { name: 'db' } },
});

const list = (entries: AuditEntry[]): AuditList => ({ site: 'alpha', entries, truncated: false, retention: { maxRows: 1_000_000, maxDays: 366 } });

afterEach(() => {
  delete (window as unknown as { tandem?: unknown }).tandem;
  vi.restoreAllMocks();
});

describe('AuditView', () => {
  it('shows every call newest first with time, who, action, target and result; a refused call with its problem', async () => {
    renderWithBackend(<AuditView siteId="agent-a" siteName="alpha" />, { 'GET /api/sites/agent-a/audit': [200, list([created, started, refused])] });
    const table = await screen.findByTestId('audit-table');
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((row) => row.getAttribute('data-testid'))).toEqual(['audit-row-3', 'audit-row-2', 'audit-row-1']);
    const cells = (id: number) => within(screen.getByTestId(`audit-row-${id}`)).getAllByRole('cell').map((cell) => cell.textContent);
    // The caller's role follows who it was.
    expect(cells(1)).toEqual(['2026-12-07T10:00:00.000Z', 'alice (console on desk)operator', 'POST /v1/volumes', 'volume db', '201']);
    expect(cells(2)).toEqual(['2026-12-07T10:01:00.000Z', 'alice (console on desk)operator', 'POST /v1/sessions/:name/actions/:action', 'session gold', '201']);
    expect(cells(3)).toEqual([
      '2026-12-07T10:02:00.000Z',
      'no certificate',
      'DELETE /v1/volumes/:name',
      'volume db',
      '401 unauthenticated: this route needs a client certificate; pair with the agent first',
    ]);
  });

  it('filters by session at the agent', async () => {
    const calls: string[] = [];
    renderWithBackend(<AuditView siteId="agent-a" siteName="alpha" />, { 'GET /api/sites/agent-a/audit': [200, list([created, started])] }, calls);
    await screen.findByTestId('audit-table');
    fireEvent.change(screen.getByLabelText('Filter by session'), { target: { value: 'gold' } });
    await expect.poll(() => calls.some((call) => call.startsWith('GET /api/sites/agent-a/audit?') && call.includes('session=gold'))).toBe(true);
  });

  it('says so when nothing was recorded', async () => {
    renderWithBackend(<AuditView siteId="agent-a" siteName="alpha" />, { 'GET /api/sites/agent-a/audit': [200, list([])] });
    expect(await screen.findByTestId('audit-empty')).toHaveTextContent('No calls recorded yet.');
  });

  it('exports the trail as CSV through the save dialog reports use', async () => {
    const saveFile = vi.fn(async (_request: { suggestedName: string; content: string }) => ({ saved: true, path: '/tmp/audit.csv' }));
    (window as unknown as { tandem: unknown }).tandem = { desktop: true, saveFile, backendEndpoint: vi.fn() };
    renderWithBackend(<AuditView siteId="agent-a" siteName="alpha" />, { 'GET /api/sites/agent-a/audit': [200, list([created, refused])] });
    await screen.findByTestId('audit-table');
    fireEvent.click(screen.getByRole('button', { name: 'Export audit trail' }));
    fireEvent.click(await screen.findByRole('menuitem', { name: 'CSV' }));
    await expect.poll(() => saveFile.mock.calls.length).toBe(1);
    const saved = saveFile.mock.calls[0][0];
    expect(saved.suggestedName).toMatch(/^tandem-audit-alpha-.*\.csv$/);
    const lines = saved.content.trimEnd().split('\r\n');
    expect(lines[0]).toBe(auditCsvColumns.join(','));
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^1,2026-12-07T10:00:00.000Z,alpha,console on desk,0A,AB:CD,operator,alice,/);
    expect(lines[2]).toContain(',401,unauthenticated,');
  });

  it('searches what the table shows and keeps refused calls only when asked', async () => {
    renderWithBackend(<AuditView siteId="agent-a" siteName="alpha" />, { 'GET /api/sites/agent-a/audit': [200, list([created, started, refused])] });
    await screen.findByTestId('audit-table');
    const ids = () => screen.queryAllByTestId(/^audit-row-/).map((row) => row.getAttribute('data-testid'));
    fireEvent.change(screen.getByLabelText('Search the audit trail'), { target: { value: 'gold start' } });
    expect(ids()).toEqual(['audit-row-2']);
    expect(screen.getByTestId('audit-shown')).toHaveTextContent('1 of 3 calls');
    fireEvent.change(screen.getByLabelText('Search the audit trail'), { target: { value: 'operator volumes' } });
    expect(ids()).toEqual(['audit-row-1']);
    fireEvent.change(screen.getByLabelText('Search the audit trail'), { target: { value: '' } });
    fireEvent.click(screen.getByLabelText('Refused only'));
    expect(ids()).toEqual(['audit-row-3']);
    fireEvent.change(screen.getByLabelText('Search the audit trail'), { target: { value: 'alice' } });
    expect(screen.getByTestId('audit-shown')).toHaveTextContent('0 of 3 calls: none matches the search');
  });
});

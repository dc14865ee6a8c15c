import { fireEvent, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { AgentInfo, ClientInfo } from '@tandem/contract';
import { renderWithBackend } from '../../../test/render.tsx';
import { siteFixture } from '../../../test/fixtures.ts';
import { SiteCard } from './SiteCard.tsx';

const agent = (serial: string, role: 'monitor' | 'administrator'): AgentInfo => ({
  site: 'primary',
  agentId: 'agent-1',
  version: '0.1.0',
  trackSize: 65536,
  startedAt: '2026-01-01T00:00:00.000Z',
  apiAddress: '127.0.0.1:7450',
  nbdAddress: null,
  nbdSocket: null,
  certificateFingerprint: 'AA:BB',
  caller: { subject: 'console', serial, role, roleSource: 'certificate' },
});

const client = (over: Partial<ClientInfo>): ClientInfo => ({
  serial: '1A',
  name: 'desk console',
  fingerprint: 'CC:DD',
  role: 'operator',
  roleSource: 'certificate',
  pairedAt: '2026-01-01T00:00:00.000Z',
  revokedAt: null,
  ...over,
  certificateRole: over.certificateRole ?? over.role ?? 'operator',
});

describe('site clients and roles', () => {
  it('shows the role on the site card; a monitor cannot open the clients, and is told why', async () => {
    renderWithBackend(<SiteCard site={siteFixture({ role: 'monitor', agent: agent('2B', 'monitor') })} />, {});
    expect(screen.getByTestId('site-role')).toHaveTextContent('monitor');
    expect(screen.getByRole('button', { name: 'Clients…' })).toBeDisabled();
    expect(screen.getByLabelText('Needs the administrator role; this console is paired with primary as monitor.')).toBeInTheDocument();
  });

  it('an administrator lists the clients with their roles (old certificates marked) and revokes one, not itself', async () => {
    const calls: string[] = [];
    const clients = [
      client({ serial: '2B', name: 'this desk', role: 'administrator' }),
      client({ serial: '1A', name: 'ops console' }),
      client({ serial: '3C', name: 'old console', role: 'administrator', roleSource: 'legacy' }),
    ];
    renderWithBackend(
      <SiteCard site={siteFixture({ role: 'administrator', agent: agent('2B', 'administrator') })} />,
      {
        'GET /api/sites/agent-1/clients': [200, { clients }],
        'DELETE /api/sites/agent-1/clients/1A': [200, { ...clients[1], revokedAt: '2026-01-02T00:00:00.000Z' }],
        'PATCH /api/sites/agent-1/clients/3C': [200, { ...clients[2], role: 'monitor', roleSource: 'narrowed' }],
      },
      calls,
    );
    fireEvent.click(screen.getByRole('button', { name: 'Clients…' }));
    const table = await screen.findByTestId('site-clients');
    expect(within(screen.getByTestId('client-row-ops console')).getByTestId('client-role')).toHaveTextContent('operator');
    expect(within(screen.getByTestId('client-row-old console')).getByTestId('client-role')).toHaveTextContent('issued before roles');
    expect(within(screen.getByTestId('client-row-this desk')).queryByRole('button', { name: 'Revoke…' })).toBeNull();
    // A role up to the certificate's: an operator's certificate offers monitor and operator only.
    const opsRole = screen.getByLabelText('Role of ops console');
    expect([...opsRole.querySelectorAll('option')].map((option) => option.textContent)).toEqual(['monitor', 'operator']);
    fireEvent.change(screen.getByLabelText('Role of old console'), { target: { value: 'monitor' } });
    await expect.poll(() => calls.find((call) => call.startsWith('PATCH /api/sites/agent-1/clients/3C'))).toContain('"role":"monitor"');
    fireEvent.click(within(screen.getByTestId('client-row-ops console')).getByRole('button', { name: 'Revoke…' }));
    fireEvent.click(within(table).getByRole('button', { name: 'Revoke ops console now' }));
    await expect.poll(() => calls.some((call) => call.startsWith('DELETE /api/sites/agent-1/clients/1A'))).toBe(true);
  });
});

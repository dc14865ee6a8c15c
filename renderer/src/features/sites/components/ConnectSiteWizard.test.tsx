import { fireEvent, screen, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { siteFixture } from '../../../test/fixtures.ts';
import { ConnectSiteWizard } from './ConnectSiteWizard.tsx';

const probe = { address: '127.0.0.1:7450', site: 'primary', agentId: 'agent-1', version: '0.1.0', certificateFingerprint: 'AB:CD:EF', alreadyConnected: false };

function fillFirstStep() {
  fireEvent.change(screen.getByLabelText(/Agent address/), { target: { value: '127.0.0.1:7450' } });
  fireEvent.change(screen.getByLabelText(/Pairing token/), { target: { value: 'tdm_token' } });
  fireEvent.click(screen.getByRole('button', { name: 'Next' }));
}

describe('ConnectSiteWizard', () => {
  it('shows the site and fingerprint for confirmation before connecting', async () => {
    const calls: string[] = [];
    renderWithBackend(<ConnectSiteWizard opened onClose={() => undefined} />, { 'POST /api/sites/probe': [200, probe], 'POST /api/sites': [201, siteFixture()] }, calls);
    fillFirstStep();
    expect(await screen.findByTestId('probe-fingerprint')).toHaveTextContent('AB:CD:EF');
    expect(screen.getByTestId('probe-site')).toHaveTextContent('primary');
    expect(calls.some((call) => call.startsWith('POST /api/sites '))).toBe(false);
    fireEvent.click(screen.getByRole('button', { name: 'Trust and connect' }));
    expect(await screen.findByTestId('connect-done')).toHaveTextContent('primary');
    expect(calls.find((call) => call.startsWith('POST /api/sites '))).toContain('"expectedFingerprint":"AB:CD:EF"');
  });

  it('sends the fingerprint the administrator typed, and shows a refusal with its code', async () => {
    const calls: string[] = [];
    renderWithBackend(
      <ConnectSiteWizard opened onClose={() => undefined} />,
      { 'POST /api/sites/probe': [200, probe], 'POST /api/sites': [502, { problem: 'certificate-mismatch', message: 'presented a certificate with another fingerprint' }] },
      calls,
    );
    fillFirstStep();
    await screen.findByTestId('probe-fingerprint');
    fireEvent.change(screen.getByLabelText(/Expected fingerprint/), { target: { value: '11:22' } });
    fireEvent.click(screen.getByRole('button', { name: 'Trust and connect' }));
    expect(await screen.findByTestId('problem')).toHaveTextContent('certificate-mismatch');
    await waitFor(() => expect(calls.find((call) => call.startsWith('POST /api/sites '))).toContain('"expectedFingerprint":"11:22"'));
  });

  it('asks for the role chosen (none: the token decides) and says which role it got', async () => {
    const calls: string[] = [];
    renderWithBackend(
      <ConnectSiteWizard opened onClose={() => undefined} />,
      { 'POST /api/sites/probe': [200, probe], 'POST /api/sites': [201, siteFixture({ role: 'monitor' })] },
      calls,
    );
    fireEvent.change(screen.getByLabelText(/^Role/), { target: { value: 'monitor' } });
    fillFirstStep();
    await screen.findByTestId('probe-fingerprint');
    fireEvent.click(screen.getByRole('button', { name: 'Trust and connect' }));
    expect(await screen.findByTestId('connect-role')).toHaveTextContent('monitor');
    expect(calls.find((call) => call.startsWith('POST /api/sites '))).toContain('"role":"monitor"');
  });

  it('keeps the first step and explains an unreachable agent', async () => {
    renderWithBackend(<ConnectSiteWizard opened onClose={() => undefined} />, {
      'POST /api/sites/probe': [502, { problem: 'agent-unreachable', message: 'cannot reach the agent at 127.0.0.1:7450: nothing is listening there' }],
    });
    fillFirstStep();
    expect(await screen.findByTestId('problem')).toHaveTextContent('nothing is listening there');
    expect(screen.getByLabelText(/Agent address/)).toBeInTheDocument();
  });
});

import { fireEvent, screen, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { AlertSettingsModal } from './AlertSettingsModal.tsx';

const input = (testId: string) => screen.getByTestId(testId) as HTMLInputElement;

describe('AlertSettingsModal', () => {
  const settingsPath = '/api/sites/agent-a/alerts/settings';
  const settings = { poolFullPercent: 90, webhookUrl: null, sessionDefaults: { rpoTargetSeconds: null, linkDownSeconds: 30, backlogPercent: 80, enabled: true } };

  it('checks the webhook and the percentages before sending, then saves every field', async () => {
    const calls: string[] = [];
    renderWithBackend(<AlertSettingsModal siteId="agent-a" siteName="alpha" onClose={() => {}} />, {
      [`GET ${settingsPath}`]: [200, settings],
      [`PUT ${settingsPath}`]: [200, { ...settings, poolFullPercent: 85, webhookUrl: 'https://hooks.example/t' }],
    }, calls);
    await waitFor(() => expect(input('settings-pool-full').value).toBe('90'));
    fireEvent.change(input('settings-webhook'), { target: { value: 'ftp://hooks.example/t' } });
    expect(await screen.findByText('webhookUrl must be an http:// or https:// URL')).toBeInTheDocument();
    expect(screen.getByTestId('settings-save')).toBeDisabled();
    fireEvent.change(input('settings-webhook'), { target: { value: 'https://hooks.example/t' } });
    fireEvent.change(input('settings-pool-full'), { target: { value: '85' } });
    await waitFor(() => expect(screen.getByTestId('settings-save')).not.toBeDisabled());
    fireEvent.click(screen.getByTestId('settings-save'));
    await waitFor(() => expect(calls.some((call) => call.startsWith(`PUT ${settingsPath}`))).toBe(true));
    expect(JSON.parse(calls.find((call) => call.startsWith(`PUT ${settingsPath}`))!.slice(`PUT ${settingsPath} `.length))).toEqual({
      poolFullPercent: 85,
      webhookUrl: 'https://hooks.example/t',
      sessionDefaults: { rpoTargetSeconds: null, linkDownSeconds: 30, backlogPercent: 80, enabled: true },
    });
  });
});

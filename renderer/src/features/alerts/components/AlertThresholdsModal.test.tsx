import { fireEvent, screen, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { SessionAlertThresholdsView } from '@tandem/contract';
import { renderWithBackend } from '../../../test/render.tsx';
import { AlertThresholdsModal, thresholdsRequest } from './AlertThresholdsModal.tsx';

const view: SessionAlertThresholdsView = {
  session: 'gold',
  own: { rpoTargetSeconds: null, linkDownSeconds: 10, backlogPercent: null, enabled: null },
  effective: { rpoTargetSeconds: null, linkDownSeconds: 10, backlogPercent: 80, enabled: true },
};
const path = '/api/sites/agent-a/sessions/gold/alert-thresholds';
const input = (testId: string) => screen.getByTestId(testId) as HTMLInputElement;

describe('thresholdsRequest', () => {
  it('turns the form into the request: empty fields reset to the default, out-of-range values are errors', () => {
    expect(thresholdsRequest({ rpoTargetSeconds: 60, linkDownSeconds: '', backlogPercent: 90, enabled: 'off' })).toEqual({
      request: { rpoTargetSeconds: 60, linkDownSeconds: null, backlogPercent: 90, enabled: false },
      errors: {},
    });
    const bad = thresholdsRequest({ rpoTargetSeconds: -5, linkDownSeconds: 0, backlogPercent: 150, enabled: 'default' });
    expect(bad.request).toBeNull();
    expect(bad.errors).toEqual({
      rpoTargetSeconds: 'rpoTargetSeconds must be above 0 seconds',
      linkDownSeconds: 'linkDownSeconds must be above 0 seconds',
      backlogPercent: 'backlogPercent is at most 100 %',
    });
  });
});

describe('AlertThresholdsModal', () => {
  it('shows the session\'s thresholds, refuses a negative RPO target before sending, then saves', async () => {
    const calls: string[] = [];
    renderWithBackend(<AlertThresholdsModal session="gold" sites={[{ siteId: 'agent-a', siteName: 'alpha' }]} onClose={() => {}} />, {
      [`GET ${path}`]: [200, view],
      [`PUT ${path}`]: [200, { ...view, own: { ...view.own, rpoTargetSeconds: 30 }, effective: { ...view.effective, rpoTargetSeconds: 30 } }],
    }, calls);
    await waitFor(() => expect(input('threshold-link-down').value).toBe('10'));
    expect(input('threshold-rpo').value).toBe('');
    expect(screen.getByTestId('threshold-effective')).toHaveTextContent('In effect at alpha: RPO target none, link down after 10 s, backlog at 80 %, alerts on.');
    fireEvent.change(input('threshold-rpo'), { target: { value: '-5' } });
    expect(await screen.findByText('rpoTargetSeconds must be above 0 seconds')).toBeInTheDocument();
    expect(screen.getByTestId('threshold-save')).toBeDisabled();
    fireEvent.change(input('threshold-rpo'), { target: { value: '30' } });
    await waitFor(() => expect(screen.getByTestId('threshold-save')).not.toBeDisabled());
    fireEvent.click(screen.getByTestId('threshold-save'));
    await waitFor(() => expect(calls.some((call) => call.startsWith(`PUT ${path}`))).toBe(true));
    const body = JSON.parse(calls.find((call) => call.startsWith(`PUT ${path}`))!.slice(`PUT ${path} `.length)) as unknown;
    expect(body).toEqual({ rpoTargetSeconds: 30, linkDownSeconds: 10, backlogPercent: null, enabled: null });
  });

  it('shows the agent\'s refusal with its problem code', async () => {
    renderWithBackend(<AlertThresholdsModal session="gold" sites={[{ siteId: 'agent-a', siteName: 'alpha' }]} onClose={() => {}} />, {
      [`GET ${path}`]: [200, view],
      [`PUT ${path}`]: [404, { problem: 'not-found', message: 'no session gold' }],
    });
    await waitFor(() => expect(input('threshold-link-down').value).toBe('10'));
    fireEvent.click(screen.getByTestId('threshold-save'));
    expect(await screen.findByText('no session gold')).toBeInTheDocument();
    expect(screen.getByTestId('problem')).toHaveTextContent('not-found');
  });
});

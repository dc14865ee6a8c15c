import { screen, within } from '@testing-library/react';
import { volumeFixture } from '../../../test/fixtures.ts';
import { useFlashUi } from '../hooks/flash-ui-store.ts';
import { FlashWizardHost } from './FlashWizardHost.tsx';
import { describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { alpha, beta } from '../../sessions/hooks/session-fixtures.test-helpers.ts';
import { flashPairFixture, flashSessionFixture } from '../hooks/flash-fixtures.test-helpers.ts';
import { FlashSessionsSection } from './FlashSessionsSection.tsx';

/** Flash copy gated by the console's role at the flash session's site. */
const nightly = flashSessionFixture({ pairs: [flashPairFixture()] });
const done = flashSessionFixture({ name: 'weekly', pairs: [flashPairFixture({ id: 'fp9', source: 'logs', target: 'logs-pit' })] });

function routes(roles: { alpha: string; beta: string }) {
  return {
    'GET /api/sites': [200, { sites: [{ ...alpha, role: roles.alpha }, { ...beta, role: roles.beta }] }],
    'GET /api/sites/agent-a/flash-sessions': [200, { sessions: [nightly] }],
    'GET /api/sites/agent-b/flash-sessions': [200, { sessions: [done] }],
  } as Record<string, [number, unknown]>;
}

describe('flash copy by role', () => {
  it('a monitor site shows no flash actions and says why; an operator site offers them', async () => {
    renderWithBackend(<FlashSessionsSection />, routes({ alpha: 'monitor', beta: 'operator' }));
    const watched = await screen.findByTestId('flash-card-nightly');
    expect(await within(watched).findByTestId('role-note')).toHaveTextContent('Needs the operator role; this console is paired with alpha as monitor.');
    expect(within(watched).queryByRole('button', { name: 'Reverse restore…' })).toBeNull();
    const operated = await screen.findByTestId('flash-card-weekly');
    expect(within(operated).queryByTestId('role-note')).toBeNull();
    expect(within(operated).getByRole('button', { name: 'Reverse restore…' })).not.toBeDisabled();
    // Flash copy… may go to beta, where the role allows it.
    expect(screen.getByRole('button', { name: 'Flash copy…' })).not.toBeDisabled();
  });

  it('Flash copy… is disabled with the reason when no site allows it', async () => {
    renderWithBackend(<FlashSessionsSection />, routes({ alpha: 'monitor', beta: 'monitor' }));
    await screen.findByTestId('flash-card-nightly');
    expect(await screen.findByRole('button', { name: 'Flash copy…' })).toBeDisabled();
    expect(screen.getByLabelText('Needs the operator role at a site; this console is paired as monitor at every site.')).toBeInTheDocument();
  });

  it('the wizard offers only sites where the role allows a flash copy, starting at one', async () => {
    useFlashUi.getState().openWizard();
    renderWithBackend(<FlashWizardHost />, {
      ...routes({ alpha: 'monitor', beta: 'operator' }),
      'GET /api/sites/agent-b/volumes': [200, { volumes: [volumeFixture('logs')] }],
      'GET /api/sites/agent-b/sessions': [200, { sessions: [] }],
    });
    const dialog = await screen.findByRole('dialog', { name: 'Flash copy' });
    const site = within(dialog).getByLabelText('Site', { exact: false }) as HTMLSelectElement;
    await expect.poll(() => site.value).toBe('agent-b');
    const refused = [...site.options].find((option) => option.value === 'agent-a')!;
    expect(refused.disabled).toBe(true);
    expect(refused.textContent).toContain('needs the operator role');
    useFlashUi.getState().closeWizard();
  });
});

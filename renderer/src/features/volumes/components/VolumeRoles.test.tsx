import { fireEvent, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { siteFixture, volumeFixture } from '../../../test/fixtures.ts';
import { VolumesPage } from './VolumesPage.tsx';

const volumes = { volumes: [volumeFixture('db')] };

async function openMenu() {
  const row = await screen.findByTestId('volume-row-db');
  fireEvent.click(within(row).getByRole('button', { name: 'Actions for db' }));
}

describe('volumes by role', () => {
  it('monitor: creating, snapshots, flash copy, resize and delete are disabled, each saying the role it needs', async () => {
    const site = siteFixture({ site: 'primary', role: 'monitor' });
    renderWithBackend(<VolumesPage site={site} />, { 'GET /api/sites/agent-1/volumes': [200, volumes] });
    await openMenu();
    const needsAdministrator = 'Needs the administrator role; this console is paired with primary as monitor.';
    expect(screen.getByRole('button', { name: 'Create volume' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Create volume' }).closest('[data-testid="role-gated"]')?.getAttribute('aria-label')).toBe(needsAdministrator);
    // The site's alert settings (the webhook) are the administrator's too.
    expect(screen.getByRole('button', { name: 'Alert settings…' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Alert settings…' }).closest('[data-testid="role-gated"]')?.getAttribute('aria-label')).toBe(needsAdministrator);
    const remove = await screen.findByRole('menuitem', { name: /Delete/ });
    expect(remove).toBeDisabled();
    expect(remove).toHaveTextContent('Needs the administrator role; this console is paired with primary as monitor.');
    expect(screen.getByRole('menuitem', { name: /Take snapshot/ })).toHaveTextContent('Needs the operator role');
  });

  it('operator: takes snapshots and flash copies, but not resize or delete', async () => {
    const site = siteFixture({ site: 'primary', role: 'operator' });
    renderWithBackend(<VolumesPage site={site} />, { 'GET /api/sites/agent-1/volumes': [200, volumes] });
    await openMenu();
    expect(await screen.findByRole('menuitem', { name: 'Take snapshot' })).not.toBeDisabled();
    expect(screen.getByRole('menuitem', { name: 'Flash copy…' })).not.toBeDisabled();
    expect(screen.getByRole('menuitem', { name: /Resize/ })).toBeDisabled();
    expect(screen.getByRole('menuitem', { name: /Delete/ })).toHaveTextContent('Needs the administrator role; this console is paired with primary as operator.');
  });

  it('administrator: every action is enabled', async () => {
    renderWithBackend(<VolumesPage site={siteFixture({ role: 'administrator' })} />, { 'GET /api/sites/agent-1/volumes': [200, volumes] });
    await openMenu();
    expect(await screen.findByRole('menuitem', { name: 'Delete' })).not.toBeDisabled();
    expect(screen.getByRole('button', { name: 'Create volume' })).not.toBeDisabled();
  });
});

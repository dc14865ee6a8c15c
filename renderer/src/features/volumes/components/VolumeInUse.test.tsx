import { fireEvent, screen, within } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { useUiStore } from '../../../app/ui-store.ts';
import { volumeFixture } from '../../../test/fixtures.ts';
import { renderWithBackend } from '../../../test/render.tsx';
import { alpha, beta, pairFixture, sessionFixture } from '../../sessions/hooks/session-fixtures.test-helpers.ts';
import { mirrorRoles } from '../hooks/volume-dependents.ts';
import { VolumesPage } from './VolumesPage.tsx';

const gib = 1024 ** 3;
const gold = sessionFixture({ name: 'gold', role: 'h2', pairs: [pairFixture({ h1Volume: 'db', h2Volume: 'db-copy' })] });
const refusal = {
  problem: 'volume-busy',
  message: 'db-copy is the secondary (H2) volume of copy set db -> db-copy in session gold (prepared); remove it from session gold first (tandem-agent session remove gold db (at the session\'s H1 site), or tandem-agent session terminate gold), then delete it',
  detail: {
    dependents: [{ kind: 'copy-set', session: 'gold', sessionState: 'prepared', role: 'h2', h1Volume: 'db', h2Volume: 'db-copy', action: 'tandem-agent session remove gold db (at the session\'s H1 site)' }],
  },
};

function routes(extra: Record<string, [number, unknown]> = {}) {
  return {
    'GET /api/sites': [200, { sites: [alpha, beta] }],
    'GET /api/sites/agent-b/volumes': [200, { volumes: [volumeFixture('db-copy', { sizeBytes: gib }), volumeFixture('scratch', { sizeBytes: gib })] }],
    'GET /api/sites/agent-b/flash-sessions': [200, { sessions: [] }],
    'GET /api/sites/agent-b/sessions': [200, { sessions: [gold] }],
    'DELETE /api/sites/agent-b/volumes/db-copy': [409, refusal],
    'DELETE /api/sites/agent-a/sessions/gold/pairs/db': [204, undefined],
    ...extra,
  } as Record<string, [number, unknown]>;
}

async function openDelete(volume: string) {
  fireEvent.click(await screen.findByRole('button', { name: `Actions for ${volume}` }));
  fireEvent.click(await screen.findByRole('menuitem', { name: 'Delete' }));
  return screen.findByRole('dialog', { name: `Delete volume ${volume}?` });
}

describe('a volume something depends on', () => {
  beforeEach(() => useUiStore.setState({ selectedSiteId: 'agent-b', selectedVolume: null, sessionsOpen: false, focusedSession: null }));

  it('shows its mirror role in the volume table', async () => {
    renderWithBackend(<VolumesPage site={beta} />, routes());
    const row = await screen.findByTestId('volume-row-db-copy');
    expect(await within(row).findByTestId('mirror-role-h2')).toHaveTextContent('H2 of gold ← alpha');
    expect(within(screen.getByTestId('volume-row-scratch')).queryByTestId('mirror-role-h2')).toBeNull();
  });

  it('a refused delete names the dependents and offers the step first: remove from the session at its H1 site', async () => {
    const calls: string[] = [];
    renderWithBackend(<VolumesPage site={beta} />, routes(), calls);
    await within(await screen.findByTestId('volume-row-db-copy')).findByTestId('mirror-role-h2');
    const dialog = await openDelete('db-copy');
    // Said before anything is tried.
    expect(within(dialog).getByTestId('volume-in-use')).toHaveTextContent('It is the secondary (H2) volume of copy set db → db-copy in session gold (prepared).');
    fireEvent.change(within(dialog).getByLabelText('Name'), { target: { value: 'db-copy' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Delete db-copy' }));
    expect(await within(dialog).findByTestId('volume-busy-message')).toHaveTextContent('remove it from session gold first');
    expect(within(dialog).getByTestId('volume-in-use')).toHaveTextContent('the agent refused to delete it');
    // Not a bare error: the refusal comes with its step.
    expect(within(dialog).queryByTestId('problem')).toBeNull();
    await expect.poll(() => within(dialog).getByRole('button', { name: 'Remove from session gold first' }).hasAttribute('disabled')).toBe(false);
    fireEvent.click(within(dialog).getByRole('button', { name: 'Remove from session gold first' }));
    expect(await within(dialog).findByTestId('dependent-removed')).toHaveTextContent('Removed from session gold');
    // At the session's H1 site, by the copy set's H1 volume.
    expect(calls).toContain('DELETE /api/sites/agent-a/sessions/gold/pairs/db');
  });

  it('offers to open the session instead, at its own URL', async () => {
    renderWithBackend(<VolumesPage site={beta} />, routes());
    await within(await screen.findByTestId('volume-row-db-copy')).findByTestId('mirror-role-h2');
    const dialog = await openDelete('db-copy');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Open session gold' }));
    expect(useUiStore.getState()).toMatchObject({ sessionsOpen: true, focusedSession: 'gold' });
    expect(window.location.hash).toBe('#/sessions/gold');
  });

  it('the last copy set of a started session cannot be removed: the refusal says to terminate the session instead', async () => {
    renderWithBackend(
      <VolumesPage site={beta} />,
      routes({ 'DELETE /api/sites/agent-a/sessions/gold/pairs/db': [409, { problem: 'invalid-state', message: 'db is the last copy set of started session gold; terminate it instead' }] }),
    );
    await within(await screen.findByTestId('volume-row-db-copy')).findByTestId('mirror-role-h2');
    const dialog = await openDelete('db-copy');
    // Enabled once the console knows the session's H1 site (alpha) is connected.
    await expect.poll(() => within(dialog).getByRole('button', { name: 'Remove from session gold first' }).hasAttribute('disabled')).toBe(false);
    fireEvent.click(within(dialog).getByRole('button', { name: 'Remove from session gold first' }));
    await expect.poll(() => within(dialog).queryByTestId('problem')?.textContent ?? '').toMatch(/terminate it instead/);
    expect(within(dialog).getByText(/open the session and terminate it/)).toBeInTheDocument();
  });
});

describe('mirrorRoles', () => {
  it('a multi-primary control agent lists only its own primary volumes; a target all its copies', () => {
    const controlAgent = sessionFixture({ type: 'async', h2Site: 'charlie', pairs: [pairFixture({ id: 'pa', h1Volume: 'a', h2Volume: 'a2' }), pairFixture({ id: 'pb', h1Volume: 'b', h2Volume: 'b2', primarySite: 'bravo' })] });
    expect([...mirrorRoles([controlAgent], 'alpha').keys()]).toEqual(['a']);
    expect(mirrorRoles([controlAgent], 'alpha').get('a')?.[0]).toMatchObject({ role: 'h1', otherSite: 'charlie', otherVolume: 'a2' });
    const target = { ...controlAgent, role: 'h2' as const };
    expect([...mirrorRoles([target], 'charlie').keys()]).toEqual(['a2', 'b2']);
    expect(mirrorRoles([target], 'charlie').get('b2')?.[0]).toMatchObject({ role: 'h2', otherSite: 'bravo', otherVolume: 'b' });
  });
});

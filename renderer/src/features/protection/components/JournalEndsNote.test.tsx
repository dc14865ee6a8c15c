import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import type { JournalView, SessionInfo } from '@tandem/contract';
import { describe, expect, it } from 'vitest';
import { renderWithBackend, type FakeRoutes } from '../../../test/render.tsx';
import { alpha, beta, pairFixture, sessionFixture } from '../../sessions/hooks/session-fixtures.test-helpers.ts';
import { mergeSessions } from '../../sessions/hooks/session-model.ts';
import { SessionCard } from '../../sessions/components/SessionCard.tsx';
import { journalViewFixture } from '../journal-fixtures.test-helpers.ts';
import { journalKeys } from '../api/journal-keys.ts';

const view: JournalView = journalViewFixture('orders', Date.now());

/** A prepared session alpha -> beta as both sites report it, its card's Recover opened. */
async function openRecover(journal: FakeRoutes[string]) {
  const atSource: SessionInfo = sessionFixture({ pairs: [pairFixture()] });
  const [entry] = mergeSessions([
    { siteId: alpha.id, siteName: 'alpha', sessions: [atSource] },
    { siteId: beta.id, siteName: 'beta', sessions: [{ ...atSource, role: 'h2' }] },
  ]);
  const { queryClient } = renderWithBackend(<SessionCard entry={entry} />, {
    'GET /api/sites': [200, { sites: [alpha, beta] }],
    [`GET /api/sites/${beta.id}/sessions/orders/journal`]: journal,
  });
  fireEvent.click(within(screen.getByTestId('session-card-orders')).getByRole('button', { name: 'Recover (failover)…' }));
  return { dialog: await screen.findByRole('dialog'), queryClient };
}

describe('a plain failover of a session whose target keeps a journal', () => {
  it('says the journal ends with it (its points and bookmarks) and where to recover at an earlier point instead', async () => {
    const { dialog } = await openRecover([200, view]);
    const note = await within(dialog).findByTestId('journal-ends');
    expect(note).toHaveTextContent('The journal at beta ends with this failover');
    expect(note).toHaveTextContent('Its 120 points and 1 bookmark go, and the volumes at beta keep their newest image.');
    expect(note).toHaveTextContent('use Recover production under Protection');
  });

  it('says nothing of a journal when the target has none', async () => {
    const { dialog, queryClient } = await openRecover([404, { problem: 'not-found', message: 'session orders has no journal' }]);
    expect(within(dialog).getByTestId('action-consequence')).toHaveTextContent('Recover makes the copy volumes writable at beta');
    // The target was asked and its 404 is in (the query settled as an error): still no note.
    await waitFor(() => expect(queryClient.getQueryState(journalKeys.view(beta.id, 'orders'))?.status).toBe('error'));
    expect(within(dialog).queryByTestId('journal-ends')).toBeNull();
  });
});

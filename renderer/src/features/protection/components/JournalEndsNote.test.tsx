import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import type { JournalView, SessionInfo } from '@tandem/contract';
import { describe, expect, it } from 'vitest';
import { renderWithBackend, type FakeRoutes } from '../../../test/render.tsx';
import { alpha, beta, pairFixture, sessionFixture } from '../../sessions/hooks/session-fixtures.test-helpers.ts';
import { mergeSessions } from '../../sessions/hooks/session-model.ts';
import { SessionCard } from '../../sessions/components/SessionCard.tsx';
import { journalViewFixture } from '../journal-fixtures.test-helpers.ts';

const view: JournalView = journalViewFixture('orders', Date.now());

/** A prepared session alpha -> beta as both sites report it, its card's Recover opened. */
async function openRecover(journal: FakeRoutes[string], calls: string[] = []) {
  const atSource: SessionInfo = sessionFixture({ pairs: [pairFixture()] });
  const [entry] = mergeSessions([
    { siteId: alpha.id, siteName: 'alpha', sessions: [atSource] },
    { siteId: beta.id, siteName: 'beta', sessions: [{ ...atSource, role: 'h2' }] },
  ]);
  renderWithBackend(<SessionCard entry={entry} />, {
    'GET /api/sites': [200, { sites: [alpha, beta] }],
    [`GET /api/sites/${beta.id}/sessions/orders/journal`]: journal,
  }, calls);
  fireEvent.click(within(screen.getByTestId('session-card-orders')).getByRole('button', { name: 'Recover (failover)…' }));
  return screen.findByRole('dialog');
}

describe('a plain failover of a session whose target keeps a journal', () => {
  it('says the journal ends with it (its points and bookmarks) and where to recover at an earlier point instead', async () => {
    const dialog = await openRecover([200, view]);
    const note = await within(dialog).findByTestId('journal-ends');
    expect(note).toHaveTextContent('The journal at beta ends with this failover');
    expect(note).toHaveTextContent('Its 120 points and 1 bookmark go, and the volumes at beta keep their newest image.');
    expect(note).toHaveTextContent('use Recover production under Protection');
  });

  it('says nothing of a journal when the target has none', async () => {
    const calls: string[] = [];
    const dialog = await openRecover([404, { problem: 'not-found', message: 'session orders has no journal' }], calls);
    expect(within(dialog).getByTestId('action-consequence')).toHaveTextContent('Recover makes the copy volumes writable at beta');
    // The target was asked (and answered 404 at once): still no note once its answer is in.
    await waitFor(() => expect(calls.some((call) => call.startsWith(`GET /api/sites/${beta.id}/sessions/orders/journal`))).toBe(true));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(within(dialog).queryByTestId('journal-ends')).toBeNull();
  });
});

import { fireEvent, screen, within } from '@testing-library/react';
import type { SessionInfo } from '@tandem/contract';
import { describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { alpha, beta, pairFixture, sessionFixture } from '../hooks/session-fixtures.test-helpers.ts';
import { mergeSessions } from '../hooks/session-model.ts';
import { SessionCard } from './SessionCard.tsx';

const reason = 'initial copy not complete: recovered (or still copying) before it joined the consistency group';

/** The card as both sites report it: only the target (beta) knows which copy set is not consistent. */
function renderCard(atSource: SessionInfo, atTarget: SessionInfo) {
  const [entry] = mergeSessions([
    { siteId: alpha.id, siteName: 'alpha', sessions: [atSource] },
    { siteId: beta.id, siteName: 'beta', sessions: [atTarget] },
  ]);
  renderWithBackend(<SessionCard entry={entry} />, { 'GET /api/sites': [200, { sites: [alpha, beta] }] });
  return screen.getByTestId(`session-card-${atSource.name}`);
}

describe('SessionCard: copy sets that are not consistent', () => {
  it('after a failover while a copy set joined: a "not consistent" badge with the reason in words on that copy set, and a warning line on the card', () => {
    const db = pairFixture({ state: 'target-available' });
    const log = pairFixture({ id: 'p2', h1Volume: 'log', h2Volume: 'log-copy', state: 'target-available', outOfSyncTracks: 90 });
    const atSource = sessionFixture({ state: 'target-available', pairs: [db, log] });
    const atTarget = sessionFixture({ state: 'target-available', role: 'h2', pairs: [db, { ...log, consistent: false, inconsistentReason: reason }] });
    const card = renderCard(atSource, atTarget);

    const logRow = within(card).getByTestId('pair-row-log');
    const badge = within(logRow).getByTestId('pair-inconsistent');
    expect(badge).toHaveTextContent('not consistent');
    // The reason is text on the row, not only a tooltip.
    expect(badge).toHaveTextContent(reason);
    expect(within(within(card).getByTestId('pair-row-db')).queryByTestId('pair-inconsistent')).toBeNull();

    const warning = within(card).getByTestId('inconsistent-warning');
    expect(warning).toHaveTextContent(
      'Copy set log → log-copy at beta was still in its initial copy when you failed over: its target beta:log-copy is not a consistent image',
    );
    expect(warning).toHaveTextContent(reason);
    expect(warning).not.toHaveTextContent('db → db-copy');
  });

  it('names the primary site of a member copy set (multi-primary)', () => {
    const a = pairFixture({ id: 'pa', h1Volume: 'a', h2Volume: 'a2', state: 'target-available' });
    const b = pairFixture({ id: 'pb', h1Volume: 'b', h2Volume: 'b2', state: 'target-available', primarySite: 'gamma' });
    const atSource = sessionFixture({ type: 'async', state: 'target-available', pairs: [a, b] });
    const atTarget = sessionFixture({ type: 'async', state: 'target-available', role: 'h2', pairs: [a, { ...b, consistent: false, inconsistentReason: reason }] });
    const card = renderCard(atSource, atTarget);
    expect(within(card).getByTestId('inconsistent-warning')).toHaveTextContent('Copy set b → b2 at beta (primary at gamma) was still in its initial copy when you failed over');
  });

  it('while the copy set still joins: the badge shows, no failover warning on the card, and Recover warns in advance', async () => {
    const db = pairFixture();
    const log = pairFixture({ id: 'p2', h1Volume: 'log', h2Volume: 'log-copy', state: 'syncing', syncedPercent: 30, outOfSyncTracks: 100 });
    const atSource = sessionFixture({ state: 'preparing', detail: 'copy set log -> log-copy joining', pairs: [db, log] });
    const atTarget = sessionFixture({ state: 'preparing', role: 'h2', pairs: [db, { ...log, consistent: false, inconsistentReason: reason }] });
    const card = renderCard(atSource, atTarget);
    expect(within(within(card).getByTestId('pair-row-log')).getByTestId('pair-inconsistent')).toHaveTextContent('not consistent');
    expect(within(card).queryByTestId('inconsistent-warning')).toBeNull();

    fireEvent.click(within(card).getByRole('button', { name: 'Recover (failover)…' }));
    const dialog = await screen.findByRole('dialog');
    expect(dialog).toHaveTextContent(
      'Copy set log → log-copy is still syncing (30 % copied): after the failover its target beta:log-copy is not a consistent image. Wait until it is duplex if you can.',
    );
    expect(dialog).not.toHaveTextContent('Copy set db → db-copy');
  });

  it('a session whose copy sets all completed their initial copy shows no badge and no warning', async () => {
    const atSource = sessionFixture({ state: 'target-available', pairs: [pairFixture({ state: 'target-available' })] });
    const card = renderCard(atSource, { ...atSource, role: 'h2' });
    expect(within(card).queryByTestId('pair-inconsistent')).toBeNull();
    expect(within(card).queryByTestId('inconsistent-warning')).toBeNull();
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { ProblemError } from '@tandem/contract';
import { startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';

/**
 * A stopping agent closes its peer links before its catalog. A part that asks
 * for a link after that (a retry timer of a flash-mirror withdraw did) used to
 * get a new link that dialled and, once its catalog was closed, recorded
 * link.down into it from a redial timer: an uncaught "database connection is
 * not open" that ends the process.
 */
let sites: TwoSites | null = null;

afterEach(async () => {
  await sites?.close();
  sites = null;
});

describe('peer links while the agent stops', () => {
  it('a link asked for after the peer links closed never dials, records nothing and fails its calls with link-down', async () => {
    sites = await startTwoSites();
    const { h1, h2 } = sites;
    const peerId = h2.engine.identity.agentId;
    const live = h1.replication.peers.link(peerId);
    await live.ready(10_000);
    expect(live.state).toBe('connected');

    h1.replication.peers.close();
    await waitFor(() => live.state === 'down', 10_000, 'the kept link closed');
    const eventsBefore = h1.engine.catalog.listEvents(0, 100_000, { newest: true }).at(-1)?.id ?? 0;

    const late = h1.replication.peers.link(peerId);
    expect(late).not.toBe(live);
    expect(late.state).toBe('down');
    const error = await late.call('volume.size', { name: 'copy' }).then(
      () => null,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(ProblemError);
    expect((error as ProblemError).problem).toBe('link-down');
    // h2 still listens: a link that dialled would be connecting or up by now; this one stays down and records nothing.
    expect(late.state).toBe('down');
    const after = h1.engine.catalog.listEvents(eventsBefore, 1000).filter((event) => event.type.startsWith('link.'));
    expect(after).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { liveReach } from '../../../lib/site-reach.ts';
import { linkVerdict, type LinkEnd } from './site-links-model.ts';

const lost = { live: false, unknownSince: '2026-01-01T00:00:00.000Z', reason: 'unreachable, reconnecting' };
const end = (site: string, link: 'connected' | 'connecting' | 'down' | null, reach = liveReach): LinkEnd => ({
  site,
  peer: link ? { agentId: site, site: 'other', linkAddress: 'x:1', apiAddress: null, caFingerprint: 'AA', pairedAt: '2026-01-01T00:00:00.000Z', link } : null,
  reach,
  known: true,
  receivedAt: 1,
});

describe('linkVerdict', () => {
  it('is connected only when a live end says so and no live end says otherwise', () => {
    expect(linkVerdict([end('a', 'connected'), end('b', 'connected')])).toBe('connected');
    expect(linkVerdict([end('a', 'connected'), end('b', 'down')])).toBe('down');
    expect(linkVerdict([end('a', 'connecting'), end('b', 'connected', lost)])).toBe('connecting');
  });

  it('is unknown when no end is live, whatever they said last', () => {
    expect(linkVerdict([end('a', 'connected', lost), end('b', 'connected', lost)])).toBe('unknown');
    expect(linkVerdict([end('a', null), end('b', 'connected', lost)])).toBe('unknown');
  });
});

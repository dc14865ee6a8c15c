import { describe, expect, it } from 'vitest';
import { isPeerMethod, PEER_PROTOCOL_VERSION, peerMethodNames, peerMethods, peerProtocolMajor, PeerProtocolVersionSchema } from './peer.ts';

describe('the peer protocol table', () => {
  it('has a version of the form major.minor', () => {
    expect(PeerProtocolVersionSchema.safeParse(PEER_PROTOCOL_VERSION).success).toBe(true);
    expect(peerProtocolMajor('3.14')).toBe(3);
    expect(PeerProtocolVersionSchema.safeParse('1').success).toBe(false);
  });

  it('knows its methods by own name only', () => {
    expect(peerMethodNames.length).toBeGreaterThan(45);
    for (const name of peerMethodNames) expect(isPeerMethod(name)).toBe(true);
    for (const name of ['constructor', '__proto__', 'toString', '', 'pair', 42, null]) expect(isPeerMethod(name)).toBe(false);
  });

  it('has every stream method name the run it belongs to', () => {
    const stream = peerMethodNames.filter((name) => (peerMethods[name] as { stream?: true }).stream);
    expect(stream.sort()).toEqual(['cg.stage', 'pair.flush', 'pair.trim', 'pair.write', 'ship.begin', 'ship.chunk', 'ship.commit']);
    for (const name of stream) {
      const without = peerMethods[name].params.safeParse({ session: 's', pair: 'p' });
      expect(without.success).toBe(false);
      expect(without.error!.issues.some((issue) => issue.path[0] === 'run')).toBe(true);
    }
  });

  it('names the offending field of malformed parameters', () => {
    const result = peerMethods['pair.write'].params.safeParse({ pair: 'p', run: 'r', offset: 1.5, ack: 'durable' });
    expect(result.success).toBe(false);
    expect(result.error!.issues[0].path).toEqual(['offset']);
    const op = peerMethods['flash.mirror'].params.safeParse({ op: 'explode', token: 't' });
    expect(op.error!.issues[0].path).toEqual(['op']);
  });

  it('keeps only the fields a schema lists', () => {
    const parsed = peerMethods['volume.size'].params.parse({ name: 'v', extra: true });
    expect(parsed).toEqual({ name: 'v' });
  });
});

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EventListSchema,
  isPeerMethod,
  PEER_PROTOCOL_VERSION,
  peerMethodNames,
  peerMethods,
  peerProtocolMajor,
  PeerListSchema,
  VerifyReportSchema,
  type PeerInfo,
} from '@tandem/contract';
import { PeerLinkClient, splitHostPort, type LinkCredentials, type PeerRecord } from '../src/replication/link/peer-link.ts';
import { RpcConnection } from '../src/replication/link/rpc-connection.ts';
import { certificateFingerprint } from '../src/tls/fingerprint.ts';
import { pairAgents, startAgentProcess, startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { NbdBlockClient } from './helpers/nbd-block-client.ts';
import { sessionPath, showSession, startOneCopySet, until, untilDrained } from './helpers/session-api.ts';

/**
 * The typed peer protocol (contract/src/peer.ts) with real agent processes.
 * A fuzzer dials beta's peer link with alpha's own peer certificate (so beta
 * takes it for alpha, as it would a buggy or hostile alpha) and sends
 * seeded random calls: unknown methods, parameters of the wrong shape or
 * type, payloads missing or unexpected, malformed request metadata. Each is
 * answered with the problem the contract predicts (`not-supported`,
 * `bad-request` naming the method and field; a call the schema accepts may
 * be refused by its handler, never with `internal-error`), the connection
 * stays up, and alpha's mirroring to beta keeps working (writes through
 * NBD, verified by segment codes). Then the handshake: a peer that sends
 * requests without `peer.hello`, or a hello of another major version (an
 * older 1.x one included), is refused `peer-version` naming both versions; an agent started with
 * another major version is refused by its paired site, the refusal is in
 * the link state (`linkProblem`) and the events at both ends, and calls to
 * it fail with it.
 */

const MiB = 1024 * 1024;
let alpha: AgentProcess;
let beta: AgentProcess;
const logger = pino({ level: process.env.TANDEM_TEST_LOG ?? 'silent' });

beforeAll(async () => {
  [alpha, beta] = await startPairedAgents([{ site: 'alpha' }, { site: 'beta' }]);
  await startOneCopySet(alpha, beta, { name: 'fz', type: 'sync', h2Site: 'beta', volume: 'p', copy: 'c', sizeMiB: 16 });
  await until('fz prepared', async () => (await showSession(alpha, 'fz')).state === 'prepared', 60_000);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
});

const peersOf = async (agent: AgentProcess): Promise<PeerInfo[]> => (await agent.api.call('GET', '/v1/peers', PeerListSchema)).peers;

/** Alpha's peer-link client credentials and beta as alpha knows it: what alpha's own link presents and pins. */
async function alphaTowardBeta(): Promise<{ record: PeerRecord; credentials: LinkCredentials }> {
  const tlsDir = (agent: AgentProcess) => path.join(agent.dataDir, 'tls');
  const [certificatePem, keyPem, caPem, betaCa] = await Promise.all([
    readFile(path.join(tlsDir(alpha), 'peer.pem'), 'utf8'),
    readFile(path.join(tlsDir(alpha), 'peer-key.pem'), 'utf8'),
    readFile(path.join(tlsDir(alpha), 'ca.pem'), 'utf8'),
    readFile(path.join(tlsDir(beta), 'ca.pem'), 'utf8'),
  ]);
  const betaPeer = (await peersOf(alpha)).find((peer) => peer.site === 'beta')!;
  return {
    record: {
      agentId: betaPeer.agentId,
      site: 'beta',
      caPem: betaCa,
      caFingerprint: certificateFingerprint(betaCa),
      linkAddress: beta.runInfo.linkAddress!,
    },
    credentials: { certificatePem, keyPem, caPem },
  };
}

/** A connection to beta's peer link that never greets: an agent of an older peer protocol. */
async function ungreetedConnection(): Promise<RpcConnection> {
  const { record, credentials } = await alphaTowardBeta();
  const { host, port } = splitHostPort(record.linkAddress);
  const socket = tls.connect({
    host,
    port,
    cert: credentials.certificatePem,
    key: credentials.keyPem,
    ca: [record.caPem],
    minVersion: 'TLSv1.3',
    checkServerIdentity: () => undefined,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  return new RpcConnection(socket, { peerAgentId: record.agentId, heartbeatMs: 1000, deadAfterMs: 10_000, onClose: () => {} });
}

async function refusal(call: Promise<unknown>): Promise<{ problem: string; message: string }> {
  return call.then(
    () => ({ problem: 'answered', message: '' }),
    (error: { problem?: string; message: string }) => ({ problem: error.problem ?? 'no-problem-code', message: error.message }),
  );
}

/** Seeded generator (same approach as the NBD fuzz): reproducible runs. */
function seeded(seed: number) {
  let state = seed >>> 0;
  const random = (limit: number): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return Math.floor((state / 0x1_0000_0000) * limit);
  };
  const pick = <T>(items: readonly T[]): T => items[random(items.length)];
  return { random, pick };
}

/** Field names the peer methods use, so random parameters hit real fields as often as not. */
const FIELDS = [
  'session', 'pair', 'run', 'offset', 'length', 'ack', 'fua', 'zeroes', 'tracks', 'settle', 'track', 'which', 'record',
  'epoch', 'group', 'time', 'entries', 'cycle', 'round', 'committed', 'through', 'from', 'piece', 'last', 'reason',
  'name', 'action', 'options', 'direction', 'shipIntervalMs', 'op', 'token', 'kind', 'pairs', 'fixups', 'sessions',
  'cluster', 'limit', 'commit', 'trigger', 'apply', 'newcomer', 'member', 'version',
] as const;

describe('the peer protocol between two agents', () => {
  it('answers malformed and unknown peer calls with problem codes; the link and mirroring keep working', async () => {
    const { record, credentials } = await alphaTowardBeta();
    const fuzzer = new PeerLinkClient(record, credentials, logger);
    try {
      const session = await showSession(alpha, 'fz');
      const realPair = session.pairs[0].id;
      const realSession = session.id;

      // Targeted: validation runs before anything else (the stream fence, the handler), naming the method and field.
      const badOffset = await refusal(
        fuzzer.callUnchecked('pair.write', { pair: realPair, run: 'r', offset: -1, ack: 'durable' }, Buffer.alloc(512), { waitForLinkMs: 10_000 }),
      );
      expect(badOffset.problem).toBe('bad-request');
      expect(badOffset.message).toMatch(/^peer request pair\.write: offset: /);
      const noPayload = await refusal(fuzzer.callUnchecked('pair.write', { pair: realPair, run: 'r', offset: 0, ack: 'durable' }));
      expect(noPayload).toMatchObject({ problem: 'bad-request' });
      expect(noPayload.message).toMatch(/pair\.write.*payload/);
      const badRecord = await refusal(fuzzer.callUnchecked('session.put', { record: { id: realSession, name: 'x' } }));
      expect(badRecord.problem).toBe('bad-request');
      expect(badRecord.message).toMatch(/^peer request session\.put: record\.type: /);
      const badOp = await refusal(fuzzer.callUnchecked('flash.mirror', { op: 'explode', token: 't' }));
      expect(badOp).toMatchObject({ problem: 'bad-request' });
      expect(badOp.message).toMatch(/^peer request flash\.mirror: op: /);
      const unknown = await refusal(fuzzer.callUnchecked('pair.obliterate', { pair: realPair }));
      expect(unknown).toEqual({ problem: 'not-supported', message: 'unknown peer request pair.obliterate' });
      const notAMethod = await refusal(fuzzer.callUnchecked(42 as unknown as string, {}));
      expect(notAMethod.problem).toBe('bad-request');
      const notParams = await refusal(fuzzer.callUnchecked('volume.size', 'c' as unknown as Record<string, unknown>));
      expect(notParams.problem).toBe('bad-request');
      // A well-formed call is served on the same connection.
      expect((await fuzzer.call('volume.size', { name: 'c' })).result).toEqual({ sizeBytes: 16 * MiB });

      // Seeded random calls; the contract's schemas are the oracle for what each must be answered.
      const { random, pick } = seeded(0x9ee7_5eed);
      const ids = ['', 'x', realPair, realSession, 'not-a-pair', '\u0000', 'ü'.repeat(3)];
      const value = (depth: number): unknown => {
        switch (random(depth > 2 ? 7 : 10)) {
          case 0: return pick(ids);
          case 1: return random(2) === 0 ? random(1 << 20) : pick([-1, 0.5, 2 ** 60, Number.MAX_SAFE_INTEGER, -0]);
          case 2: return random(2) === 0;
          case 3: return null;
          case 4: return pick(['arrival', 'durable', 'perform', 'cancel', 'withdraw', 'sync-point', 'h1-h2', 'out-of-sync', 'start', 'write', '1.0', '2.0']);
          case 5: return String.fromCharCode(...Array.from({ length: random(12) }, () => 32 + random(200)));
          case 6: return random(1 << 16);
          case 7: return Array.from({ length: random(4) }, () => value(depth + 1));
          case 8: return params(depth + 1);
          default: return Array.from({ length: random(3) }, () => random(100));
        }
      };
      const params = (depth: number): Record<string, unknown> => {
        const out: Record<string, unknown> = {};
        for (let i = random(7); i > 0; i--) out[pick(FIELDS)] = value(depth);
        return out;
      };
      const methods = [...peerMethodNames, 'pair.nope', 'mp.', 'constructor', '__proto__', 'toString', ''];
      const counts = { sent: 0, skipped: 0, badRequest: 0, notSupported: 0, servedOrRefused: 0 };
      for (let i = 0; i < 400; i++) {
        const method = pick(methods);
        const sent = random(8) === 0 ? value(3) : params(0);
        const payload = random(3) === 0 ? Buffer.alloc(1 + random(4096), i & 0xff) : null;
        const known = isPeerMethod(method);
        const spec = known ? peerMethods[method] : null;
        const parsed = spec ? spec.params.safeParse(sent) : null;
        const payloadOk = spec ? !(spec.payload === 'required' && !payload) && !(spec.payload === 'none' && payload) : false;
        const valid = parsed?.success === true && payloadOk && typeof sent === 'object' && sent !== null && !Array.isArray(sent);
        // A valid call naming the real session or copy set would legitimately act on it (stop it, remove it): not sent.
        if (valid && JSON.stringify(sent).match(new RegExp(`${realPair}|${realSession}`))) {
          counts.skipped++;
          continue;
        }
        counts.sent++;
        const answer = await refusal(fuzzer.callUnchecked(method, sent as Record<string, unknown>, payload, { timeoutMs: 15_000 }));
        const context = `${i}: ${method} ${JSON.stringify(sent)?.slice(0, 300)} payload ${payload?.length ?? 0} -> ${answer.problem} ${answer.message}`;
        if (!known) {
          expect(answer.problem, context).toBe(typeof sent === 'object' && sent !== null ? 'not-supported' : 'bad-request');
          counts.notSupported++;
        } else if (!valid) {
          expect(answer.problem, context).toBe('bad-request');
          if (typeof sent === 'object' && sent !== null) expect(answer.message, context).toContain(`peer request ${method}`);
          counts.badRequest++;
        } else {
          expect(answer.problem, context).not.toBe('internal-error');
          expect(answer.problem, context).not.toBe('timeout');
          counts.servedOrRefused++;
        }
        expect(fuzzer.state, context).toBe('connected');
      }
      expect(counts.sent).toBeGreaterThan(300);
      expect(counts.badRequest).toBeGreaterThan(100);
      expect(counts.notSupported).toBeGreaterThan(10);
    } finally {
      fuzzer.close();
    }

    // Beta is still alive and alpha still mirrors to it: host writes through NBD, drained, identical by segment codes.
    expect((await showSession(beta, 'fz')).state).toBe('prepared');
    const host = await NbdBlockClient.connect(alpha.nbdHost, alpha.nbdPort, 'p');
    try {
      for (let block = 0; block < 32; block++) await host.write(block * 256 * 1024 + 4096 * (block % 7), Buffer.alloc(4096, block + 1));
    } finally {
      await host.close();
    }
    await untilDrained(alpha, 'fz', 'p', 60_000);
    const report = await alpha.api.call('POST', `${sessionPath('fz')}/verify`, VerifyReportSchema, {});
    expect(report.pairs[0].comparedTracks).toBeGreaterThan(0);
    expect(report.pairs[0].differingCount).toBe(0);
    expect(report.pairs[0].unverifiedCount).toBe(0);
  }, 240_000);

  it('refuses a peer that does not greet, or greets with another major version, naming both versions', async () => {
    const connection = await ungreetedConnection();
    try {
      const ungreeted = await refusal(connection.call('volume.size', { name: 'c' }));
      expect(ungreeted.problem).toBe('peer-version');
      expect(ungreeted.message).toContain('without the peer protocol handshake');
      expect(ungreeted.message).toContain(PEER_PROTOCOL_VERSION);
      const newer = `${peerProtocolMajor(PEER_PROTOCOL_VERSION) + 1}.0`;
      const other = await refusal(connection.call('peer.hello', { version: newer }));
      expect(other.problem).toBe('peer-version');
      expect(other.message).toContain(newer);
      expect(other.message).toContain(PEER_PROTOCOL_VERSION);
      // An agent of protocol 1.x (it may send whole consistency groups, `cg.apply`, which 2.0 no longer serves) is refused the same way.
      const older = '1.1';
      const old = await refusal(connection.call('peer.hello', { version: older }));
      expect(old.problem).toBe('peer-version');
      expect(old.message).toContain(`speaks peer protocol ${older}`);
      expect(old.message).toContain(PEER_PROTOCOL_VERSION);
      const garbled = await refusal(connection.call('peer.hello', { version: 'one' }));
      expect(garbled.problem).toBe('bad-request');
      // Still open: a hello of the same major version (a newer minor) is accepted, then calls are served.
      expect(connection.isOpen).toBe(true);
      const hello = await connection.call('peer.hello', { version: `${peerProtocolMajor(PEER_PROTOCOL_VERSION)}.99` });
      expect(hello.result).toEqual({ version: PEER_PROTOCOL_VERSION });
      expect((await connection.call('volume.size', { name: 'c' })).result).toEqual({ sizeBytes: 16 * MiB });
      // Protocol 1.x's whole consistency group is no method of 2.0: not-supported, and the connection stays up.
      const group = await refusal(connection.call('cg.apply', { session: 'x', run: 'r', epoch: 'e', group: 1, time: 1, entries: [] }));
      expect(group.problem).toBe('not-supported');
      expect((await connection.call('volume.size', { name: 'c' })).result).toEqual({ sizeBytes: 16 * MiB });
    } finally {
      connection.close();
    }
    const events = await beta.api.call('GET', '/v1/events?type=peer.refused&limit=100', EventListSchema);
    expect(events.events.some((event) => event.message.includes('without the peer protocol handshake'))).toBe(true);
  }, 60_000);

  it('an agent of another major version is refused by its paired site: link state, events and calls say why', async () => {
    const newer = `${peerProtocolMajor(PEER_PROTOCOL_VERSION) + 1}.0`;
    const charlie = await startAgentProcess({ site: 'charlie', env: { TANDEM_TEST_PEER_PROTOCOL_VERSION: newer } });
    try {
      await pairAgents(alpha, charlie);
      await alpha.api.call('POST', '/v1/volumes', null, { name: 'q', sizeBytes: 4 * MiB });
      await charlie.api.call('POST', '/v1/volumes', null, { name: 'q2', sizeBytes: 4 * MiB });
      // Defining a session with charlie needs the link (session.put): refused, with the reason, not a hang or a crash.
      const started = Date.now();
      const defined = await alpha.api
        .call('POST', '/v1/sessions', null, { name: 'vs', type: 'sync', peer: 'charlie' })
        .then(
          () => null,
          (error: { problem?: string; message: string }) => error,
        );
      expect(defined?.problem).toBe('peer-version');
      expect(defined?.message).toContain(newer);
      expect(defined?.message).toContain(PEER_PROTOCOL_VERSION);
      expect(Date.now() - started).toBeLessThan(10_000);
      const link = await until('the refusal in alpha\'s link state', async () => (await peersOf(alpha)).find((peer) => peer.site === 'charlie' && peer.linkProblem));
      expect(link.link).not.toBe('connected');
      expect(link.linkProblem).toMatchObject({ problem: 'peer-version', detail: { localVersion: PEER_PROTOCOL_VERSION, remoteVersion: newer } });
      const refusedHere = await alpha.api.call('GET', '/v1/events?type=link.refused&limit=100', EventListSchema);
      expect(refusedHere.events.filter((event) => event.subject === 'charlie')).toHaveLength(1);
      const refusedThere = await charlie.api.call('GET', '/v1/events?type=peer.refused&limit=100', EventListSchema);
      expect(refusedThere.events.some((event) => event.message.includes(newer) && event.message.includes(PEER_PROTOCOL_VERSION))).toBe(true);
      // Alpha's link to beta is unaffected.
      expect((await peersOf(alpha)).find((peer) => peer.site === 'beta')).toMatchObject({ link: 'connected', linkProblem: null });
    } finally {
      await charlie.stop();
    }
  }, 180_000);
});

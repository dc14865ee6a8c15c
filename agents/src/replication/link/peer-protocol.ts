import {
  isPeerMethod,
  peerMethods,
  ProblemError,
  type PayloadRule,
  type PeerMethod,
  type PeerParams,
  type PeerResult,
} from '@tandem/contract';
import type { RpcRequest } from './rpc-connection.ts';

/**
 * The agent's side of the typed peer protocol (contract/src/peer.ts): the
 * parsing every request goes through on arrival, before any handler runs,
 * and the types of the method tables the receiving parts serve.
 */

/** The methods the replication service serves (`peer.hello` is the link's own, see peer-link.ts). */
export type ServedPeerMethod = Exclude<PeerMethod, 'peer.hello'>;

/** A request whose method is known and whose parameters and payload match its schema. */
export interface PeerCall<M extends PeerMethod = PeerMethod> {
  method: M;
  params: PeerParams<M>;
  payload: Buffer | null;
  /** The paired agent that sent it (bound to the connection by its certificate). */
  peerAgentId: string;
}

export interface PeerAnswer<M extends PeerMethod = PeerMethod> {
  result?: PeerResult<M>;
  payload?: Buffer | null;
}

export type PeerHandler<M extends PeerMethod> = (call: PeerCall<M>) => Promise<PeerAnswer<M>> | PeerAnswer<M>;

/** One receiving part's dispatch table: a handler per method it serves. */
export type PeerHandlerTable<K extends PeerMethod> = { [M in K]: PeerHandler<M> };

/** The mirroring stream's methods (fenced by run, see stream-fence.ts), from the table's `stream` flags. */
export const STREAM_METHODS: ReadonlySet<PeerMethod> = new Set(
  (Object.keys(peerMethods) as PeerMethod[]).filter((method) => (peerMethods[method] as { stream?: true }).stream === true),
);

function payloadProblem(method: string, rule: PayloadRule, payload: Buffer | null): string | null {
  const present = payload !== null && payload.length > 0;
  if (rule === 'required' && !present) return `peer request ${method}: it carries its data as payload, and none came`;
  if (rule === 'none' && present) return `peer request ${method}: it takes no payload, and ${payload.length} bytes came`;
  return null;
}

/**
 * Parses a request against the peer protocol: an unknown method is
 * `not-supported`, parameters that do not match its schema (or a payload
 * missing or unexpected) are `bad-request`, the message naming the method
 * and the field. Nothing of the request has run when this throws.
 */
export function parsePeerRequest(request: RpcRequest): PeerCall {
  const { method } = request;
  if (!isPeerMethod(method)) {
    throw new ProblemError('not-supported', `unknown peer request ${String(method).slice(0, 200)}`, { method: String(method).slice(0, 200) });
  }
  const spec = peerMethods[method];
  const parsed = spec.params.safeParse(request.params);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.length > 0 ? issue.path.join('.') : '(parameters)';
    throw new ProblemError('bad-request', `peer request ${method}: ${field}: ${issue.message}`, { method, field });
  }
  const payloadIssue = payloadProblem(method, spec.payload, request.payload);
  if (payloadIssue) throw new ProblemError('bad-request', payloadIssue, { method, field: 'payload' });
  return { method, params: parsed.data, payload: request.payload, peerAgentId: request.peerAgentId } as PeerCall;
}

/** Runs a parsed call's handler from a table (one cast here instead of one per method). */
export function dispatchPeerCall<K extends PeerMethod>(table: PeerHandlerTable<K>, call: PeerCall): Promise<PeerAnswer> | PeerAnswer {
  const handler = (table as Partial<Record<PeerMethod, PeerHandler<PeerMethod>>>)[call.method];
  if (!handler) throw new ProblemError('not-supported', `this agent does not serve peer request ${call.method}`, { method: call.method });
  return handler(call as PeerCall<PeerMethod>);
}

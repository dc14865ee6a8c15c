import https from 'node:https';
import os from 'node:os';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { auditUserHeader, ProblemError, ProblemSchema } from '@tandem/contract';
import { sameFingerprint } from './tls-identity.ts';

/**
 * The OS user running the console, sent as `x-tandem-user` with every agent
 * call so the agent's audit trail names the person (informational: the
 * console's client certificate is the authority).
 */
export const consoleUser: string | null = (() => {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? process.env.USERNAME ?? null;
  }
})();

/** How the backend reaches one agent over TLS. */
export interface AgentTlsOptions {
  /** The agent certificate's SHA-256 fingerprint; the connection is refused unless the agent presents exactly this certificate. */
  pinnedFingerprint?: string;
  caCertificate?: string;
  clientCertificate?: string;
  clientKeyPem?: string;
}

export interface AgentRequest {
  address: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  body?: unknown;
  tls: AgentTlsOptions;
  timeoutMs?: number;
}

export interface AgentResponse {
  status: number;
  body: unknown;
  /** Fingerprint of the certificate the agent presented. */
  peerFingerprint: string;
}

export function splitAddress(address: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  if (!match) throw new ProblemError('bad-request', `"${address}" is not host:port`);
  return { host: match[1], port: Number(match[2]) };
}

/**
 * Opens a TLS connection and checks the agent's certificate before a single
 * byte of the request (a pairing token, say) is written. Trust is the pinned
 * fingerprint; before pairing there is no pin and the caller decides.
 */
export function connectToAgent(address: string, options: AgentTlsOptions, timeoutMs: number): Promise<tls.TLSSocket> {
  const { host, port } = splitAddress(address);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      servername: isIP(host) ? undefined : host,
      ca: options.caCertificate,
      cert: options.clientCertificate,
      key: options.clientKeyPem,
      // The pin below is the trust decision: self-made agent CAs carry no
      // host names a console could check.
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ProblemError('timeout', `the agent at ${address} did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const fingerprint = socket.getPeerCertificate().fingerprint256 ?? '';
      if (options.pinnedFingerprint && !sameFingerprint(fingerprint, options.pinnedFingerprint)) {
        socket.destroy();
        reject(
          new ProblemError(
            'certificate-mismatch',
            `the agent at ${address} presented a certificate with fingerprint ${fingerprint}, not the expected ${options.pinnedFingerprint}; it may not be the agent you paired with`,
            { presented: fingerprint, expected: options.pinnedFingerprint },
          ),
        );
        return;
      }
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(unreachable(address, error));
    });
  });
}

export function unreachable(address: string, error: Error): ProblemError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason =
    code === 'ECONNREFUSED'
      ? 'nothing is listening there'
      : code === 'ENOTFOUND'
        ? 'the host name is unknown'
        : code === 'ECONNRESET'
          ? 'the connection was reset'
          : error.message;
  return new ProblemError('agent-unreachable', `cannot reach the agent at ${address}: ${reason}`, code ? { code } : undefined);
}

/** One HTTPS request to an agent; the answer body is returned unparsed (`unknown`) for the caller's schema. */
export async function agentRequest(request: AgentRequest): Promise<AgentResponse> {
  const timeoutMs = request.timeoutMs ?? 15_000;
  const socket = await connectToAgent(request.address, request.tls, timeoutMs);
  const peerFingerprint = socket.getPeerCertificate().fingerprint256 ?? '';
  const payload = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body));
  return new Promise((resolve, reject) => {
    const outgoing = https.request(
      {
        method: request.method,
        path: request.path,
        host: splitAddress(request.address).host,
        createConnection: () => socket,
        headers: {
          accept: 'application/json',
          ...(consoleUser ? { [auditUserHeader]: consoleUser } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        timeout: timeoutMs,
      },
      (incoming) => {
        const chunks: Buffer[] = [];
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
        incoming.on('end', () => {
          socket.end();
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = undefined;
          if (text.length > 0) {
            try {
              body = JSON.parse(text) as unknown;
            } catch {
              body = text;
            }
          }
          resolve({ status: incoming.statusCode ?? 0, body, peerFingerprint });
        });
        incoming.on('error', (error) => reject(unreachable(request.address, error)));
      },
    );
    outgoing.on('timeout', () => {
      outgoing.destroy();
      reject(new ProblemError('timeout', `the agent at ${request.address} did not answer ${request.method} ${request.path} in time`));
    });
    outgoing.on('error', (error) => reject(error instanceof ProblemError ? error : unreachable(request.address, error)));
    outgoing.end(payload);
  });
}

/** Turns a non-2xx agent answer into a ProblemError carrying the agent's own code and message. */
export function problemFromResponse(address: string, response: AgentResponse): ProblemError {
  const parsed = ProblemSchema.safeParse(response.body);
  if (parsed.success) return new ProblemError(parsed.data.problem, parsed.data.message, parsed.data.detail);
  if (response.status === 401) return new ProblemError('unauthenticated', `the agent at ${address} did not accept the console's credentials`);
  if (response.status === 403) return new ProblemError('access-denied', `the agent at ${address} refused the request`);
  if (response.status === 404) return new ProblemError('not-supported', `the agent at ${address} does not offer this request (HTTP 404)`);
  return new ProblemError('internal-error', `the agent at ${address} answered HTTP ${response.status}`);
}

import https from 'node:https';
import { loadAdminCredentials } from '../src/tls/files.ts';

/** The local admin credentials an agent keeps in DATA/tls/ (names from agents/src/tls). */
export interface Credentials {
  ca: string;
  cert: string;
  key: string;
}

export async function loadCredentials(dataDir: string): Promise<Credentials> {
  const creds = await loadAdminCredentials(dataDir);
  return { ca: creds.caPem, cert: creds.certificatePem, key: creds.keyPem };
}

export interface ApiResponse {
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  /** Round trip from request start to the last body byte, ms. */
  ms: number;
}

/** A keep-alive mutual-TLS client, so timed requests exclude the handshake. */
export class ApiClient {
  private readonly agent: https.Agent;
  private readonly host: string;
  private readonly port: number;

  constructor(apiAddress: string, creds: Credentials) {
    const match = /^(?:https?:\/\/)?\[?([^\]/]+?)\]?:(\d+)\/?$/.exec(apiAddress);
    if (!match) throw new Error(`cannot read API address ${apiAddress}`);
    this.host = match[1];
    this.port = Number(match[2]);
    this.agent = new https.Agent({
      keepAlive: true,
      maxSockets: 1,
      ca: creds.ca,
      cert: creds.cert,
      key: creds.key,
    });
  }

  request(method: string, urlPath: string, body?: unknown): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const req = https.request(
        {
          host: this.host,
          port: this.port,
          method,
          path: urlPath,
          agent: this.agent,
          headers: payload
            ? { 'content-type': 'application/json', 'content-length': payload.length }
            : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const ms = performance.now() - started;
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : null;
            } catch {
              // keep the text
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers, ms });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Engine-side time if the agent reports it (Server-Timing header or a body field), ms. */
export function engineMs(response: ApiResponse): number | null {
  const timing = response.headers['server-timing'];
  const text = Array.isArray(timing) ? timing.join(',') : timing;
  if (text) {
    const dur = /dur=([\d.]+)/.exec(text);
    if (dur) return Number(dur[1]);
  }
  const body = response.body as Record<string, unknown> | null;
  if (body && typeof body === 'object') {
    for (const key of ['engineMs', 'elapsedMs', 'durationMs', 'tookMs']) {
      if (typeof body[key] === 'number') return body[key] as number;
    }
  }
  return null;
}

import fs from 'node:fs';
import path from 'node:path';

/**
 * The NBD clients allowed over TLS, kept in DATA/tls/nbd-clients.json
 * (mode 0600: it holds PSK keys). A client is either an x509 certificate
 * issued by the agent's own CA (known by its SHA-256 fingerprint) or a PSK
 * identity with its key, and may open only the exports on its allow-list
 * ("*" for all). `tandem-agent nbd-client add|list|remove` edits the file;
 * the running agent reads it again whenever it changed, so a client added
 * or removed counts from its next connection on.
 */
export interface NbdTlsClient {
  name: string;
  kind: 'x509' | 'psk';
  /** x509: the certificate's SHA-256 fingerprint (AB:CD:…). */
  fingerprint?: string;
  /** psk: the key, hex. */
  key?: string;
  /** Export names this client may open; ["*"] for every export. */
  exports: string[];
  createdAt: string;
}

interface ClientsFile {
  clients: NbdTlsClient[];
}

export function nbdClientsFile(tlsDir: string): string {
  return path.join(tlsDir, 'nbd-clients.json');
}

/** Whether `client` may open the export `name`. */
export function allowsExport(client: NbdTlsClient, name: string): boolean {
  return client.exports.includes('*') || client.exports.includes(name);
}

const CLIENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkClientName(name: string): void {
  if (!CLIENT_NAME.test(name)) {
    throw new Error(`client name ${JSON.stringify(name)}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
}

/** Reads and writes the clients file; lookups re-read it when its modification time changed. */
export class NbdClientRegistry {
  private cached: ClientsFile = { clients: [] };
  private cachedMtimeMs = -1;

  constructor(readonly file: string) {}

  list(): NbdTlsClient[] {
    return this.load().clients;
  }

  byFingerprint(fingerprint: string): NbdTlsClient | undefined {
    return this.load().clients.find((c) => c.kind === 'x509' && c.fingerprint === fingerprint);
  }

  /** The PSK client with this identity and its key, compared in constant time by the caller's TLS library. */
  pskClient(identity: string): NbdTlsClient | undefined {
    return this.load().clients.find((c) => c.kind === 'psk' && c.name === identity);
  }

  hasPskClients(): boolean {
    return this.load().clients.some((c) => c.kind === 'psk');
  }

  add(client: NbdTlsClient): void {
    checkClientName(client.name);
    const current = this.load(true);
    if (current.clients.some((c) => c.name === client.name)) throw new Error(`an NBD client named ${client.name} exists already`);
    this.write({ clients: [...current.clients, client] });
  }

  /** Removes a client; false when there was none of that name. */
  remove(name: string): boolean {
    const current = this.load(true);
    const clients = current.clients.filter((c) => c.name !== name);
    if (clients.length === current.clients.length) return false;
    this.write({ clients });
    return true;
  }

  private load(fresh = false): ClientsFile {
    let mtimeMs: number;
    try {
      mtimeMs = fs.statSync(this.file).mtimeMs;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        this.cached = { clients: [] };
        this.cachedMtimeMs = -1;
        return this.cached;
      }
      throw error;
    }
    if (fresh || mtimeMs !== this.cachedMtimeMs) {
      const parsed = JSON.parse(fs.readFileSync(this.file, 'utf8')) as ClientsFile;
      this.cached = { clients: Array.isArray(parsed.clients) ? parsed.clients.filter(isClient) : [] };
      this.cachedMtimeMs = mtimeMs;
    }
    return this.cached;
  }

  /** Whole-file replace through a temporary file, so a reader never sees half of it. */
  private write(content: ClientsFile): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const temporary = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
    fs.renameSync(temporary, this.file);
    this.cachedMtimeMs = -1;
  }
}

function isClient(value: unknown): value is NbdTlsClient {
  const c = value as NbdTlsClient;
  return (
    typeof c === 'object' && c !== null && typeof c.name === 'string' && (c.kind === 'x509' || c.kind === 'psk') &&
    Array.isArray(c.exports) && c.exports.every((e) => typeof e === 'string')
  );
}

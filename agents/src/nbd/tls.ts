import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { certificateFingerprint } from '../tls/fingerprint.ts';
import type { NbdClientRegistry, NbdTlsClient } from './tls-clients.ts';

/**
 * NBD over TLS (NBD_OPT_STARTTLS, as qemu-nbd and nbdkit offer it): the
 * agent's own server certificate, client certificates issued by the
 * agent's CA, or PSK identities; either way the client must be in the
 * registry (tls-clients.ts), which also holds its export allow-list.
 */
export interface NbdTlsOptions {
  /** Server certificate and key (PEM), and the CA that issued the client certificates. */
  certificatePem: string;
  keyPem: string;
  caPem: string;
  clients: NbdClientRegistry;
}

/** What a TLS upgrade produced: the encrypted socket and who is on the other side (null: not a known client). */
export interface TlsSession {
  socket: tls.TLSSocket;
  client: NbdTlsClient | null;
  /** Why `client` is null, for the log and the client's error messages. */
  refusal: string | null;
}

/** TLS 1.2 PSK suites GnuTLS clients (qemu, libnbd) offer with PSK credentials. */
const PSK_CIPHERS = 'ECDHE-PSK-AES256-CBC-SHA384:ECDHE-PSK-AES128-CBC-SHA256:DHE-PSK-AES256-GCM-SHA384:DHE-PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384:PSK-AES128-GCM-SHA256';

/**
 * Contexts: with certificates only, TLS 1.2 or 1.3; once PSK clients exist,
 * TLS 1.2 with the PSK suites added, because a GnuTLS client (qemu,
 * libnbd) with a PSK fails a TLS 1.3 handshake with OpenSSL's server-side
 * PSK callback ("Insufficient credentials"; seen with libnbd 1.14, GnuTLS
 * 3.7), while TLS 1.2 ECDHE-PSK / DHE-PSK works with both. Certificate
 * clients then also use TLS 1.2 (ECDHE with AES-GCM).
 */
export class NbdTls {
  private readonly certificatesOnly: tls.SecureContext;
  private readonly withPsk: tls.SecureContext;
  private readonly ca: X509Certificate;

  constructor(private readonly options: NbdTlsOptions) {
    this.ca = new X509Certificate(options.caPem);
    const common = { cert: options.certificatePem, key: options.keyPem, ca: options.caPem, minVersion: 'TLSv1.2' as const };
    this.certificatesOnly = tls.createSecureContext(common);
    this.withPsk = tls.createSecureContext({
      ...common,
      maxVersion: 'TLSv1.2',
      // Node's default list ends in !PSK, which would drop the PSK suites whatever follows it.
      ciphers: `${tls.DEFAULT_CIPHERS.split(':').filter((c) => c !== '!PSK').join(':')}:${PSK_CIPHERS}`,
    });
  }

  /**
   * Runs the server side of the TLS handshake on `socket` (nothing else may
   * read it meanwhile) and identifies the client. Rejects when the handshake
   * fails.
   */
  upgrade(socket: Socket, timeoutMs: number): Promise<TlsSession> {
    let pskIdentity: string | null = null;
    const psk = this.options.clients.hasPskClients();
    const secure = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: psk ? this.withPsk : this.certificatesOnly,
      requestCert: true,
      // Certificates are checked below, so a PSK client (no certificate) gets through the handshake.
      rejectUnauthorized: false,
      ...(psk
        ? {
            pskCallback: (_socket: tls.TLSSocket, identity: string): Buffer | null => {
              const client = this.options.clients.pskClient(identity);
              if (!client?.key) return null;
              pskIdentity = identity;
              return Buffer.from(client.key, 'hex');
            },
          }
        : {}),
    } as tls.TLSSocketOptions);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`TLS handshake took longer than ${timeoutMs} ms`)), timeoutMs);
      const fail = (error: Error): void => {
        clearTimeout(timer);
        secure.destroy();
        reject(error);
      };
      const closed = (): void => fail(new Error('the client closed the connection during the TLS handshake'));
      secure.once('error', fail);
      secure.once('close', closed);
      secure.once('secure', () => {
        clearTimeout(timer);
        secure.off('error', fail);
        secure.off('close', closed);
        resolve({ socket: secure, ...this.identify(secure, pskIdentity) });
      });
    });
  }

  private identify(secure: tls.TLSSocket, pskIdentity: string | null): { client: NbdTlsClient | null; refusal: string | null } {
    if (pskIdentity !== null) {
      const client = this.options.clients.pskClient(pskIdentity) ?? null;
      return { client, refusal: client ? null : `PSK identity ${pskIdentity} is no longer an NBD client` };
    }
    const peer = secure.getPeerCertificate();
    if (!peer || !peer.raw) return { client: null, refusal: 'no client certificate and no PSK identity' };
    // (A TLSSocket made by hand, not by tls.Server, does not set `authorized`: the chain is checked here.)
    const certificate = new X509Certificate(peer.raw);
    const now = Date.now();
    if (!certificate.checkIssued(this.ca) || !certificate.verify(this.ca.publicKey)) {
      return { client: null, refusal: "client certificate not issued by this agent's CA" };
    }
    if (Date.parse(certificate.validFrom) > now || Date.parse(certificate.validTo) < now) {
      return { client: null, refusal: 'client certificate expired or not yet valid' };
    }
    const fingerprint = certificateFingerprint(new Uint8Array(peer.raw));
    const client = this.options.clients.byFingerprint(fingerprint) ?? null;
    return { client, refusal: client ? null : `client certificate ${fingerprint} is not an NBD client of this agent` };
  }
}

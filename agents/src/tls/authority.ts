import { isIP } from 'node:net';
import { roleCertificateUnitPrefix, type Role } from '@tandem/contract';
import { type CryptoKey, ecdsaSha256, generateKeyPair, importSigningKey, pemDecodeFirst, privateKeyToPem, randomSerial } from './keys.ts';
import type { x509 } from './x509.ts';

/** @peculiar/x509, loaded when a certificate is made (not at every start: see keys.ts). */
async function loadX509(): Promise<typeof x509> {
  return (await import('./x509.ts')).x509;
}

const day = 24 * 60 * 60 * 1000;
/** Agent CAs and their certificates are long-lived: there is no renewal machinery yet. */
const caLifetime = 20 * 365 * day;
const leafLifetime = 10 * 365 * day;

/** An agent's certificate authority, able to sign server and client certificates. */
export interface Authority {
  certificatePem: string;
  signingKey: CryptoKey;
}

/** A PEM certificate with its PEM private key (when we generated the key). */
export interface IssuedCertificate {
  certificatePem: string;
  keyPem: string;
  serial: string;
}

function escapeDn(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1');
}

/** Makes a self-signed CA for the agent. */
export async function createAuthority(site: string, agentId: string): Promise<{ authority: Authority; keyPem: string }> {
  const x509 = await loadX509();
  const keys = await generateKeyPair();
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=Tandem agent CA ${escapeDn(site)}, O=Tandem, OU=${escapeDn(agentId)}`,
    notBefore: new Date(now - day),
    notAfter: new Date(now + caLifetime),
    signingAlgorithm: ecdsaSha256,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    authority: { certificatePem: certificate.toString('pem'), signingKey: keys.privateKey },
    keyPem: await privateKeyToPem(keys.privateKey),
  };
}

/** Loads a CA from its PEM certificate and PKCS#8 PEM key. */
export async function loadAuthority(certificatePem: string, keyPem: string): Promise<Authority> {
  // Parsed when a certificate is signed; here only the key is needed, and a bad PEM fails as before.
  pemDecodeFirst(certificatePem);
  return { certificatePem, signingKey: await importSigningKey(keyPem) };
}

interface LeafOptions {
  commonName: string;
  usage: 'server' | 'client';
  /** DNS names and IP addresses for the subject alternative name (server certificates). */
  altNames?: string[];
  /**
   * The holder's role (client certificates), as the subject's organizational
   * unit `OU=tandem-role:<role>`. The common name is escaped, so a client's
   * chosen name cannot smuggle a second OU in.
   */
  role?: Role;
}

/** The subject of a leaf certificate: `CN=<name>, OU=tandem-role:<role>, O=Tandem`. */
export function leafSubject(commonName: string, role?: Role): string {
  const unit = role === undefined ? '' : `, OU=${roleCertificateUnitPrefix}${role}`;
  return `CN=${escapeDn(commonName)}${unit}, O=Tandem`;
}

async function signLeaf(
  authority: Authority,
  publicKey: x509.PublicKeyType,
  options: LeafOptions,
): Promise<{ certificatePem: string; serial: string }> {
  const x509 = await loadX509();
  const caCertificate = new x509.X509Certificate(authority.certificatePem);
  const serial = randomSerial();
  const now = Date.now();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension(
      [options.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth],
      false,
    ),
    await x509.AuthorityKeyIdentifierExtension.create(caCertificate, false),
  ];
  if (options.altNames?.length) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension(
        options.altNames.map((value) => ({ type: isIP(value) ? 'ip' : 'dns', value }) as x509.JsonGeneralName),
        false,
      ),
    );
  }
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: leafSubject(options.commonName, options.role),
    issuer: caCertificate.subject,
    notBefore: new Date(now - day),
    notAfter: new Date(now + leafLifetime),
    signingAlgorithm: ecdsaSha256,
    publicKey,
    signingKey: authority.signingKey,
    extensions,
  });
  return { certificatePem: certificate.toString('pem'), serial };
}

/** Issues a certificate for a key pair generated here (the API server's, the local admin's). */
export async function issueWithNewKey(authority: Authority, options: LeafOptions): Promise<IssuedCertificate> {
  const keys = await generateKeyPair();
  const signed = await signLeaf(authority, keys.publicKey, options);
  return { ...signed, keyPem: await privateKeyToPem(keys.privateKey) };
}

/**
 * Issues a client certificate for a public key a client sent as SPKI PEM.
 * Returns undefined when the text is not a public key WebCrypto can use.
 */
export async function issueForPublicKey(
  authority: Authority,
  publicKeyPem: string,
  commonName: string,
  role: Role,
): Promise<{ certificatePem: string; serial: string } | undefined> {
  const x509 = await loadX509();
  let publicKey: x509.PublicKey;
  try {
    publicKey = new x509.PublicKey(publicKeyPem);
    await publicKey.export();
  } catch {
    return undefined;
  }
  return signLeaf(authority, publicKey, { commonName, usage: 'client', role });
}

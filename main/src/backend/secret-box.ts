/**
 * Protects a site's client key at rest. Electron supplies one backed by
 * `safeStorage` (OS keychain); plain Node keeps the text as is and relies on
 * the registry file being 0600.
 */
export interface SecretBox {
  /** Stored beside the sealed text so a registry written by Electron is not misread by plain Node. */
  readonly protection: 'none' | 'safe-storage';
  seal(plain: string): string;
  open(sealed: string): string;
}

export const plainSecretBox: SecretBox = {
  protection: 'none',
  seal: (plain) => plain,
  open: (sealed) => sealed,
};

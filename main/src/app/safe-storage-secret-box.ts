import { safeStorage } from 'electron';
import type { SecretBox } from '../backend/secret-box.ts';
import { plainSecretBox } from '../backend/secret-box.ts';

/**
 * Client keys encrypted with the OS keychain through Electron's safeStorage.
 * Where the OS offers none (a bare Linux session), falls back to the 0600
 * file the plain backend uses, and says so.
 */
export function safeStorageSecretBox(log: (message: string) => void): SecretBox {
  if (!safeStorage.isEncryptionAvailable()) {
    log('safeStorage is not available: site keys are protected by file permissions only');
    return plainSecretBox;
  }
  return {
    protection: 'safe-storage',
    seal: (plain) => safeStorage.encryptString(plain).toString('base64'),
    open: (sealed) => safeStorage.decryptString(Buffer.from(sealed, 'base64')),
  };
}

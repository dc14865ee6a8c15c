import { BackendEndpointSchema, type BackendEndpoint } from '../../../main/src/shared/console-api.ts';
import type { TandemBridge } from '../../../main/src/shared/ipc-channels.ts';

declare global {
  interface Window {
    /** Present in the desktop app only (preload bridge). */
    tandem?: TandemBridge;
  }
}

const storageKey = 'tandem.backend-token';

/**
 * Where the backend is and its token. The page is always served by the
 * backend, so the address is this page's origin; the token comes from the
 * preload bridge (desktop) or the URL fragment (browser, printed by
 * `npm start`), and is kept for this tab only so a reload keeps working.
 */
export async function resolveBackendEndpoint(): Promise<BackendEndpoint | null> {
  if (window.tandem) return BackendEndpointSchema.parse(await window.tandem.backendEndpoint());
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const fromFragment = fragment.get('token');
  if (fromFragment) {
    sessionStorage.setItem(storageKey, fromFragment);
    history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  const token = fromFragment ?? sessionStorage.getItem(storageKey);
  if (!token) return null;
  return { url: window.location.origin, token };
}

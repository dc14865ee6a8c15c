/**
 * The CSP for the console's pages, in Electron and in a browser: scripts only
 * from the backend itself, API and WebSocket only to the backend, no frames,
 * no plugins. Mantine injects style tags, hence `'unsafe-inline'` for styles
 * only.
 */
export function contentSecurityPolicy(origin: string): string {
  const websocket = origin.replace(/^http/, 'ws');
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self' ${websocket}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}

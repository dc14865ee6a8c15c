import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import path from 'node:path';

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

/**
 * Serves the built renderer (out/renderer). Paths that are not files get
 * index.html, so reloading a deep link works. Nothing outside the folder is
 * reachable.
 */
export async function serveStatic(rendererDir: string, pathname: string, response: ServerResponse, headers: Record<string, string>): Promise<void> {
  const root = path.resolve(rendererDir);
  const wanted = path.resolve(root, `.${path.posix.normalize(decodeURIComponent(pathname))}`);
  const inside = wanted === root || wanted.startsWith(root + path.sep);
  const file = inside && path.extname(wanted) ? wanted : path.join(root, 'index.html');
  let content: Buffer;
  try {
    content = await readFile(file);
  } catch {
    if (path.extname(wanted)) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end('not found');
      return;
    }
    response
      .writeHead(503, { 'content-type': 'text/plain; charset=utf-8', ...headers })
      .end('The console is not built yet: run `npx electron-vite build` (npm start does this for you).');
    return;
  }
  const type = types[path.extname(file)] ?? 'application/octet-stream';
  const cache = file.endsWith('index.html') ? 'no-store' : 'public, max-age=31536000, immutable';
  response.writeHead(200, { 'content-type': type, 'cache-control': cache, ...headers }).end(content);
}

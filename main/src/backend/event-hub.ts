import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { bearerProtocolPrefix, consoleProtocol, type ConsoleEvent } from '../shared/console-api.ts';
import type { SiteManager } from './site-manager.ts';

/**
 * The renderer's WebSocket (/api/events): on connect the full site list, then
 * every site state change and agent event as they happen. The bearer token
 * rides in a subprotocol, as browsers cannot set headers on WebSockets.
 */
export class EventHub {
  private readonly server = new WebSocketServer({
    noServer: true,
    maxPayload: 64 * 1024,
    handleProtocols: (protocols) => (protocols.has(consoleProtocol) ? consoleProtocol : false),
  });
  private readonly unsubscribe: () => void;

  constructor(
    private readonly sites: SiteManager,
    private readonly isTokenValid: (token: string) => boolean,
  ) {
    this.unsubscribe = sites.subscribe((event) => this.broadcast(event));
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const protocols = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((text) => text.trim());
    const bearer = protocols.find((protocol) => protocol.startsWith(bearerProtocolPrefix));
    if (!bearer || !this.isTokenValid(bearer.slice(bearerProtocolPrefix.length)) || !protocols.includes(consoleProtocol)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    this.server.handleUpgrade(request, socket, head, (client) => {
      send(client, { kind: 'sites', sites: this.sites.list() });
    });
  }

  close(): void {
    this.unsubscribe();
    for (const client of this.server.clients) client.terminate();
    this.server.close();
  }

  private broadcast(event: ConsoleEvent): void {
    for (const client of this.server.clients) send(client, event);
  }
}

function send(client: WebSocket, event: ConsoleEvent): void {
  if (client.readyState === client.OPEN) client.send(JSON.stringify(event));
}

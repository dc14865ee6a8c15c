import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  EventListQuerySchema,
  EventListSchema,
  type AgentEvent,
  type EventStreamMessage,
} from '@tandem/contract';
import type { ApiDependencies } from '../app.ts';
import type { ZodTypeProvider } from '../zod-schemas.ts';

const StreamQuerySchema = z.object({ after: z.coerce.number().int().min(0).optional() });

/** A client that lets this much pile up unread is cut off; it catches up with `GET /v1/events?after=`. */
const maxBufferedBytes = 8 * 1024 * 1024;
const replayLimit = 1000;

/** `GET /v1/events?after&limit[&subject&type&excludeType&newest]` and the WebSocket `GET /v1/events/stream[?after=N]`. */
export async function eventRoutes(fastify: FastifyInstance, deps: ApiDependencies): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const catalog = deps.engine.catalog;
  // Every open stream is one listener; consoles are few but more than Node's default warning level.
  catalog.events.setMaxListeners(Math.max(catalog.events.getMaxListeners(), 256));

  // A stream that opens while the agent shuts down is told so at once instead of holding shutdown up.
  let closing = false;
  fastify.addHook('preClose', async () => {
    closing = true;
  });

  app.get(
    '/v1/events',
    { schema: { querystring: EventListQuerySchema, response: { 200: EventListSchema } } },
    async (request) => {
      const { after, limit, ...filter } = request.query;
      return { events: catalog.listEvents(after, limit, filter) };
    },
  );

  app.get('/v1/events/stream', { websocket: true, schema: { querystring: StreamQuerySchema } }, (socket, request) => {
    if (closing) {
      socket.close(1001, 'agent shutting down');
      return;
    }
    const send = (message: EventStreamMessage) => {
      if (socket.readyState !== socket.OPEN) return;
      if (socket.bufferedAmount > maxBufferedBytes) {
        socket.close(1013, 'event stream client too slow');
        return;
      }
      socket.send(JSON.stringify(message));
    };
    const info = deps.agentInfo();
    const lastEventId = catalog.lastEventId();
    send({ kind: 'hello', site: info.site, agentId: info.agentId, lastEventId });
    // Catalog writes are synchronous, so nothing can be recorded between the replay and subscribing.
    const after = request.query.after;
    if (after !== undefined && after < lastEventId) {
      for (const event of catalog.listEvents(after, replayLimit)) send({ kind: 'event', event });
    }
    const onEvent = (event: AgentEvent) => send({ kind: 'event', event });
    catalog.events.on('event', onEvent);
    socket.on('close', () => catalog.events.off('event', onEvent));
    socket.on('message', () => {
      // The stream is one-way; client frames are ignored.
    });
  });
}

import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import type { AlertWebhookPayload } from '@tandem/contract';

export interface WebhookOptions {
  /** One POST's deadline, ms (default 5 s). */
  timeoutMs?: number;
  /** Attempts per document, the first included (default 5). */
  attempts?: number;
  /** The wait before the first retry, ms; doubled for each next one (default 1 s). */
  backoffMs?: number;
  /** Documents waiting at most; the oldest is dropped (and logged) past it (default 1000). */
  maxQueued?: number;
}

/**
 * Posts alert documents to the site's webhook, one at a time in the order
 * they were raised and cleared, each with a timeout and retried with
 * exponential backoff. Never blocks the agent: `send` queues and returns;
 * a receiver that stays away costs a bounded queue and log lines.
 */
export class WebhookNotifier {
  private readonly queue: Array<{ url: string; payload: AlertWebhookPayload }> = [];
  private running = false;
  private closed = false;
  private wake: (() => void) | null = null;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly maxQueued: number;
  /** Documents delivered and given up on since start (tests and logs). */
  delivered = 0;
  failed = 0;

  constructor(
    private readonly logger: Logger,
    options: WebhookOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.attempts = Math.max(1, options.attempts ?? 5);
    this.backoffMs = options.backoffMs ?? 1000;
    this.maxQueued = options.maxQueued ?? 1000;
  }

  send(url: string, payload: AlertWebhookPayload): void {
    if (this.closed) return;
    this.queue.push({ url, payload });
    if (this.queue.length > this.maxQueued) {
      const dropped = this.queue.shift()!;
      this.failed++;
      this.logger.warn({ alert: dropped.payload.alert.key, event: dropped.payload.event }, 'alert webhook queue full: the oldest document was dropped');
    }
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (!this.closed && this.queue.length > 0) {
        const { url, payload } = this.queue[0];
        let delivered = false;
        for (let attempt = 1; attempt <= this.attempts && !this.closed; attempt++) {
          try {
            await this.post(url, payload);
            delivered = true;
            break;
          } catch (error) {
            const last = attempt === this.attempts;
            this.logger.warn({ err: error, url: redactUrl(url), attempt, alert: payload.alert.key }, last ? 'alert webhook failed; giving up on this document' : 'alert webhook failed; retrying');
            if (!last) await this.pause(this.backoffMs * 2 ** (attempt - 1));
          }
        }
        this.queue.shift();
        if (delivered) this.delivered++;
        else this.failed++;
      }
    } finally {
      this.running = false;
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      timer.unref();
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }

  private post(url: string, payload: AlertWebhookPayload): Promise<void> {
    const body = Buffer.from(JSON.stringify(payload), 'utf8');
    const target = new URL(url);
    const client = target.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const request = client.request(
        target,
        {
          method: 'POST',
          timeout: this.timeoutMs,
          headers: { 'content-type': 'application/json', 'content-length': body.length, 'user-agent': 'tandem-agent' },
        },
        (response) => {
          response.resume();
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve();
            else reject(new Error(`the webhook answered HTTP ${status}`));
          });
          response.on('error', reject);
        },
      );
      request.on('timeout', () => request.destroy(new Error(`the webhook did not answer within ${this.timeoutMs} ms`)));
      request.on('error', reject);
      request.end(body);
    });
  }

  /** Stops sending (what is queued is dropped; a POST under way is left to finish or time out). */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.wake?.();
  }
}

/** A URL for the log without credentials or query (tokens often sit there). */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

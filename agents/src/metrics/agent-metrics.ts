import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { NbdRequestMetrics, StorageMetrics } from './data-path.ts';
import { StateMetrics, type StateSources } from './state.ts';

/**
 * The agent's Prometheus metrics (`tandem-agent run --metrics HOST:PORT`):
 * one registry per agent, not prom-client's global one. The data path
 * counts as it goes (NBD requests, WAL commits, fdatasync times, through the
 * narrow meters NBD and storage accept); everything else is read from the
 * agent's own views when scraped (StateMetrics).
 */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly nbd: NbdRequestMetrics;
  readonly storage: StorageMetrics;
  private state: StateMetrics | null = null;

  constructor(private readonly logger: Logger) {
    this.nbd = new NbdRequestMetrics(this.registry);
    this.storage = new StorageMetrics(this.registry);
  }

  /** Adds the state metrics once the parts they read have started. */
  watch(sources: StateSources): void {
    if (this.state) throw new Error('the agent metrics already watch their sources');
    this.state = new StateMetrics(this.registry, sources, (what, error) =>
      this.logger.debug({ err: error }, `metrics: ${what} not read`),
    );
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition of every metric, state read now. */
  async render(): Promise<string> {
    await this.state?.refresh();
    return this.registry.metrics();
  }
}

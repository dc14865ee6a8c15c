/**
 * What the storage engine reports for metrics (agents/src/metrics): a
 * narrow interface the engine calls on its commit path, so the engine knows
 * no metrics library. Calls must be cheap; the engine runs without one.
 */
export interface StorageMeter {
  /** A group commit made WAL records durable (written and fdatasync'd). */
  walCommitted(): void;
  /** One fdatasync of a WAL segment (`wal`) or a pool extent file (`data`) took `seconds`. */
  synced(file: 'wal' | 'data', seconds: number): void;
}

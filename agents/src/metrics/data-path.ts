import { Counter, Histogram, type Registry } from 'prom-client';
import type { NbdExportMeter, NbdMeters, NbdOperationMeter } from '../nbd/meter.ts';
import type { StorageMeter } from '../storage/meter.ts';

/** NBD request latency buckets, seconds: 25 µs (a page-cache hit) to 10 s (a sync mirror write on a bad link). */
const NBD_SECONDS_BUCKETS = [0.000025, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
/** fdatasync latency buckets, seconds. */
const FSYNC_SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

type Operation = keyof NbdExportMeter;
/** The `operation` label of each meter: NBD command names, lower case. */
const operations: Record<Operation, string> = {
  read: 'read',
  write: 'write',
  flush: 'flush',
  trim: 'trim',
  writeZeroes: 'write_zeroes',
  blockStatus: 'block_status',
};

interface BoundCounter {
  inc(value?: number): void;
}
interface BoundHistogram {
  observe(value: number): void;
}

/** One operation of one export, its label sets bound once (prom-client children). */
class OperationMeter implements NbdOperationMeter {
  constructor(
    private readonly requests: BoundCounter,
    private readonly errors: BoundCounter,
    private readonly duration: BoundHistogram,
    /** Payload bytes of READ (`read`) or WRITE (`written`); null for the others. */
    private readonly bytes: BoundCounter | null,
  ) {}

  answered(startedAt: number, bytes: number): void {
    this.requests.inc();
    this.duration.observe((performance.now() - startedAt) / 1000);
    if (this.bytes !== null && bytes > 0) this.bytes.inc(bytes);
  }

  failed(startedAt: number): void {
    this.requests.inc();
    this.errors.inc();
    this.duration.observe((performance.now() - startedAt) / 1000);
  }
}

/**
 * NBD requests per export (`volume` label) and operation: counts, errors,
 * latency and the bytes read and written. A connection takes its export's
 * meter once; the same export always gets the same meter, so counters of a
 * volume add up over its connections.
 */
export class NbdRequestMetrics implements NbdMeters {
  private readonly requests: Counter<'volume' | 'operation'>;
  private readonly errors: Counter<'volume' | 'operation'>;
  private readonly duration: Histogram<'volume' | 'operation'>;
  private readonly readBytes: Counter<'volume'>;
  private readonly writtenBytes: Counter<'volume'>;
  private readonly meters = new Map<string, NbdExportMeter>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'tandem_nbd_requests_total',
      help: 'NBD requests answered, by export (volume) and operation (errors included)',
      labelNames: ['volume', 'operation'],
      registers,
    });
    this.errors = new Counter({
      name: 'tandem_nbd_request_errors_total',
      help: 'NBD requests answered with an error, by export (volume) and operation',
      labelNames: ['volume', 'operation'],
      registers,
    });
    this.duration = new Histogram({
      name: 'tandem_nbd_request_duration_seconds',
      help: 'Time from an NBD request (its payload complete) to its answer, by export (volume) and operation',
      labelNames: ['volume', 'operation'],
      buckets: NBD_SECONDS_BUCKETS,
      registers,
    });
    this.readBytes = new Counter({
      name: 'tandem_nbd_read_bytes_total',
      help: 'Bytes NBD clients read (READ payloads answered), by export (volume)',
      labelNames: ['volume'],
      registers,
    });
    this.writtenBytes = new Counter({
      name: 'tandem_nbd_written_bytes_total',
      help: 'Bytes NBD clients wrote (WRITE payloads acknowledged; WRITE_ZEROES and TRIM not counted), by export (volume)',
      labelNames: ['volume'],
      registers,
    });
  }

  forExport(exportName: string): NbdExportMeter {
    let meter = this.meters.get(exportName);
    if (meter === undefined) {
      const operation = (name: Operation, bytes: BoundCounter | null): OperationMeter =>
        new OperationMeter(
          this.requests.labels(exportName, operations[name]),
          this.errors.labels(exportName, operations[name]),
          this.duration.labels(exportName, operations[name]),
          bytes,
        );
      meter = {
        read: operation('read', this.readBytes.labels(exportName)),
        write: operation('write', this.writtenBytes.labels(exportName)),
        flush: operation('flush', null),
        trim: operation('trim', null),
        writeZeroes: operation('writeZeroes', null),
        blockStatus: operation('blockStatus', null),
      };
      // Zero series from the first connection on, so a rate over them starts at once.
      this.readBytes.labels(exportName).inc(0);
      this.writtenBytes.labels(exportName).inc(0);
      for (const name of Object.keys(operations) as Operation[]) this.requests.labels(exportName, operations[name]).inc(0);
      this.meters.set(exportName, meter);
    }
    return meter;
  }
}

/** The storage engine's WAL commits and fdatasync latencies. */
export class StorageMetrics implements StorageMeter {
  private readonly commits: BoundCounter;
  private readonly syncs: Record<'wal' | 'data', BoundHistogram>;

  constructor(registry: Registry) {
    const registers = [registry];
    const commits = new Counter({
      name: 'tandem_wal_commits_total',
      help: 'Group commits of the metadata write-ahead log that made records durable',
      registers,
    });
    const fsync = new Histogram({
      name: 'tandem_fsync_duration_seconds',
      help: 'fdatasync latency of the metadata WAL (file="wal") and of the pool extent files before a commit (file="data")',
      labelNames: ['file'],
      buckets: FSYNC_SECONDS_BUCKETS,
      registers,
    });
    this.commits = commits;
    this.syncs = { wal: fsync.labels('wal'), data: fsync.labels('data') };
    commits.inc(0);
  }

  walCommitted(): void {
    this.commits.inc();
  }

  synced(file: 'wal' | 'data', seconds: number): void {
    this.syncs[file].observe(seconds);
  }
}

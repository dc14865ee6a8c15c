/** Command-line options of `npm run bench:nbd`. */
export interface BenchOptions {
  runtime: number;
  reps: number;
  dir: string | null;
  json: string | null;
  servers: ServerName[];
  jobs: string[] | null;
  fresh: boolean;
  snapshots: boolean;
  snapSamples: number;
  keep: boolean;
  cold: boolean;
  multiConn: boolean;
  connections: number[];
  tls: boolean;
}

export const serverNames = ['tandem', 'qemu-nbd', 'nbdkit'] as const;
export type ServerName = (typeof serverNames)[number];

export const usage = `usage: npm run bench:nbd -- [options]
  --runtime N        seconds per fio run (default 5)
  --reps N           interleaved repetitions (default 3)
  --dir DIR          scratch directory (default: a new one under /tmp, removed at exit)
  --json FILE        also write the results as JSON
  --servers LIST     comma list of tandem,qemu-nbd,nbdkit (default: all)
  --jobs LIST        comma list of job ids (seq1m-qd1,seq1m-qd16,rand4k-qd1,rand4k-qd32,rand4k-qd1-flush,
                     seq1m-qd1-read,seq1m-qd16-read,rand4k-qd1-read,rand4k-qd32-read); none: --jobs none
  --no-cold          skip the cold-read leg
  --no-multi-conn    skip the multi-connection leg
  --connections LIST connection counts of the multi-connection leg (default 1,2,4)
  --no-tls           skip the TLS leg
  --no-fresh         skip the "fresh thin" 4K row
  --no-snapshots     skip the snapshot section
  --snap-samples N   snapshot creations timed per size (default 10)
  --keep             keep the scratch directory`;

export class UsageError extends Error {}

/**
 * Walks command-line arguments: `handle` gets each option and `value()`, which takes the next
 * argument as that option's value (a UsageError when there is none). Shared by the bench scripts.
 */
export function eachArg(argv: string[], handle: (arg: string, value: () => string) => void): void {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    handle(arg, () => {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`${arg} needs a value`);
      return next;
    });
  }
}

/** A whole number ≥ 1 given for option `name`, or a UsageError. */
export function positiveInt(name: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`${name} needs a whole number ≥ 1, got ${text}`);
  return value;
}

export function parseArgs(argv: string[]): BenchOptions {
  const options: BenchOptions = {
    runtime: 5,
    reps: 3,
    dir: null,
    json: null,
    servers: [...serverNames],
    jobs: null,
    fresh: true,
    snapshots: true,
    snapSamples: 10,
    keep: false,
    cold: true,
    multiConn: true,
    connections: [1, 2, 4],
    tls: true,
  };
  eachArg(argv, (arg, value) => {
    switch (arg) {
      case '--runtime': options.runtime = positiveInt(arg, value()); break;
      case '--reps': options.reps = positiveInt(arg, value()); break;
      case '--snap-samples': options.snapSamples = positiveInt(arg, value()); break;
      case '--dir': options.dir = value(); break;
      case '--json': options.json = value(); break;
      case '--jobs': options.jobs = value().split(',').filter(Boolean); break;
      case '--servers': {
        const list = value().split(',').filter(Boolean);
        for (const name of list) {
          if (!(serverNames as readonly string[]).includes(name)) throw new UsageError(`unknown server ${name}`);
        }
        options.servers = list as ServerName[];
        break;
      }
      case '--no-fresh': options.fresh = false; break;
      case '--no-snapshots': options.snapshots = false; break;
      case '--keep': options.keep = true; break;
      case '--no-cold': options.cold = false; break;
      case '--no-multi-conn': options.multiConn = false; break;
      case '--no-tls': options.tls = false; break;
      case '--connections': options.connections = value().split(',').filter(Boolean).map((n) => positiveInt('--connections', n)); break;
      case '-h': case '--help': throw new UsageError('');
      default: throw new UsageError(`unknown option ${arg}`);
    }
  });
  return options;
}

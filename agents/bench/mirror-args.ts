/** Command-line options of `npm run bench:mirror`. */
import { eachArg, UsageError } from './args.ts';

export interface MirrorOptions {
  runtime: number;
  reps: number;
  /** Added round-trip delays through the proxy, ms. */
  rtts: number[];
  /** Volume size of the resync and preflight sections, MiB. */
  resyncMiB: number;
  /** Percent of tracks changed per resync trial. */
  percents: number[];
  modes: boolean;
  /** Also run the modes at +0 ms with alpha's link dialing beta directly (no proxy), so the proxy's own cost shows. */
  direct: boolean;
  /** Mirror modes of the modes section (plain always runs: it is the anchor). */
  only: string[];
  /** Pin beta to its own CPU and alpha, fio and the proxy to the others (pin.ts). */
  pin: boolean;
  resync: boolean;
  preflight: boolean;
  dir: string | null;
  json: string | null;
  keep: boolean;
}

export const mirrorUsage = `usage: npm run bench:mirror -- [options]
  --quick            a short run: 1 s per fio run, 1 rep, 256 MiB resync volume
  --runtime N        seconds per fio run (default 4)
  --reps N           interleaved repetitions (default 3)
  --rtt LIST         added round trips in ms through the proxy (default 0,1,5)
  --resync-size MiB  resync / preflight volume size (default 1024)
  --percents LIST    changed percentages for the resync section (default 0.1,1,10)
  --only LIST        mirror modes of the modes section: async,semi-sync,sync,shipping (default all; plain always runs)
  --no-direct        skip the modes at +0 ms without the proxy (alpha's link dialing beta directly)
  --no-pin           do not pin beta to its own CPU (default: beta on the last CPU, alpha, fio and the proxy on the others)
  --no-modes | --no-resync | --no-preflight   skip a section
  --dir DIR          scratch directory (default: a new one under /tmp, removed at exit)
  --json FILE        also write the results as JSON
  --keep             keep the scratch directory`;

function positive(name: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${name} needs a number > 0, got ${text}`);
  return value;
}

function list(name: string, text: string, allowZero: boolean): number[] {
  return text.split(',').filter(Boolean).map((part) => {
    const value = Number(part);
    if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) throw new UsageError(`${name}: bad value ${part}`);
    return value;
  });
}

export function parseMirrorArgs(argv: string[]): MirrorOptions {
  const options: MirrorOptions = {
    runtime: 4,
    reps: 3,
    rtts: [0, 1, 5],
    resyncMiB: 1024,
    percents: [0.1, 1, 10],
    modes: true,
    direct: true,
    only: ['async', 'semi-sync', 'sync', 'shipping'],
    pin: true,
    resync: true,
    preflight: true,
    dir: null,
    json: null,
    keep: false,
  };
  eachArg(argv, (arg, value) => {
    switch (arg) {
      case '--quick':
        options.runtime = 1;
        options.reps = 1;
        options.resyncMiB = 256;
        break;
      case '--runtime': options.runtime = positive(arg, value()); break;
      case '--reps': options.reps = Math.round(positive(arg, value())); break;
      case '--rtt': options.rtts = list(arg, value(), true); break;
      case '--resync-size': options.resyncMiB = Math.round(positive(arg, value())); break;
      case '--percents': options.percents = list(arg, value(), false); break;
      case '--only': {
        const known = ['async', 'semi-sync', 'sync', 'shipping'];
        options.only = value().split(',').filter((mode) => mode && mode !== 'plain');
        for (const mode of options.only) if (!known.includes(mode)) throw new UsageError(`--only: unknown mode ${mode}`);
        break;
      }
      case '--no-modes': options.modes = false; break;
      case '--no-direct': options.direct = false; break;
      case '--no-pin': options.pin = false; break;
      case '--no-resync': options.resync = false; break;
      case '--no-preflight': options.preflight = false; break;
      case '--dir': options.dir = value(); break;
      case '--json': options.json = value(); break;
      case '--keep': options.keep = true; break;
      case '-h': case '--help': throw new UsageError('');
      default: throw new UsageError(`unknown option ${arg}`);
    }
  });
  return options;
}

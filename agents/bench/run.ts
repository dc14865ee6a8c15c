/** The scaffolding every bench script shares: argument handling, load average, the JSON report and the entry point. */
import fs from 'node:fs';
import os from 'node:os';
import { UsageError } from './args.ts';
import { progress } from './interleave.ts';

/** The parsed command line, or the usage text and exit (code 2 after a bad option, 0 for --help). */
export function parseOrExit<T>(parse: (argv: string[]) => T, usage: string): T {
  try {
    return parse(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    if (error.message) console.error(error.message);
    console.error(usage);
    process.exit(error.message ? 2 : 0);
  }
}

export const loadAverage = (): string => os.loadavg().map((l) => l.toFixed(2)).join(' ');

export const loadLine = (before: string, after: string): string =>
  `load average before ${before}, after ${after} (2 shared cores: expect ±40 %)`;

/** Writes the run's JSON report when --json named a file. */
export function writeJsonReport(file: string | null, json: object): void {
  if (!file) return;
  fs.writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  progress(`wrote ${file}`);
}

/** Runs a bench script's main; a failure prints `bench:NAME failed: …` and sets exit code 1. */
export function runBench(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(`bench:${name} failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}

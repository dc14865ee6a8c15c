import { formatSize, ProblemError, type ProblemCode } from '@tandem/contract';

/** An error that ends the CLI with a given exit code: 2 for usage errors, 1 for refused operations. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly problem: ProblemCode,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, 2, 'bad-request');
}

/** Columns padded to their widest cell; numeric-looking columns aligned right. */
export function formatTable(headers: string[], rows: string[][], rightAligned: number[] = []): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (rightAligned.includes(column) ? cell.padStart(widths[column]) : cell.padEnd(widths[column])))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** `key  value` lines with the keys padded. */
export function formatFields(fields: Array<[string, string]>): string {
  const width = Math.max(...fields.map(([key]) => key.length));
  return fields.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n');
}

export function size(bytes: number): string {
  return formatSize(bytes);
}

export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints an error the way every command does and gives its exit code. */
export function reportError(error: unknown, json: boolean): number {
  let problem: ProblemCode = 'internal-error';
  let message: string;
  let exitCode = 1;
  if (error instanceof CliError) {
    ({ problem, message, exitCode } = error);
  } else if (error instanceof ProblemError) {
    ({ problem, message } = error);
  } else {
    message = error instanceof Error ? error.message : String(error);
  }
  if (json) process.stderr.write(`${JSON.stringify({ problem, message })}\n`);
  else process.stderr.write(`error: ${problem}: ${message}\n`);
  return exitCode;
}

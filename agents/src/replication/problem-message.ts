import { ProblemError } from '@tandem/contract';

/** An error as one line for logs and events: a problem's code and message, else the error's message. */
export function problemMessage(error: unknown): string {
  if (error instanceof ProblemError) return `${error.problem}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

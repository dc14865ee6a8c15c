import { describe, expect, it } from 'vitest';
import type { SessionState } from '@tandem/contract';
import { copySetState, type SourceActivity } from './copy-set-state.ts';

describe('copySetState', () => {
  it('follows the session outside preparing and prepared, without asking the source', () => {
    const never = (): SourceActivity => {
      throw new Error('asked');
    };
    const cases: Array<[SessionState, string]> = [
      ['defined', 'defined'],
      ['suspended', 'suspended'],
      ['target-available', 'target-available'],
      ['recovering', 'target-available'],
    ];
    for (const [session, state] of cases) expect(copySetState(session, never), session).toBe(state);
  });

  it('while preparing or prepared, tells what the source does; a target is duplex once the session is prepared', () => {
    const table: Array<[SessionState, SourceActivity, string]> = [
      ['prepared', 'target', 'duplex'],
      ['preparing', 'target', 'syncing'],
      ['prepared', 'stopped', 'suspended'],
      ['preparing', 'unreached', 'connecting'],
      ['prepared', 'unreached', 'connecting'],
      ['preparing', 'copying', 'syncing'],
      ['prepared', 'copying', 'syncing'],
      ['prepared', 'mirroring', 'duplex'],
    ];
    for (const [session, activity, state] of table) expect(copySetState(session, () => activity), `${session} ${activity}`).toBe(state);
  });
});

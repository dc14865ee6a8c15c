import { describe, expect, it } from 'vitest';
import { SessionRole } from './role.ts';

const session = (direction: 'h1-h2' | 'h2-h1') => ({ controlAgentId: 'ctl', peerAgentId: 'sec', direction, type: 'async' as const });

describe('SessionRole', () => {
  it('names each agent of a session once: control agent and members at H1, the secondary at H2, the source by direction', () => {
    const rows = [];
    for (const direction of ['h1-h2', 'h2-h1'] as const) {
      for (const me of ['ctl', 'sec', 'mem']) {
        for (const members of [0, 2]) {
          const role = new SessionRole(session(direction), me, () => members);
          rows.push([direction, me, members, role.site, role.source, role.control, role.secondary, role.member, role.otherAgent, role.coordinator, role.multiPrimary, role.controlsMembers, role.drivesRounds].join(' '));
        }
      }
    }
    expect(rows).toEqual([
      // direction me members | site source control secondary member other coordinator multiPrimary controlsMembers drivesRounds
      'h1-h2 ctl 0 h1 true true false false sec ctl false false true',
      'h1-h2 ctl 2 h1 true true false false sec ctl true true true',
      'h1-h2 sec 0 h2 false false true false ctl ctl false false false',
      'h1-h2 sec 2 h2 false false true false ctl ctl true false false',
      // A member knows no member copy sets of others, but is multi-primary by being one.
      'h1-h2 mem 0 h1 true false false true sec ctl true false false',
      'h1-h2 mem 2 h1 true false false true sec ctl true false false',
      'h2-h1 ctl 0 h1 false true false false sec sec false false false',
      'h2-h1 ctl 2 h1 false true false false sec sec true true false',
      'h2-h1 sec 0 h2 true false true false ctl sec false false true',
      'h2-h1 sec 2 h2 true false true false ctl sec true false true',
      'h2-h1 mem 0 h1 false false false true sec sec true false false',
      'h2-h1 mem 2 h1 false false false true sec sec true false false',
    ]);
  });

  it('reads the member copy sets only when a multi-primary answer is asked for, and once', () => {
    let reads = 0;
    const role = new SessionRole(session('h1-h2'), 'ctl', () => {
      reads++;
      return 1;
    });
    expect([role.site, role.source, role.otherAgent, role.coordinator]).toEqual(['h1', true, 'sec', 'ctl']);
    expect(reads).toBe(0);
    expect([role.multiPrimary, role.controlsMembers, role.drivesRounds]).toEqual([true, true, true]);
    expect(reads).toBe(1);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PeerListSchema, type SessionInfo } from '@tandem/contract';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { eventsAbout, preparedSession, qemuIo, showSession, showSessionText, until, untilSession } from './helpers/session-views.ts';

/**
 * Clock skew between the sites, with real agent processes: beta's wall clock
 * runs 2 minutes ahead (TANDEM_CLOCK_SKEW_MS, as on a host whose clock is set
 * wrong). Each agent measures the other's clock over the peer link and says
 * so at the API (peers, session peers), the CLI (`peers list`, `session
 * show`), in the session's health (warning, the site and the offset named)
 * and in an event; the times it shows are in its own clock (an async
 * target's consistency time is not 2 minutes off, the exposure not 2 minutes
 * too large). After beta's clock is set right, the warning goes.
 */

const SKEW_MS = 120_000;
/** The measurement is right to within half a round trip on loopback; a loaded machine gets this much slack. */
const WITHIN_MS = 1500;
let alpha: AgentProcess;
let beta: AgentProcess;

beforeAll(async () => {
  [alpha, beta] = await startPairedAgents([{ site: 'alpha' }, { site: 'beta', env: { TANDEM_CLOCK_SKEW_MS: String(SKEW_MS) } }]);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
});

const peersOf = async (agent: AgentProcess) => (await agent.api.call('GET', '/v1/peers', PeerListSchema)).peers;

describe('clock skew between the sites', () => {
  it('each agent measures the other clock over the link: API, CLI and an event say beta runs 120 s ahead', async () => {
    // The link is dialled on first use: a session makes both sides dial.
    await preparedSession(alpha, beta, 'ck', 'sync', 'p-ck', 'c-ck');
    const [atAlpha] = await until('alpha measured beta', async () => (await peersOf(alpha)).filter((p) => p.site === 'beta' && p.clock));
    expect(Math.abs(atAlpha.clock!.offsetMs - SKEW_MS)).toBeLessThan(WITHIN_MS);
    const [atBeta] = await until('beta measured alpha', async () => (await peersOf(beta)).filter((p) => p.site === 'alpha' && p.clock));
    expect(Math.abs(atBeta.clock!.offsetMs + SKEW_MS)).toBeLessThan(WITHIN_MS);

    const list = await alpha.cli(['peers', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/CLOCK/);
    expect(list.stdout).toMatch(/beta\s.*\+1[12]\d\.\d s/);
    expect((await beta.cli(['peers', 'list'])).stdout).toMatch(/alpha\s.*-1[12]\d\.\d s/);

    const events = await until('a clock-skew event at alpha', async () => {
      const found = await eventsAbout(alpha, 'link.clock-skew', 'beta');
      return found.length > 0 ? found : null;
    });
    expect(events).toHaveLength(1);
    expect(events[0].severity).toBe('warning');
    expect(events[0].message).toMatch(/^the clock of beta is 1[12]\d\.\d s ahead of this agent's/);
    expect(events[0].message).toMatch(/NTP/);
  }, 180_000);

  it("the session's health and detail name the site and the offset, at the API and the CLI, at both sites", async () => {
    const warned = (view: SessionInfo) => view.health === 'warning' && /the clock of \w+ is 1[12]\d\.\d s (ahead of|behind) this agent's/.test(view.detail ?? '');
    const atAlpha = await untilSession(alpha, 'ck', 'alpha warns of the skew', warned);
    expect(atAlpha.state).toBe('prepared');
    expect(atAlpha.detail).toMatch(/the clock of beta is 1[12]\d\.\d s ahead of this agent's .*times are shown in alpha's clock/);
    expect(atAlpha.peers).toEqual([expect.objectContaining({ site: 'beta', link: 'connected', clock: expect.objectContaining({ offsetMs: expect.any(Number) }) })]);
    const atBeta = await untilSession(beta, 'ck', 'beta warns of the skew', warned);
    expect(atBeta.detail).toMatch(/the clock of alpha is 1[12]\d\.\d s behind this agent's .*times are shown in beta's clock/);

    const text = await showSessionText(alpha, 'ck');
    expect(text).toMatch(/state\s+prepared, health warning/);
    expect(text).toMatch(/detail\s+the clock of beta is 1[12]\d\.\d s ahead/);
    expect(text).toMatch(/peers\s+beta \(target\) connected since \S+, clock \+1[12]\d\.\d s \(±\d+ ms\)/);
    expect(await showSessionText(beta, 'ck')).toMatch(/peers\s+alpha \(source\) connected since \S+, clock -1[12]\d\.\d s/);
  }, 120_000);

  it("times are shown in the reporting agent's clock: an async target's consistency time and exposure are not 120 s off", async () => {
    await preparedSession(alpha, beta, 'ak', 'async', 'p-ak', 'c-ak');
    await qemuIo(alpha.nbdUri('p-ak'), 'write -P 0x71 0 1M');
    const written = Date.now();
    // Beta applied a round cut after the write: its cut time, stamped by alpha's clock, is read in beta's (a round cut
    // before qemu-io returned may still precede the write's acknowledgement: only a later one is sure to hold it).
    const atBeta = await untilSession(beta, 'ak', 'a round cut after the write applied at beta', (view) => {
      if (!view.consistencyTime) return false;
      const local = Date.parse(view.consistencyTime) - SKEW_MS; // back into the test's (alpha's) clock
      return local >= written;
    });
    const observed = Date.parse(atBeta.observedAt);
    const consistency = Date.parse(atBeta.consistencyTime!);
    expect(consistency, 'not in the past by the skew').toBeGreaterThan(observed - 30_000);
    expect(consistency, 'not in the future').toBeLessThanOrEqual(observed);
    expect(atBeta.exposureSeconds!).toBeLessThan(30);
    await qemuIo(beta.nbdUri('c-ak'), 'read -P 0x71 0 1M');
    // At alpha the same session: its own clock, the same small exposure.
    const atAlpha = await untilSession(alpha, 'ak', 'alpha knows a group applied', (view) => view.consistencyTime !== null);
    expect(atAlpha.exposureSeconds!).toBeLessThan(30);
    expect(Math.abs(Date.parse(atAlpha.observedAt) - Date.now())).toBeLessThan(5000);
  }, 180_000);

  it("the primary killed: beta's unreachable since and consistency time are in beta's clock (exposure from then, not 120 s more)", async () => {
    const killedAt = Date.now() + SKEW_MS; // in beta's clock
    await alpha.kill('SIGKILL');
    try {
      const noticed = await untilSession(beta, 'ck', 'beta says alpha is unreachable', (view) => /primary site alpha unreachable since/.test(view.detail ?? ''), 20_000);
      const since = Date.parse(noticed.peers[0].unreachableSince!);
      expect(since).toBeGreaterThan(killedAt - 5000);
      expect(since).toBeLessThanOrEqual(Date.parse(noticed.observedAt));
      expect(Date.parse(noticed.consistencyTime!)).toBe(since);
      expect(noticed.exposureSeconds!).toBeLessThan(30);
      // The measured clock stands while the link is down: the warning stays said.
      expect(noticed.detail).toMatch(/the clock of alpha is 1[12]\d\.\d s behind/);
    } finally {
      await alpha.restart({ samePorts: true });
    }
    await untilSession(beta, 'ck', 'alpha back at beta', (view) => view.peers[0].link === 'connected' && !/unreachable/.test(view.detail ?? ''));
  }, 180_000);

  it("after beta's clock is set right, the warning goes at both sites and the measured offset is about 0", async () => {
    await beta.restart({ samePorts: true, env: { TANDEM_CLOCK_SKEW_MS: '0' } });
    for (const agent of [alpha, beta]) {
      const view = await untilSession(agent, 'ck', 'normal again', (v) => v.state === 'prepared' && v.health === 'normal' && v.detail === null && v.peers[0].clock != null && Math.abs(v.peers[0].clock.offsetMs) < WITHIN_MS, 90_000);
      expect(view.peers[0].link).toBe('connected');
      expect(await showSessionText(agent, 'ck')).toMatch(/state\s+prepared, health normal/);
    }
    const [atAlpha] = (await peersOf(alpha)).filter((p) => p.site === 'beta');
    expect(Math.abs(atAlpha.clock!.offsetMs)).toBeLessThan(WITHIN_MS);
    expect((await showSession(alpha, 'ak')).detail ?? '').not.toMatch(/clock/);
  }, 180_000);
});

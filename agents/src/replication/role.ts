import type { SessionRecord } from './session-store.ts';

/**
 * What this agent is in a session: worked out in one place from the
 * session's agents and direction, instead of id comparisons at every
 * caller (issue 12, "one role(me)"). Vocabulary: contract/GLOSSARY.md.
 *
 * A session has one secondary agent (`peerAgentId`, site H2) and one or
 * more primary agents at H1: the control agent (`controlAgentId`, where the
 * session was defined and its actions run) and, in a multi-primary session,
 * member agents holding further copy sets' primary volumes.
 *
 * A small class rather than an object literal with getters: a target asks
 * for it on every request it serves, so it is kept to one allocation.
 */
export class SessionRole {
  /** The site this agent is at for the session: H2 for the secondary agent, H1 for every primary agent. */
  readonly site: 'h1' | 'h2';
  /** This agent sends in the session's current direction (H1 when H1->H2, H2 when H2->H1). */
  readonly source: boolean;
  /** This agent holds the session's H2 volumes. */
  readonly secondary: boolean;
  /** This agent is the session's control agent. */
  readonly control: boolean;
  /** This agent is a primary agent other than the control agent (a multi-primary member). */
  readonly member: boolean;
  /** The agent this one mirrors with by default: the secondary for every primary agent, the control agent for the secondary. */
  readonly otherAgent: string;
  /** The agent that cuts the consistency rounds in the current direction: the control agent (H1->H2) or the secondary (H2->H1). */
  readonly coordinator: string;
  /** The session's consistency groups are cut in rounds (every async session, with one primary agent or several). */
  readonly rounds: boolean;
  private multi: boolean | undefined;

  /**
   * The role of agent `me` in `session`. `memberCopySets` counts the copy
   * sets on member agents this agent knows of (the control agent and the
   * secondary keep them); it is called only when a multi-primary answer is
   * asked for, and once.
   */
  constructor(
    session: Pick<SessionRecord, 'controlAgentId' | 'peerAgentId' | 'direction' | 'type'>,
    /** This agent's id. */
    readonly me: string,
    private readonly memberCopySets: () => number,
  ) {
    this.secondary = session.peerAgentId === me;
    this.control = !this.secondary && session.controlAgentId === me;
    this.member = !this.secondary && !this.control;
    this.site = this.secondary ? 'h2' : 'h1';
    this.source = this.site === (session.direction === 'h1-h2' ? 'h1' : 'h2');
    this.otherAgent = this.secondary ? session.controlAgentId : session.peerAgentId;
    this.coordinator = session.direction === 'h1-h2' ? session.controlAgentId : session.peerAgentId;
    this.rounds = session.type === 'async';
  }

  /** The session has copy sets on several primary agents, as far as this agent knows. */
  get multiPrimary(): boolean {
    return (this.multi ??= this.member || this.memberCopySets() > 0);
  }

  /** This agent is the control agent of a multi-primary session. */
  get controlsMembers(): boolean {
    return this.control && this.multiPrimary;
  }

  /** This agent cuts the rounds of an async session in its current direction. */
  get drivesRounds(): boolean {
    return this.rounds && this.coordinator === this.me;
  }
}

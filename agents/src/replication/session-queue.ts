/**
 * Runs work for a session one piece at a time, in arrival order (target-side
 * applies and commits), and can hold the queue: while held, nothing of that
 * session is applied, so the target volumes stay a consistent image.
 */
export class SessionQueue {
  /** Per session: the work in progress; the next one waits for it. */
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(session: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(session) ?? Promise.resolve();
    const next = previous.then(work, work);
    this.tails.set(
      session,
      next.then(
        () => {},
        () => {},
      ),
    );
    return next;
  }

  /** Waits for the work in progress, then holds the session's queue until the returned release is called. */
  async freeze(session: string): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    void this.run(session, async () => {
      entered();
      await held;
    });
    await inside;
    return release;
  }
}

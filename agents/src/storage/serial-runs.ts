/**
 * One run at a time for any number of requests (group commit): a request
 * while nothing runs starts a run; a request while one runs shares the one
 * run queued behind it, which starts once the running one settles (either
 * way). So every request is served by a run that starts after it. Once
 * `failure` returns an error, a run due to start rejects with it instead.
 */
export class SerialRuns {
  private current: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(
    private readonly options: {
      run: () => Promise<void>;
      failure: () => Error | null;
      /** Told of each run as it starts and once it settled. */
      started?: (run: Promise<void>) => void;
      settled?: (run: Promise<void>) => void;
    },
  ) {}

  /** The run in progress, if any. */
  get running(): Promise<void> | null {
    return this.current;
  }

  /** The run queued behind it, if any. */
  get queued(): Promise<void> | null {
    return this.next;
  }

  /**
   * Settles once no run is in progress or queued: a run that starts while
   * it waits is waited for too. `unless` is asked before each wait; when it
   * returns true it settles at once (a caller that may be inside the running
   * run must not wait for it, nor for the run queued behind it).
   */
  async idle(unless: () => boolean = () => false): Promise<void> {
    while (this.current || this.next) {
      if (unless()) return;
      await (this.next ?? this.current)!.catch(() => {});
    }
  }

  request(): Promise<void> {
    if (this.next) return this.next;
    if (!this.current) return this.start();
    this.next = this.current.then(
      () => this.start(),
      () => this.start(),
    );
    return this.next;
  }

  private start(): Promise<void> {
    this.next = null;
    const failure = this.options.failure();
    if (failure) return Promise.reject(failure);
    const run = this.options.run().finally(() => {
      if (this.current === run) this.current = null;
      this.options.settled?.(run);
    });
    this.current = run;
    this.options.started?.(run);
    return run;
  }
}

/**
 * The agent under systemd (packaging/systemd/tandem-agent.service,
 * Type=notify): READY=1 once every listener listens, WATCHDOG=1 from the
 * event loop at half the unit's WatchdogSec (a stuck loop stops the pings
 * and systemd restarts the agent), STOPPING=1 on shutdown, RELOADING=1 and
 * READY=1 around a reload, STATUS= lines for `systemctl status`.
 *
 * The datagrams go out through the agent's native addon (agents/native,
 * sd-notify.c): Node has no Unix datagram sockets, and the addon sends from
 * the main process itself (NotifyAccess=main). Outside systemd
 * (no $NOTIFY_SOCKET) all of this is a no-op.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { ProblemError } from '@tandem/contract';
import { agentPackageDir } from './package-dir.ts';

interface NotifyAddon {
  sdNotify(socketPath: string, message: string): number;
}

export interface SystemdNotifier {
  /** The unit's watchdog ping interval (half of WatchdogSec), null without a watchdog. */
  readonly watchdogIntervalMs: number | null;
  ready(status: string): void;
  reloading(): void;
  stopping(status: string): void;
  status(status: string): void;
  /** Stops the watchdog pings (shutdown). */
  close(): void;
}

function loadAddon(): NotifyAddon | null {
  try {
    const addon = createRequire(import.meta.url)(path.join(agentPackageDir(), 'native/build/Release/tandem_nowait_io.node')) as Partial<NotifyAddon>;
    return typeof addon.sdNotify === 'function' ? (addon as NotifyAddon) : null;
  } catch {
    return null;
  }
}

/**
 * The notifier for this process, or null when systemd did not ask for
 * notifications. Throws `not-supported` when it did but the native addon
 * is missing: the unit would otherwise wait for READY=1 until its start
 * timeout, with nothing said.
 */
export function systemdNotifier(env: NodeJS.ProcessEnv = process.env): SystemdNotifier | null {
  const socketPath = env.NOTIFY_SOCKET;
  if (!socketPath) return null;
  const addon = loadAddon();
  if (!addon) {
    throw new ProblemError(
      'not-supported',
      `NOTIFY_SOCKET is set (systemd Type=notify) but the agent's native addon is missing (${path.join(agentPackageDir(), 'native')}; built by scripts/setup.sh or the package's install): it sends the notifications`,
    );
  }
  // Children must not notify in our name.
  delete env.NOTIFY_SOCKET;
  const send = (message: string) => {
    const result = addon.sdNotify(socketPath, message);
    if (result < 0) process.emitWarning(`sd_notify to ${socketPath} failed (errno ${-result})`, 'SystemdNotifyWarning');
  };
  const watchdogUsec = Number(env.WATCHDOG_USEC);
  const watchdogPid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : process.pid;
  const watchdogIntervalMs = Number.isFinite(watchdogUsec) && watchdogUsec > 0 && watchdogPid === process.pid ? Math.max(1, Math.floor(watchdogUsec / 2000)) : null;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  let watchdog: NodeJS.Timeout | null = null;
  const oneLine = (text: string) => text.replace(/\s+/g, ' ');
  return {
    watchdogIntervalMs,
    ready(status) {
      send(`READY=1\nMAINPID=${process.pid}\nSTATUS=${oneLine(status)}`);
      if (watchdogIntervalMs !== null && watchdog === null) {
        // From the event loop: a loop that stops turning stops the pings.
        watchdog = setInterval(() => send('WATCHDOG=1'), watchdogIntervalMs);
        watchdog.unref();
      }
    },
    reloading() {
      const monotonicUsec = process.hrtime.bigint() / 1000n;
      send(`RELOADING=1\nMONOTONIC_USEC=${monotonicUsec}`);
    },
    stopping(status) {
      send(`STOPPING=1\nSTATUS=${oneLine(status)}`);
    },
    status(status) {
      send(`STATUS=${oneLine(status)}`);
    },
    close() {
      if (watchdog) clearInterval(watchdog);
      watchdog = null;
    },
  };
}

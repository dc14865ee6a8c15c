/** The part of an IPC event that says who sent it (Electron's IpcMainInvokeEvent has it). */
export interface IpcSenderInfo {
  senderFrame: { url: string; parent: unknown } | null;
}

/**
 * True when the invoking frame is the main frame of a page served by the
 * console backend: not a subframe, not another origin, not a stale frame.
 */
export function senderIsFrom(origin: string) {
  return (event: IpcSenderInfo): boolean => {
    const frame = event.senderFrame;
    if (!frame || frame.parent !== null) return false;
    try {
      return new URL(frame.url).origin === origin;
    } catch {
      return false;
    }
  };
}

import { ipcMain, type IpcMainInvokeEvent } from 'electron';
import type { IpcChannel, IpcChannels } from '../shared/ipc-channels.ts';

/**
 * Registers a typed IPC handler that answers only the app's own window
 * frames (GitHub Desktop's safeListener): a frame from any other origin gets
 * an error and the handler never runs.
 */
export function handleIpc<C extends IpcChannel>(
  channel: C,
  isTrustedSender: (event: IpcMainInvokeEvent) => boolean,
  handler: (argument: IpcChannels[C][0], event: IpcMainInvokeEvent) => Promise<IpcChannels[C][1]> | IpcChannels[C][1],
): void {
  ipcMain.handle(channel, async (event, argument: unknown) => {
    if (!isTrustedSender(event)) throw new Error(`IPC ${channel} refused: the sender is not the Tandem console`);
    return handler(argument as IpcChannels[C][0], event);
  });
}

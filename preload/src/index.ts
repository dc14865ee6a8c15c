import { contextBridge, ipcRenderer } from 'electron';
import type { IpcChannel, IpcChannels, TandemBridge } from '../../main/src/shared/ipc-channels.ts';

/** Typed invoke: only channels of the shared map, with their argument and result types. */
function invoke<C extends IpcChannel>(channel: C, argument: IpcChannels[C][0]): Promise<IpcChannels[C][1]> {
  return ipcRenderer.invoke(channel, argument) as Promise<IpcChannels[C][1]>;
}

const bridge: TandemBridge = {
  desktop: true,
  backendEndpoint: () => invoke('backend:endpoint', undefined),
  saveFile: (request) => invoke('dialog:save-file', request),
  showNotification: (notification) => invoke('notification:show', notification),
};

contextBridge.exposeInMainWorld('tandem', bridge);

import { useEffect, useRef, useState } from 'react';
import { alertSubjectText } from '@tandem/contract';
import type { SiteAlert } from './use-alerts.ts';

/**
 * How desktop notifications reach the administrator: through the desktop
 * app's main process (Electron `Notification`), or the browser's
 * Notification API once permission is granted. `default`: not asked yet
 * (the console asks only when the administrator clicks to enable them);
 * `denied` and `unsupported` degrade quietly to the bell alone.
 */
export type DesktopNotifyState = 'desktop' | 'granted' | 'default' | 'denied' | 'unsupported';

export function desktopNotifyState(): DesktopNotifyState {
  if (typeof window === 'undefined') return 'unsupported';
  if (window.tandem) return 'desktop';
  if (!('Notification' in window)) return 'unsupported';
  return window.Notification.permission;
}

/** Asks the browser for permission (call from a click); answers the state after. */
export async function askNotificationPermission(): Promise<DesktopNotifyState> {
  if (desktopNotifyState() !== 'default') return desktopNotifyState();
  try {
    await window.Notification.requestPermission();
  } catch {
    // An old browser or a refused prompt: the state says what is left.
  }
  return desktopNotifyState();
}

/** The notification of one raised alert: `CRITICAL at alpha: gold link to beta`, the message as body. */
export function alertNotification(item: SiteAlert): { title: string; body: string; tag: string } {
  return {
    title: `${item.alert.severity === 'critical' ? 'Critical' : 'Warning'} at ${item.siteName}: ${alertSubjectText(item.alert.subject)}`,
    body: item.alert.message,
    tag: `tandem-alert-${item.ref}`,
  };
}

/** Shows a notification where one can be shown; says nothing when it cannot. */
export function notifyDesktop(notification: { title: string; body: string; tag: string }): void {
  const state = desktopNotifyState();
  if (state === 'desktop') {
    void window.tandem!.showNotification({ title: notification.title, body: notification.body }).catch(() => {});
    return;
  }
  if (state !== 'granted') return;
  try {
    new window.Notification(notification.title, { body: notification.body, tag: notification.tag });
  } catch {
    // Some browsers allow notifications only from a service worker: the bell stays.
  }
}

/**
 * Notifies once per alert newly raised while the console watches: the
 * alerts a site already had when its list first loaded are not news.
 */
export function useDesktopAlertNotifications(items: SiteAlert[], loaded: ReadonlySet<string>): void {
  const seen = useRef(new Set<string>());
  const known = useRef(new Set<string>());
  const loadedKey = [...loaded].sort().join(',');
  useEffect(() => {
    for (const item of items) {
      if (seen.current.has(item.ref)) continue;
      seen.current.add(item.ref);
      if (item.alert.clearedAt === null && known.current.has(item.siteId)) notifyDesktop(alertNotification(item));
    }
    for (const siteId of loaded) known.current.add(siteId);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- `loadedKey` changes exactly when `loaded` does
  }, [items, loadedKey]);
}

/** The notify state, re-read after the administrator asks for permission. */
export function useDesktopNotifyState(): [DesktopNotifyState, () => Promise<void>] {
  const [state, setState] = useState<DesktopNotifyState>(() => desktopNotifyState());
  return [state, async () => setState(await askNotificationPermission())];
}

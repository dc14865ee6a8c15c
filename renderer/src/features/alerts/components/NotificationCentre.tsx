import { ActionIcon, Badge, Button, Drawer, Group, Indicator, Paper, Stack, Text, Tooltip } from '@mantine/core';
import { alertSubjectText } from '@tandem/contract';
import { useSites } from '../../sites/hooks/use-sites.ts';
import { formatAge, formatClock, withClockTimes } from '../../../lib/site-reach.ts';
import { useNow } from '../../../lib/use-now.ts';
import { useDesktopAlertNotifications, useDesktopNotifyState } from '../hooks/desktop-notifications.ts';
import { useReadAlertsStore } from '../hooks/read-alerts-store.ts';
import { unreadCount, useAllAlerts, type SiteAlert } from '../hooks/use-alerts.ts';

function AlertRow({ item, read, onRead, now }: { item: SiteAlert; read: boolean; onRead: () => void; now: number }) {
  const { alert } = item;
  const active = alert.clearedAt === null;
  return (
    <Paper
      withBorder
      p="xs"
      data-testid={`alert-${item.ref}`}
      data-state={active ? 'active' : 'cleared'}
      data-read={read ? 'true' : 'false'}
      style={{ opacity: active ? 1 : 0.55 }}
    >
      <Group justify="space-between" wrap="nowrap" align="flex-start">
        <Stack gap={2} style={{ minWidth: 0 }}>
          <Group gap="xs">
            <Badge size="sm" color={!active ? 'gray' : alert.severity === 'critical' ? 'red' : 'yellow'}>
              {active ? alert.severity : 'cleared'}
            </Badge>
            <Text size="sm" fw={active && !read ? 700 : 400}>
              {item.siteName}: {alertSubjectText(alert.subject)}
            </Text>
          </Group>
          <Text size="sm">{withClockTimes(alert.message, now)}</Text>
          <Text size="xs" c="dimmed">
            {active
              ? `since ${formatClock(alert.raisedAt, now)} (${formatAge(now - Date.parse(alert.raisedAt))})`
              : `raised ${formatClock(alert.raisedAt, now)}, cleared ${formatClock(alert.clearedAt!, now)} (${formatAge(now - Date.parse(alert.clearedAt!))})`}
          </Text>
        </Stack>
        {active && !read && (
          <Button size="compact-xs" variant="subtle" onClick={onRead} aria-label={`Mark ${alertSubjectText(alert.subject)} read`}>
            Mark read
          </Button>
        )}
      </Group>
    </Paper>
  );
}

/** A bell drawn as SVG (an emoji needs a font a server or a minimal desktop may lack). */
function BellIcon() {
  return (
    <svg width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
      <path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
      <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
    </svg>
  );
}

/**
 * The notification centre: a bell in the header with the number of unread
 * active alerts across every connected site, and a panel listing them
 * (active first, critical first; cleared ones greyed), with mark read and
 * mark all read. Alerts newly raised while the console runs also become
 * desktop notifications (Electron's in the desktop app, the browser's once
 * the administrator allows them).
 */
export function NotificationCentre() {
  const sites = useSites();
  const { items, unread: unreadSites, loaded } = useAllAlerts(sites.data?.sites ?? []);
  const { read, open, setOpen, markRead } = useReadAlertsStore();
  const [notifyState, askPermission] = useDesktopNotifyState();
  const now = useNow();
  useDesktopAlertNotifications(items, loaded);
  const unread = unreadCount(items, read);
  const activeUnread = items.filter((item) => item.alert.clearedAt === null && !read.has(item.ref)).map((item) => item.ref);

  return (
    <>
      <Tooltip label={unread > 0 ? `${unread} unread alert${unread === 1 ? '' : 's'}` : 'Alerts'}>
        <Indicator label={unread} size={18} color="red" disabled={unread === 0} offset={4} data-testid="alert-unread-count">
          <ActionIcon variant="default" size="lg" onClick={() => setOpen(true)} aria-label={`Alerts, ${unread} unread`} data-testid="alert-bell">
            <BellIcon />
          </ActionIcon>
        </Indicator>
      </Tooltip>
      <Drawer opened={open} onClose={() => setOpen(false)} position="right" title="Alerts" size="md" data-testid="alert-centre">
        <Stack gap="xs">
          <Group justify="space-between">
            <Text size="sm" c="dimmed" data-testid="alert-summary">
              {items.filter((item) => item.alert.clearedAt === null).length} active, {unread} unread
            </Text>
            <Button size="xs" variant="light" disabled={activeUnread.length === 0} onClick={() => markRead(activeUnread)}>
              Mark all read
            </Button>
          </Group>
          {notifyState === 'default' && (
            <Button size="xs" variant="subtle" onClick={() => void askPermission()} data-testid="alert-enable-desktop">
              Show new alerts as desktop notifications
            </Button>
          )}
          {notifyState === 'denied' && (
            <Text size="xs" c="dimmed">
              Desktop notifications are blocked for this page in the browser; alerts show here.
            </Text>
          )}
          {unreadSites.map((site) => (
            <Text key={site.siteId} size="xs" c="orange" data-testid={`alert-site-unknown-${site.siteId}`}>
              {site.siteName}: alerts unknown ({withClockTimes(site.problem, now)})
            </Text>
          ))}
          {items.length === 0 && unreadSites.length === 0 && (
            <Text size="sm" c="dimmed" data-testid="alert-empty">
              No alerts.
            </Text>
          )}
          {items.map((item) => (
            <AlertRow key={item.ref} item={item} read={read.has(item.ref)} onRead={() => markRead([item.ref])} now={now} />
          ))}
        </Stack>
      </Drawer>
    </>
  );
}

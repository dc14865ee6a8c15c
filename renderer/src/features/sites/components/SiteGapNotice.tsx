import { Text } from '@mantine/core';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { formatAge, formatClock, type SiteReach } from '../../../lib/site-reach.ts';
import { useNow } from '../../../lib/use-now.ts';

/**
 * Says why a section lacks (current) entries from a site: "alpha unreachable
 * since 12:01:03; last known 3 clusters (as of 12:00:58, 40 s ago)", or that
 * nothing was read from it since the console started. Nothing while live.
 */
export function SiteGapNotice({
  site,
  reach,
  count,
  receivedAt,
  noun,
  testId,
  brief = false,
}: {
  site: SiteSummary;
  reach: SiteReach;
  /** How many it reported last (null: never read). */
  count: number | null;
  receivedAt: number;
  /** Plural noun: `clusters`, `flash copies`, `sessions`. */
  noun: string;
  testId?: string;
  /** Leave out why the site is unreachable (said once, above, already). */
  brief?: boolean;
}) {
  const now = useNow();
  if (reach.live) return null;
  const since = `${site.site} unreachable since ${formatClock(reach.unknownSince)}${reach.reason && !brief ? ` (${reach.reason})` : ''}`;
  const known =
    count === null || receivedAt === 0
      ? `its ${noun} are not known (nothing read from it since this console started)`
      : `last known ${count === 0 ? `no ${noun}` : `${count} ${count === 1 ? noun.replace(/ies$/, 'y').replace(/s$/, '') : noun}`} (as of ${formatClock(new Date(receivedAt).toISOString())}, ${formatAge(now - receivedAt)})${count > 0 ? ', shown marked unknown' : ''}`;
  return (
    <Text size="sm" c="orange" data-testid={testId ?? `gap-${site.site}`}>
      {since}; {known}.
    </Text>
  );
}

import { EventLog } from '../../../components/EventLog.tsx';
import { useFlashEvents } from '../hooks/use-flash.ts';

/** A flash session's events, newest first; they arrive live (each flash event refreshes the list). */
export function FlashEventLog({ siteId, name }: { siteId: string; name: string }) {
  return (
    <EventLog
      events={useFlashEvents(siteId, name)}
      errorTitle="The flash events could not be read"
      empty="No events yet."
      testId={`flash-events-${name}`}
    />
  );
}

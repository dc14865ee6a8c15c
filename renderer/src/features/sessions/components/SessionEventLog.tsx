import { EventLog } from '../../../components/EventLog.tsx';
import { useSessionEvents } from '../hooks/use-sessions.ts';

/** The session's events at one site, newest first (refreshed by the same agent events it lists). */
export function SessionEventLog({ siteId, siteName, name }: { siteId: string; siteName: string; name: string }) {
  return (
    <EventLog
      events={useSessionEvents(siteId, name)}
      errorTitle={`Events at ${siteName} could not be read`}
      empty={<>No events at {siteName} yet.</>}
      testId={`session-events-${siteName}`}
    />
  );
}

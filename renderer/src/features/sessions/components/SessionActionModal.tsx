import { Checkbox, Modal, Stack, Text, TextInput } from '@mantine/core';
import { useState } from 'react';
import { ActionButtons, ActionWarnings } from '../../../components/ActionConfirm.tsx';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import type { ActionPlan } from '../hooks/session-actions.ts';
import type { MergedSession } from '../hooks/session-model.ts';
import { useSessionAction } from '../hooks/use-sessions.ts';
import { JournalEndsNote } from '../../protection/components/JournalEndsNote.tsx';

/** Confirms an action in words that say what will happen; failover needs an acknowledgement, terminate the typed name. */
export function SessionActionModal({ entry, plan, onClose }: { entry: MergedSession; plan: ActionPlan; onClose: () => void }) {
  const act = useSessionAction();
  const [acknowledged, setAcknowledged] = useState(false);
  const [typed, setTyped] = useState('');
  const name = entry.session.name;
  const ready = plan.confirm === 'button' || (plan.confirm === 'acknowledge' ? acknowledged : typed === name);
  return (
    <Modal opened onClose={onClose} title={plan.title} size="lg">
      <Stack>
        <Text size="sm" data-testid="action-consequence">
          {plan.consequence}
        </Text>
        <ActionWarnings warnings={plan.warnings} />
        {plan.action === 'recover' && (
          // The target of the current direction executes the recover: a journal kept there ends with it.
          <JournalEndsNote
            session={name}
            targetSite={entry.session.direction === 'h2-h1' ? entry.session.h1Site : entry.session.h2Site}
            viewSiteIds={entry.views.map((view) => view.siteId)}
          />
        )}
        {plan.confirm === 'acknowledge' && (
          <Checkbox label="I understand what this does to both sites" checked={acknowledged} onChange={(event) => setAcknowledged(event.currentTarget.checked)} />
        )}
        {plan.confirm === 'type-name' && <TextInput label={`Type ${name} to confirm`} value={typed} onChange={(event) => setTyped(event.currentTarget.value)} data-autofocus />}
        {act.error && <ProblemAlert error={act.error} title={`${plan.label.replace('…', '')} did not happen`} />}
        <ActionButtons
          label={plan.label.replace('…', '')}
          color={plan.color}
          ready={ready}
          pending={act.isPending}
          onCancel={onClose}
          onConfirm={() => act.mutate({ siteId: entry.siteId, name, action: plan.action }, { onSuccess: onClose })}
        />
      </Stack>
    </Modal>
  );
}

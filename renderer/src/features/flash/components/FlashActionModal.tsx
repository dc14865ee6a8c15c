import { Checkbox, Modal, Stack, Text } from '@mantine/core';
import type { FlashSessionInfo } from '@tandem/contract';
import { useState } from 'react';
import { ActionButtons, ActionWarnings } from '../../../components/ActionConfirm.tsx';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { isFullyCopied, type FlashActionPlan } from '../hooks/flash-model.ts';
import { useFlashAction } from '../hooks/use-flash.ts';

/** Confirms a flash action in words that name the volumes it overwrites; overwriting actions need an acknowledgement. */
export function FlashActionModal({ siteId, session, plan, onClose }: { siteId: string; session: FlashSessionInfo; plan: FlashActionPlan; onClose: () => void }) {
  const act = useFlashAction();
  const [acknowledged, setAcknowledged] = useState(false);
  const unfinished = !isFullyCopied(session);
  // Withdrawing an unfinished copy leaves targets without a usable image: finishing first is the safe default.
  const [finishCopy, setFinishCopy] = useState(unfinished);
  const ready = plan.confirm === 'button' || acknowledged;
  return (
    <Modal opened onClose={onClose} title={plan.title} size="lg">
      <Stack>
        <Stack gap={4} data-testid="flash-action-consequence">
          {plan.consequences.map((sentence) => (
            <Text key={sentence} size="sm">
              {sentence}
            </Text>
          ))}
        </Stack>
        <ActionWarnings warnings={plan.warnings} />
        {plan.action === 'withdraw' && unfinished && (
          <Checkbox
            label="Finish the background copy first (the session shows Stopping until every track is copied; the targets become complete, independent volumes)"
            checked={finishCopy}
            onChange={(event) => setFinishCopy(event.currentTarget.checked)}
          />
        )}
        {plan.confirm === 'acknowledge' && (
          <Checkbox label="I understand which volumes this overwrites or ends" checked={acknowledged} onChange={(event) => setAcknowledged(event.currentTarget.checked)} />
        )}
        {act.error && <ProblemAlert error={act.error} title={`${plan.label} did not happen`} />}
        <ActionButtons
          label={plan.label}
          color={plan.color}
          ready={ready}
          pending={act.isPending}
          onCancel={onClose}
          onConfirm={() => act.mutate({ siteId, name: session.name, action: plan.action, finishCopy: plan.action === 'withdraw' ? finishCopy : undefined }, { onSuccess: onClose })}
        />
      </Stack>
    </Modal>
  );
}

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isProblemError, problemHttpStatus, type Problem, type ProblemCode } from '@tandem/contract';
import { SchemaValidationError } from './zod-schemas.ts';

type Issue = SchemaValidationError['issues'][number];

const fieldProblems: Record<string, ProblemCode> = {
  sizeBytes: 'invalid-size',
  name: 'invalid-name',
  // Alert thresholds (contract/src/alerts.ts): a negative or out-of-range value.
  rpoTargetSeconds: 'invalid-threshold',
  linkDownSeconds: 'invalid-threshold',
  backlogPercent: 'invalid-threshold',
  poolFullPercent: 'invalid-threshold',
  sessionDefaults: 'invalid-threshold',
};

/** Turns a failed schema check into a problem naming the field: `body.sizeBytes: …`. */
export function validationProblem(context: string | undefined, issues: Issue[]): Problem {
  const issue = issues[0];
  const field = issue?.path.map(String).join('.') ?? '';
  const where = [context, field].filter(Boolean).join('.');
  let message: string;
  if (issue?.code === 'invalid_type' && (issue.input === undefined || (issue.path.length === 0 && issue.input === null))) {
    message = issue.path.length === 0 ? 'a JSON object is required' : 'is required';
  }
  else if (issue?.code === 'unrecognized_keys') message = `has unknown field(s) ${issue.keys.join(', ')}`;
  else message = issue?.message ?? 'is not valid';
  // A value of the wrong type is a malformed request; a well-typed but refused value has its own code.
  const wrongType = issue?.code === 'invalid_type' && issue.expected !== 'int';
  const problem: ProblemCode = issue && !wrongType ? (fieldProblems[String(issue.path[0])] ?? 'bad-request') : 'bad-request';
  return { problem, message: where ? `${where}: ${message}` : message };
}

function send(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problemHttpStatus[problem.problem]).type('application/json').send(problem);
}

/** The one error handler of the control API: every failure leaves as `{problem, message}`. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (isProblemError(error)) {
      if (problemHttpStatus[error.problem] >= 500) request.log.error({ err: error }, 'request failed');
      return send(reply, error.toJSON());
    }
    if (error instanceof SchemaValidationError || error.validation) {
      const cause = error instanceof SchemaValidationError ? error : (error.cause ?? error);
      const issues = cause instanceof SchemaValidationError ? cause.issues : [];
      const problem = issues.length
        ? validationProblem(error.validationContext, issues)
        : { problem: 'bad-request' as const, message: error.message };
      return send(reply, problem);
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // fastify's own 4xx (malformed JSON, wrong content type, body too large) say nothing internal.
      const problem: ProblemCode = status === 404 ? 'not-found' : 'bad-request';
      return send(reply, { problem, message: error.message });
    }
    request.log.error({ err: error }, 'request failed');
    return send(reply, { problem: 'internal-error', message: 'the agent could not complete the request; see its log' });
  });

  app.setNotFoundHandler((request, reply) => {
    send(reply, { problem: 'not-found', message: `no route ${request.method} ${request.url.split('?')[0]}` });
  });
}

import type { FastifySchemaCompiler, FastifySerializerCompiler, FastifyTypeProvider } from 'fastify';
import type { z } from 'zod';

/**
 * Lets routes declare the contract's zod schemas directly in `schema:
 * {body, querystring, params}`: one schema gives validation and the handler's
 * types (what fastify-type-provider-zod does, in a few lines).
 */
export interface ZodTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends z.ZodType ? z.output<this['schema']> : unknown;
  serializer: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown;
}

/** A validation failure that keeps zod's issues for the error handler. */
export class SchemaValidationError extends Error {
  readonly issues: z.core.$ZodIssue[];

  constructor(issues: z.core.$ZodIssue[]) {
    super(issues.map((issue) => issue.message).join('; '));
    this.name = 'SchemaValidationError';
    this.issues = issues;
  }
}

export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema }) => {
  return (data: unknown) => {
    const result = schema.safeParse(data, { reportInput: true });
    return result.success ? { value: result.data } : { error: new SchemaValidationError(result.error.issues) };
  };
};

/**
 * Response schemas type the handlers' replies at compile time (through the
 * type provider); at run time the reply is plain JSON, not re-validated, so a
 * 16M-track map or a long event list costs no second pass.
 */
export const jsonSerializerCompiler: FastifySerializerCompiler<z.ZodType> = () => (data) => JSON.stringify(data);

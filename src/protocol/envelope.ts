import { z } from 'zod';

export const CorrelationId = z.string().min(1).max(128);

/**
 * Builds the schema of one message: `{type, payload, timestamp, correlationId}`.
 * Inbound `timestamp` is optional (clients' clocks are not trusted); outbound always has it.
 */
export function message<T extends string, P extends z.ZodType>(type: T, payload: P, description: string) {
  return z
    .object({
      type: z.literal(type),
      payload,
      timestamp: z.number().optional(),
      correlationId: CorrelationId.optional(),
    })
    .describe(description);
}

/** The outer shape every frame must have before its type is looked up. */
export const Envelope = z.object({
  type: z.string().min(1).max(64),
  payload: z.unknown().optional(),
  timestamp: z.number().optional(),
  correlationId: CorrelationId.optional(),
});
export type Envelope = z.infer<typeof Envelope>;

export const EmptyPayload = z.object({}).optional().default({});

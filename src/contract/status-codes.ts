// The gRPC status of each domain error code: one table for the server's answers and the SDK's client-side errors.
import type { KtErrorCode } from '../core/errors.js';

/** Numbered as in the gRPC spec (doc/statuscodes.md); the domain codes carry the statuses' names. */
export const grpcStatusOfKtCode: Readonly<Record<KtErrorCode, number>> = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
};

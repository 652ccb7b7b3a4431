// Typed client-side errors, and the one function that maps a gRPC status (or a per-frame ItemError) to them.
import { status as GrpcStatus } from '@grpc/grpc-js';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidInputError,
  KtError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  isUnavailableError,
} from '../core/errors.js';
import type { KtErrorCode } from '../core/errors.js';
import { grpcStatusOfKtCode } from '../contract/status-codes.js';

// The domain classes are the core ones, so `instanceof` works the same on both sides of the wire.
export { FailedPreconditionError, PermissionDeniedError, UnauthenticatedError, UnavailableError, isUnavailableError };

/** gRPC status code names by number (google.rpc.Code), for messages and `grpcCodeName`. */
const statusNames: Record<number, string> = Object.fromEntries(
  Object.entries(GrpcStatus)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);

export function grpcStatusName(code: number): string {
  return statusNames[code] ?? `STATUS_${code}`;
}

/**
 * A failed call whose status has no closer domain class (CANCELLED, UNKNOWN, ALREADY_EXISTS,
 * ABORTED, OUT_OF_RANGE, DATA_LOSS, INTERNAL). `grpcCode` keeps the exact status.
 */
export class RpcError extends KtError {
  override readonly name: string = 'RpcError';
  /** The gRPC status code of the failed call (see `status` in @grpc/grpc-js). */
  readonly grpcCode: number;
  constructor(code: KtErrorCode, grpcCode: number, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.grpcCode = grpcCode;
  }
}

/**
 * The call's deadline (or a stream's per-frame answer timeout) passed before the answer came.
 * Its domain code is UNAVAILABLE because core's KtErrorCode has no DEADLINE_EXCEEDED; `grpcCode` is exact.
 */
export class DeadlineExceededError extends RpcError {
  override readonly name: string = 'DeadlineExceededError';
  /** The deadline that passed, in milliseconds from the start of the call (or of the wait). */
  readonly deadlineMs: number | undefined;
  constructor(message: string, deadlineMs?: number, options?: { cause?: unknown }) {
    super('UNAVAILABLE', GrpcStatus.DEADLINE_EXCEEDED, message, options);
    this.deadlineMs = deadlineMs;
  }
}

/** The server does not implement this call or option. */
export class UnimplementedError extends RpcError {
  override readonly name: string = 'UnimplementedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNIMPLEMENTED', GrpcStatus.UNIMPLEMENTED, message, options);
  }
}

export function isRpcError(e: unknown): e is RpcError {
  return e instanceof RpcError;
}
export function isDeadlineExceededError(e: unknown): e is DeadlineExceededError {
  return e instanceof DeadlineExceededError;
}

/** What a grpc-js ServiceError (or a StatusObject, or an ItemError with a numeric code) carries. */
export interface StatusLike {
  code: number;
  details?: string;
  message?: string;
}

function isStatusLike(e: unknown): e is StatusLike {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'number';
}

/**
 * The one mapping from a gRPC status to a typed error. INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED,
 * FAILED_PRECONDITION and UNAVAILABLE become the core domain classes (so `instanceof InvalidInputError` works the same on both sides of the wire); the status object
 * is kept as `cause`. Anything unrecognised is an RpcError with domain code INTERNAL.
 * `what` names the call ("Analyze", "Gallery.Enrol") in the message.
 */
export function errorFromStatus(e: unknown, what: string): KtError {
  if (e instanceof KtError) return e;
  if (!isStatusLike(e))
    return new RpcError('INTERNAL', GrpcStatus.UNKNOWN, `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  const details = e.details ?? e.message ?? '';
  const message = `${what}: ${grpcStatusName(e.code)}${details ? `: ${details}` : ''}`;
  const options = { cause: e };
  switch (e.code) {
    case GrpcStatus.INVALID_ARGUMENT:
      return new InvalidInputError(message, options);
    case GrpcStatus.NOT_FOUND:
      return new NotFoundError(message, options);
    case GrpcStatus.ALREADY_EXISTS:
      return new AlreadyExistsError(message, options);
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return new ResourceExhaustedError(message, options);
    case GrpcStatus.FAILED_PRECONDITION:
      return new FailedPreconditionError(message, options);
    case GrpcStatus.UNAVAILABLE:
      return new UnavailableError(message, options);
    case GrpcStatus.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(message, undefined, options);
    case GrpcStatus.UNIMPLEMENTED:
      return new UnimplementedError(message, options);
    case GrpcStatus.UNAUTHENTICATED:
      return new UnauthenticatedError(message, options);
    case GrpcStatus.PERMISSION_DENIED:
      return new PermissionDeniedError(message, options);
    default:
      return new RpcError('INTERNAL', e.code, message, options);
  }
}

/**
 * The gRPC status code behind a typed error from this SDK: `grpcCode`, else the status kept as `cause`, else (for
 * UnavailableError and FailedPreconditionError raised by the client itself) the status of its domain code.
 */
export function grpcCodeOf(e: unknown): number | undefined {
  if (e instanceof RpcError) return e.grpcCode;
  if (e instanceof Error && isStatusLike(e.cause)) return e.cause.code;
  if (
    e instanceof UnavailableError ||
    e instanceof FailedPreconditionError ||
    e instanceof UnauthenticatedError ||
    e instanceof PermissionDeniedError
  )
    return grpcStatusOfKtCode[e.code];
  return undefined;
}

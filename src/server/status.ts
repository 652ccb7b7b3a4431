// The one mapping from domain errors to gRPC status (and to per-item ErrorCode), with INTERNAL as the fallback.
import { status as GrpcStatus, type StatusObject } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { UnavailableError, errorMessage, isKtError, type KtErrorCode } from '../core/errors.js';
import { ErrorCode, ItemError, errorCodeFromJSON } from '../gen/kt/v1/common.js';

const codeOf: Record<KtErrorCode, GrpcStatus> = {
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  ALREADY_EXISTS: GrpcStatus.ALREADY_EXISTS,
  RESOURCE_EXHAUSTED: GrpcStatus.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: GrpcStatus.FAILED_PRECONDITION,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  UNIMPLEMENTED: GrpcStatus.UNIMPLEMENTED,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  PERMISSION_DENIED: GrpcStatus.PERMISSION_DENIED,
  INTERNAL: GrpcStatus.INTERNAL,
};

/**
 * The status for any error thrown while serving: typed domain errors keep their code and message; anything else is
 * a bug and becomes INTERNAL with its message (never a stack).
 */
export function toGrpcStatus(e: unknown): { code: GrpcStatus; details: string } {
  if (isKtError(e)) return { code: codeOf[e.code] ?? GrpcStatus.INTERNAL, details: redactPaths(e.message) };
  return { code: GrpcStatus.INTERNAL, details: `internal error: ${redactPaths(errorMessage(e))}` };
}

/** An absolute POSIX or Windows path, from a boundary (start, space, quote, bracket, '=' or ':') to the next delimiter. */
const absolutePath = /(^|[\s"'`(\[=:,])((?:\/|[A-Za-z]:\\)[^\s"'`()[\],;]*)/g;
const keptPathSegments = 3;

/**
 * Shortens absolute paths in text sent to clients to their last segments ("…/faceres/1/model.json"): where the
 * server keeps its models and data is the operator's business, not every client's. The server's log keeps them whole.
 */
export function redactPaths(text: string): string {
  return text.replace(absolutePath, (_match, before: string, path: string) => {
    const segments = path.split(/[\\/]/).filter((p) => p !== '');
    const tail = segments.slice(-keptPathSegments).join('/');
    return `${before}…/${tail}`;
  });
}

/** The one readiness error: calls fail with UNAVAILABLE while models warm up or the server shuts down. */
export function notServingError(): UnavailableError {
  return new UnavailableError('server is not serving yet (warming up models) or is shutting down; retry shortly');
}

/** The error object a grpc-js handler passes to its callback or emits on a stream. */
export function toServiceError(e: unknown): Partial<StatusObject> {
  const { code, details } = toGrpcStatus(e);
  return { code, details, metadata: new Metadata() };
}

/** An error about one item (a frame on a stream, an image of an enrolment); ErrorCode numbers equal status codes. */
export function toItemError(e: unknown, prefix = ''): ItemError {
  const { code, details } = toGrpcStatus(e);
  const errorCode = errorCodeFromJSON(code);
  return ItemError.fromPartial({
    code: errorCode === ErrorCode.UNRECOGNIZED ? ErrorCode.ERROR_CODE_INTERNAL : errorCode,
    message: `${prefix}${details}`,
  });
}

/** Runs a unary handler body and answers the callback with its value or its mapped status. */
export function answer<T>(callback: (error: Partial<StatusObject> | null, value?: T) => void, body: () => Promise<T> | T): void {
  Promise.resolve()
    .then(body)
    .then(
      (value) => callback(null, value),
      (e: unknown) => callback(toServiceError(e)),
    );
}

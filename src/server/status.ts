// The one mapping from domain errors to gRPC status (and to per-item ErrorCode), with INTERNAL as the fallback.
import { status as GrpcStatus, type StatusObject } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { UnavailableError, errorMessage, isKtError } from '../core/errors.js';
import type { Logger } from '../core/log-types.js';
import { ErrorCode, ItemError, errorCodeFromJSON } from '../gen/kt/v1/common.js';
import { grpcStatusOfKtCode } from '../contract/status-codes.js';

/**
 * The status for any error thrown while serving: typed domain errors keep their code and message; anything else is
 * a bug and becomes INTERNAL with its message (never a stack).
 */
export function toGrpcStatus(e: unknown): { code: GrpcStatus; details: string } {
  if (isKtError(e)) return { code: grpcStatusOfKtCode[e.code] ?? GrpcStatus.INTERNAL, details: capDetails(redactPaths(e.message)) };
  return { code: GrpcStatus.INTERNAL, details: capDetails(`internal error: ${redactPaths(errorMessage(e))}`) };
}

/** Longest status message sent. Messages echo client strings (a 100 KB stream id): past the peer's header-list limit the trailers break the connection. */
const maxDetailsChars = 1024;

function capDetails(details: string): string {
  return details.length <= maxDetailsChars
    ? details
    : `${details.slice(0, maxDetailsChars)}… (${details.length - maxDetailsChars} more characters)`;
}

/** An absolute POSIX or Windows path, from a boundary (start, space, quote, bracket, '=' or ':') to the next delimiter. */
const absolutePath = /(^|[\s"'`([=:,])((?:\/|[A-Za-z]:\\)[^\s"'`()[\],;]*)/g;
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

/** Runs a unary handler body and answers the callback with its value or its mapped status; `log` hears failures (logCallError). */
export function answer<T>(
  callback: (error: Partial<StatusObject> | null, value?: T) => void,
  log: { logger: Logger; call: string } | undefined,
  body: () => Promise<T> | T,
): void {
  Promise.resolve()
    .then(body)
    .then(
      (value) => callback(null, value),
      (e: unknown) => {
        if (log) logCallError(log.logger, log.call, e);
        callback(toServiceError(e));
      },
    );
}

/** A failed call in the server's log, whole: at warn when the client got it with paths shortened, else at debug. */
export function logCallError(log: Logger, call: string, e: unknown): void {
  const message = errorMessage(e);
  if (redactPaths(message) !== message) log.warn({ call, error: message }, 'call failed (the client got this with paths shortened)');
  else log.debug({ call, error: message }, 'call failed');
}

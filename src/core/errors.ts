// Typed domain errors shared by every layer; the server maps them to gRPC status codes in one place.

/** Codes mirror the gRPC status codes they map to, so the mapping is one table. */
export type KtErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'RESOURCE_EXHAUSTED'
  | 'FAILED_PRECONDITION'
  | 'UNAVAILABLE'
  | 'UNIMPLEMENTED'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'INTERNAL';

export class KtError extends Error {
  override readonly name: string = 'KtError';
  readonly code: KtErrorCode;
  constructor(code: KtErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Input that can never succeed as given: a corrupt frame, a bad config field, an unsupported op. */
export class InvalidInputError extends KtError {
  override readonly name = 'InvalidInputError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
  }
}

/** A named thing (model, version, person, package) that does not exist. */
export class NotFoundError extends KtError {
  override readonly name = 'NotFoundError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_FOUND', message, options);
  }
}

/** A converter met an operation it does not implement; names the op and the node. */
export class UnsupportedOpError extends KtError {
  override readonly name = 'UnsupportedOpError';
  readonly op: string;
  readonly node: string;
  constructor(op: string, node: string, detail?: string) {
    super('UNIMPLEMENTED', `unsupported op ${op} at node "${node}"${detail ? `: ${detail}` : ''}`);
    this.op = op;
    this.node = node;
  }
}

/** A model file that cannot be parsed or does not satisfy the model contract. */
export class ModelFormatError extends KtError {
  override readonly name = 'ModelFormatError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('FAILED_PRECONDITION', message, options);
  }
}

/** Something the caller asked to create exists already (a stream id in use by another open stream). */
export class AlreadyExistsError extends KtError {
  override readonly name = 'AlreadyExistsError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ALREADY_EXISTS', message, options);
  }
}

export class ResourceExhaustedError extends KtError {
  override readonly name = 'ResourceExhaustedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RESOURCE_EXHAUSTED', message, options);
  }
}

/** A dependency or peer cannot be reached now (server warming up or shutting down, broker away). Retryable. */
export class UnavailableError extends KtError {
  override readonly name: string = 'UnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, options);
  }
}

/** The system is not in the state the operation needs (a model unloaded on purpose, a gallery not open). */
export class FailedPreconditionError extends KtError {
  override readonly name: string = 'FailedPreconditionError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('FAILED_PRECONDITION', message, options);
  }
}

/** The call carries no credentials, or ones the server does not accept (a missing or unknown bearer token). */
export class UnauthenticatedError extends KtError {
  override readonly name: string = 'UnauthenticatedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAUTHENTICATED', message, options);
  }
}

/** The caller is known but its role does not allow the call (an `analyze` token asking to unload a model). */
export class PermissionDeniedError extends KtError {
  override readonly name: string = 'PermissionDeniedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('PERMISSION_DENIED', message, options);
  }
}

export function isUnavailableError(e: unknown): e is UnavailableError {
  return e instanceof UnavailableError;
}

export function isKtError(e: unknown): e is KtError {
  return e instanceof KtError;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

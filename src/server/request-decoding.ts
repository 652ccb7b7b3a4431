// Lenient request decoding: a message the generated decoder rejects becomes INVALID_ARGUMENT (per call, or per frame on a stream), never INTERNAL.
import type { Server, ServiceDefinition, StatusObject, UntypedServiceImplementation } from '@grpc/grpc-js';
import { InvalidInputError, errorMessage } from '../core/errors.js';
import { toServiceError } from './status.js';

const undecodableMark = Symbol('undecodable');

/** What a request deserializer returns instead of throwing; handlers turn it into INVALID_ARGUMENT. */
export interface Undecodable {
  readonly [undecodableMark]: InvalidInputError;
}

/** The decode error of a message that could not be decoded, or undefined for a decoded one. */
export function decodeFailure(message: unknown): InvalidInputError | undefined {
  return typeof message === 'object' && message !== null && undecodableMark in message
    ? (message as Undecodable)[undecodableMark]
    : undefined;
}

/**
 * Why a message does not decode, worded for the client. ts-proto decodes 64-bit fields as JavaScript numbers
 * (forceLong=number, shared with the SDK and the JSON events) and refuses values past 2^53-1 rather than rounding them.
 */
function undecodable(typeName: string, e: unknown): Undecodable {
  const reason = errorMessage(e);
  const text = /MAX_SAFE_INTEGER/.test(reason)
    ? `a 64-bit field (sequence, capture_time_unix_ms, ...) is larger than 2^53-1 (9007199254740991), the largest this server accepts`
    : reason;
  return { [undecodableMark]: new InvalidInputError(`${typeName} could not be decoded: ${text}`) };
}

/** The definition with deserializers that never throw: grpc-js would end the call (and a stream) with INTERNAL. */
function lenientDefinition(definition: ServiceDefinition): ServiceDefinition {
  const lenient: Record<string, ServiceDefinition[string]> = {};
  for (const [name, method] of Object.entries(definition)) {
    const typeName = method.path.split('/').pop() ?? name;
    const decode = method.requestDeserialize;
    lenient[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return decode(bytes);
        } catch (e) {
          return undecodable(`${typeName} request`, e);
        }
      },
    };
  }
  return lenient;
}

type AnyHandler = (call: { request?: unknown; emit(event: 'error', e: Partial<StatusObject>): boolean }, callback?: unknown) => void;

/**
 * Handlers that answer an undecodable single request (unary and server-streaming calls) with INVALID_ARGUMENT
 * before the service sees it. Streaming requests reach the handler, which checks each message with decodeFailure.
 */
function rejectingImplementation(
  definition: ServiceDefinition,
  implementation: UntypedServiceImplementation,
): UntypedServiceImplementation {
  const wrapped: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(implementation)) {
    const method = definition[name];
    if (method === undefined || method.requestStream) {
      wrapped[name] = handler;
      continue;
    }
    const inner = handler as unknown as AnyHandler;
    const guarded: AnyHandler = (call, callback) => {
      const failure = decodeFailure(call.request);
      if (failure === undefined) return inner(call, callback);
      if (typeof callback === 'function') (callback as (e: Partial<StatusObject>) => void)(toServiceError(failure));
      else call.emit('error', toServiceError(failure));
    };
    wrapped[name] = guarded as unknown as typeof handler;
  }
  return wrapped;
}

/** server.addService where malformed protobuf from a client is INVALID_ARGUMENT, never INTERNAL. */
export function addLenientService(server: Server, definition: ServiceDefinition, implementation: UntypedServiceImplementation): void {
  server.addService(lenientDefinition(definition), rejectingImplementation(definition, implementation));
}

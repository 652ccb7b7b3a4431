// The stream id rule: one MQTT topic level naming a camera, checked the same way by the server and the SDK.
import { InvalidInputError } from '../core/errors.js';

/** Letters, digits, '-', '_' and '.', 1 to 64 characters: safe as one topic level and in file names. */
export const streamIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

/** Stream id the server uses in MQTT topics for unary Analyze calls (AnalyzeRequest names no stream). */
export const unaryStreamId = 'unary';

/**
 * Ids a stream may not choose: `unary` would mix a camera's events with those of unary calls, and `.` / `..` are
 * path steps, not names, wherever a stream id becomes part of a file name.
 */
export const reservedStreamIds: readonly string[] = [unaryStreamId, '.', '..'];

/** Human description of the rule, for help texts and error messages. */
export const streamIdRule = "1-64 letters, digits, '-', '_' or '.'";

export function isStreamId(value: unknown): value is string {
  return typeof value === 'string' && streamIdPattern.test(value) && !reservedStreamIds.includes(value);
}

/** Throws InvalidInputError naming the rule and the value when `value` is not a valid stream id. */
export function checkStreamId(value: unknown, what = 'streamId'): string {
  if (!isStreamId(value)) {
    const reserved = typeof value === 'string' && reservedStreamIds.includes(value);
    throw new InvalidInputError(
      reserved
        ? `${what} ${JSON.stringify(value)} is reserved (the server uses "${unaryStreamId}" for unary Analyze calls); choose another`
        : `${what} must be ${streamIdRule}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

// The stream id rule: one MQTT topic level naming a camera, checked the same way by the server and the SDK.
import { InvalidInputError } from '../core/errors.js';

/** Letters, digits, '-', '_' and '.', 1 to 64 characters: safe as one topic level and in file names. */
export const streamIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

/** Human description of the rule, for help texts and error messages. */
export const streamIdRule = "1-64 letters, digits, '-', '_' or '.'";

export function isStreamId(value: unknown): value is string {
  return typeof value === 'string' && streamIdPattern.test(value);
}

/** Throws InvalidInputError naming the rule and the value when `value` is not a valid stream id. */
export function checkStreamId(value: unknown, what = 'streamId'): string {
  if (!isStreamId(value)) throw new InvalidInputError(`${what} must be ${streamIdRule}, got ${JSON.stringify(value)}`);
  return value;
}

// Rules for what a client may store about a person: display names cleaned of invisible and markup characters, and ids.
import { InvalidInputError } from '../../core/errors.js';

/** Longest display name kept, in Unicode code points (after cleaning). */
export const maxPersonNameLength = 128;

/** Letters, digits and `-_.:@`, 1 to 128 characters: a client-chosen person id is safe in logs, URLs and file names. */
export const personIdPattern = /^[A-Za-z0-9._:@-]{1,128}$/;

/**
 * Control characters (NUL, ESC, ...), bidi embeddings/overrides/isolates and marks (they reorder what follows
 * on screen, so a name could disguise another), line/paragraph separators, BOM, and `<` `>` (markup in a UI or
 * report). Zero-width joiners stay: emoji sequences and several scripts need them.
 */
const unwantedInName = /[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff<>]/gu;

/**
 * A display name as stored: NFC, unwanted characters removed, runs of white space one space, trimmed.
 * Empty afterwards or longer than maxPersonNameLength code points: InvalidInputError.
 */
export function normalisePersonName(name: unknown): string {
  const text = typeof name === 'string' ? name : '';
  // Tabs and newlines become spaces first, so "Ada\tLovelace" keeps its word break.
  const cleaned = text.normalize('NFC').replace(/\s+/gu, ' ').replace(unwantedInName, '').replace(/ {2,}/g, ' ').trim();
  if (cleaned === '') throw new InvalidInputError('a person needs a non-empty name (control and bidi characters do not count)');
  const length = [...cleaned].length;
  if (length > maxPersonNameLength)
    throw new InvalidInputError(`a person's name is limited to ${maxPersonNameLength} characters, got ${length}`);
  return cleaned;
}

/** Throws InvalidInputError unless `id` is a valid client-chosen person id. */
export function checkPersonId(id: unknown): string {
  if (typeof id !== 'string' || !personIdPattern.test(id))
    throw new InvalidInputError(`person_id must be 1-128 letters, digits or "-_.:@", got ${JSON.stringify(id)?.slice(0, 80)}`);
  return id;
}

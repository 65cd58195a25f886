/**
 * Bounds for text that callers choose but the sidecar repeats: in metric labels, log records, decision reasons and
 * error messages. Repeating such text in full would let one request grow every scrape, log line and event by
 * whatever the body limit allows.
 */

/** Marks text that was cut, so a reader never mistakes a prefix for the whole value. */
export const TRUNCATION_MARK = '…';

/**
 * `text` when it has at most `max` UTF-16 units, else its start followed by `…`, `max` units in all. A surrogate
 * pair is never split, so the result is always well-formed.
 */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= TRUNCATION_MARK.length) return TRUNCATION_MARK.slice(0, Math.max(0, max));
  let end = max - TRUNCATION_MARK.length;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}${TRUNCATION_MARK}`;
}

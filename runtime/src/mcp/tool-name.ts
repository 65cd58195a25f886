/**
 * The form of an MCP tool name. The specification recommends 1 to 128 characters from `A-Z a-z 0-9 _ - . /`;
 * Skein enforces it because the name is read before any policy runs and then repeated in metric labels, span
 * names, logs and decisions, where an unbounded name costs every reader of them.
 */

/** Longest tool name accepted, as the MCP specification recommends. */
export const MAX_TOOL_NAME_LENGTH = 128;

const TOOL_NAME_CHARACTERS = /^[A-Za-z0-9_./-]+$/;

/**
 * Why `name` is not a valid tool name, or undefined when it is. The reason never repeats the name, so it is safe to
 * send back and to log whatever the name holds.
 */
export function toolNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty';
  if (name.length > MAX_TOOL_NAME_LENGTH) return `is ${name.length} characters long, over the limit of ${MAX_TOOL_NAME_LENGTH}`;
  if (!TOOL_NAME_CHARACTERS.test(name)) return 'may only contain letters, digits, "_", "-", "." and "/"';
  return undefined;
}

/** True when `name` has the form of an MCP tool name (see `toolNameProblem`). */
export function isValidToolName(name: string): boolean {
  return toolNameProblem(name) === undefined;
}

/**
 * From a decision to the YAML that made it: which resource kind and which field a decision's `source` and `rule`
 * name, and where that field is in the workspace's resource files. Pure: the files' texts are given.
 */
import { LineCounter } from 'yaml';
import { pointerSegments, rangeOf, readDocuments, type TextPosition } from '@skein/runtime/editor';
import type { DecisionEvent } from '@skein/core';

/** The resource and field a decision names. */
export interface RuleTarget {
  readonly kind: string;
  /** `metadata.name` of the resource, when the rule names one. */
  readonly name?: string;
  /** JSON Pointer of the field, or a rule name to look up in `/spec/rules`. */
  readonly pointer?: string;
  readonly ruleName?: string;
}

/** What a decision's rule points at; undefined for refusals no rule made (a malformed caller, say). */
export function ruleTarget(event: DecisionEvent): RuleTarget | undefined {
  const { source, rule } = event.decision;
  switch (source) {
    case 'acl': {
      if (rule === 'default') return { kind: 'Configuration', pointer: '/spec/accessControl/defaultAction' };
      const match = /^policies\[(\d+)\](?:\.operations\[(\d+)\])?$/.exec(rule);
      if (!match) return undefined;
      return { kind: 'Configuration', pointer: `/spec/accessControl/policies/${match[1]}${match[2] === undefined ? '' : `/operations/${match[2]}`}` };
    }
    case 'tool-policy':
      return rule === 'default' ? { kind: 'MCPToolPolicy', pointer: '/spec/defaultAction' } : { kind: 'MCPToolPolicy', ruleName: rule };
    case 'workflow-policy': {
      const match = /^(.+)\/rules\[(\d+)\]\.(workflows|activities)\[(\d+)\]$/.exec(rule);
      if (!match) return rule === 'default' ? { kind: 'WorkflowAccessPolicy', pointer: '/spec/defaultAction' } : undefined;
      return { kind: 'WorkflowAccessPolicy', name: match[1] as string, pointer: `/spec/rules/${match[2]}/${match[3]}/${match[4]}` };
    }
    case 'jwt':
      return { kind: 'Component', name: rule, pointer: '/spec/type' };
    case 'mcp-hook': {
      const match = /^MCPServer\/([^/]+)\/(beforeCallTool|afterCallTool|beforeListTools)\/(.+)$/.exec(rule);
      if (!match) return undefined;
      return { kind: 'MCPServer', name: match[1] as string, pointer: `/spec/middleware/${match[2]}`, ruleName: match[3] as string };
    }
    default:
      return undefined;
  }
}

/** A place in one of the given files. */
export interface RuleLocation {
  readonly uri: string;
  readonly range: { readonly start: TextPosition; readonly end: TextPosition };
}

/** The index of the item of `list` whose `name` (or hook `workflow.workflowName`) is `wanted`. */
function indexByName(list: unknown, wanted: string): number {
  if (!Array.isArray(list)) return -1;
  return list.findIndex((item) => {
    const record = item as { name?: unknown; workflow?: { workflowName?: unknown } } | null;
    return record?.name === wanted || record?.workflow?.workflowName === wanted;
  });
}

/**
 * Where in `files` the rule of `event` is written: the document of the right kind (and name, when the rule names
 * one; scoped to the deciding app when several match), then the field. Undefined when no file holds it.
 */
export function locateRule(event: DecisionEvent, files: ReadonlyArray<{ uri: string; text: string }>): RuleLocation | undefined {
  const target = ruleTarget(event);
  if (!target) return undefined;
  const candidates: Array<{ uri: string; text: string; contents: Parameters<typeof rangeOf>[0]; value: Record<string, unknown>; lines: LineCounter; scoped: boolean }> = [];
  for (const file of files) {
    const lines = new LineCounter();
    for (const document of readDocuments(file.text, lines)) {
      const record = document.value as Record<string, unknown> | null;
      if (!record || typeof record !== 'object' || record['kind'] !== target.kind) continue;
      const metadata = record['metadata'] as { name?: unknown } | undefined;
      if (target.name !== undefined && metadata?.name !== target.name) continue;
      const scopes = record['scopes'];
      const scoped = !Array.isArray(scopes) || scopes.length === 0 || scopes.includes(event.appId) || (target.kind === 'MCPToolPolicy' && scopes.includes(event.decision.target));
      candidates.push({ uri: file.uri, text: file.text, contents: document.contents, value: record, lines, scoped });
    }
  }
  const ordered = [...candidates.filter((candidate) => candidate.scoped), ...candidates.filter((candidate) => !candidate.scoped)];
  for (const candidate of ordered) {
    let pointer = target.pointer;
    if (target.ruleName !== undefined) {
      const spec = candidate.value['spec'] as Record<string, unknown> | undefined;
      if (target.kind === 'MCPToolPolicy') {
        const index = indexByName(spec?.['rules'], target.ruleName);
        if (index === -1) continue;
        pointer = `/spec/rules/${index}/name`;
      } else if (pointer !== undefined) {
        const hooks = pointerSegments(pointer).reduce<unknown>((node, segment) => (node as Record<string, unknown> | undefined)?.[segment], candidate.value);
        const index = indexByName(hooks, target.ruleName);
        if (index !== -1) pointer = `${pointer}/${index}`;
      }
    }
    if (pointer === undefined) continue;
    const [start, end] = rangeOf(candidate.contents, pointerSegments(pointer), candidate.text);
    const at = (offset: number): TextPosition => {
      const { line, col } = candidate.lines.linePos(offset);
      return { line: line - 1, character: col - 1 };
    };
    return { uri: candidate.uri, range: { start: at(start), end: at(end) } };
  }
  return undefined;
}

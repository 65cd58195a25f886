import assert from 'node:assert/strict';
import { checkResourceText, type ResourceDiagnostic } from '../src/config/check.js';
import { fieldHelpAt, fieldSuggestionsAt, parentPathOfLine, valueSuggestionsAt } from '../src/config/schema-help.js';

/** The text a diagnostic's range covers. */
function covered(text: string, diagnostic: ResourceDiagnostic): string {
  const lines = text.split('\n');
  const { start, end } = diagnostic.range;
  if (start.line === end.line) return (lines[start.line] ?? '').slice(start.character, end.character);
  return [lines[start.line]?.slice(start.character), ...lines.slice(start.line + 1, end.line), lines[end.line]?.slice(0, end.character)].join('\n');
}

const POLICY = `apiVersion: skein.dev/v1alpha1
kind: MCPToolPolicy
metadata:
  name: tools
spec:
  defaultAction: deny
  rules:
    - name: small-reads
      action: allow
      tools: ["read_*"]
      when: args.size < 100
`;

describe('resource text checks (the editor\'s diagnostics)', () => {
  it('finds nothing wrong in a resource the runtime loads', () => {
    assert.deepEqual(checkResourceText(POLICY), []);
  });

  it('marks an unknown field on its name, with the exact line and columns', () => {
    const text = POLICY.replace('      tools: ["read_*"]', '      toolz: ["read_*"]');
    const [problem, ...more] = checkResourceText(text);
    assert.equal(more.length, 0);
    assert.ok(problem);
    assert.equal(problem.message, 'unknown field "toolz"');
    assert.equal(problem.path, '/spec/rules/0/toolz');
    assert.deepEqual(problem.range, { start: { line: 9, character: 6 }, end: { line: 9, character: 11 } });
    assert.equal(problem.kind, 'MCPToolPolicy');
  });

  it('compiles CEL as the runtime does: a typo in when: is marked on the expression', () => {
    const text = POLICY.replace('args.size < 100', 'args.size <');
    const [problem] = checkResourceText(text);
    assert.ok(problem);
    assert.equal(problem.path, '/spec/rules/0/when');
    assert.match(problem.message, /^CEL does not compile/);
    assert.equal(covered(text, problem), 'args.size <');
  });

  it('type-checks a when: that does not give a bool', () => {
    const [problem] = checkResourceText(POLICY.replace('args.size < 100', 'tool + "x"'));
    assert.ok(problem);
    assert.match(problem.message, /not a bool/);
  });

  it('checks a circuit breaker trip with the trip variables', () => {
    const text = `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: r
spec:
  policies:
    circuitBreakers:
      cb:
        trip: consecutiveFailurez > 5
  targets: {}
`;
    const [problem] = checkResourceText(text);
    assert.ok(problem);
    assert.equal(problem.path, '/spec/policies/circuitBreakers/cb/trip');
    assert.match(problem.message, /consecutiveFailurez/);
    assert.equal(covered(text, problem), 'consecutiveFailurez > 5');
  });

  it('checks each document of a file by its own kind and says which document', () => {
    const text = `${POLICY}---
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: c
spec:
  accessControl:
    defaultAction: sometimes
`;
    const problems = checkResourceText(text);
    assert.equal(problems.length, 1);
    const [problem] = problems;
    assert.ok(problem);
    assert.equal(problem.document, 1);
    assert.equal(problem.kind, 'Configuration');
    assert.equal(covered(text, problem), 'sometimes');
    assert.equal(problem.range.start.line, 18);
  });

  it('marks a missing required field on the key of the mapping that lacks it', () => {
    const text = `apiVersion: skein.dev/v1alpha1
kind: MCPToolPolicy
metadata:
  name: tools
spec:
  rules:
    - action: allow
`;
    const [problem] = checkResourceText(text);
    assert.ok(problem);
    assert.equal(problem.message, 'missing required field "name"');
    assert.equal(problem.range.start.line, 6);
  });

  it('names an unsupported kind on its value and a missing kind on the document', () => {
    const [unknown] = checkResourceText('kind: Pod\nmetadata: {name: x}\n');
    assert.ok(unknown);
    assert.match(unknown.message, /kind "Pod" is not supported/);
    assert.deepEqual(unknown.range.start, { line: 0, character: 6 });
    const [missing] = checkResourceText('metadata:\n  name: x\n');
    assert.ok(missing);
    assert.equal(missing.message, 'missing required field "kind"');
  });

  it('reports a YAML syntax error where it is, and goes on with the other documents', () => {
    const text = `kind: Configuration\nmetadata: name: x\n---\n${POLICY.replace('action: allow', 'action: maybe')}`;
    const problems = checkResourceText(text);
    assert.equal(problems.length, 2);
    assert.match(problems[0]?.message ?? '', /^YAML syntax error/);
    assert.equal(problems[0]?.range.start.line, 1);
    assert.equal(problems[1]?.document, 1);
    assert.match(problems[1]?.message ?? '', /must be one of/);
  });

  it('refuses an alias bomb without expanding it', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 8 }, (_, level) => `${'b'.repeat(level + 1)}: &${'b'.repeat(level + 1)} [${Array(10).fill(level === 0 ? '*a' : `*${'b'.repeat(level)}`).join(',')}]`), 'kind: Configuration'].join('\n');
    const [problem] = checkResourceText(bomb);
    assert.ok(problem);
    assert.match(problem.message, /aliases cannot be resolved/);
  });

  it('checks Component metadata by its type', () => {
    const text = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: jwt
spec:
  type: middleware.http.bearer
  version: v1
  metadata:
    - name: issuer
      value: https://issuer.example
    - name: audiense
      value: x
`;
    const [problem] = checkResourceText(text);
    assert.ok(problem);
    assert.match(problem.message, /unknown metadata "audiense" for middleware.http.bearer/);
    assert.equal(covered(text, problem), 'audiense');
  });
});

describe('schema help (hover and completion)', () => {
  it('documents the field under the cursor from the kind\'s schema', () => {
    const offset = POLICY.indexOf('defaultAction') + 3;
    const help = fieldHelpAt(POLICY, offset);
    assert.ok(help);
    assert.equal(help.path, '/spec/defaultAction');
    assert.equal(help.kind, 'MCPToolPolicy');
    assert.match(help.description, /no rule matches/);
    assert.deepEqual(help.values, ['allow', 'deny']);
  });

  it('documents fields inside list items through $ref definitions', () => {
    const help = fieldHelpAt(POLICY, POLICY.indexOf('when:') + 1);
    assert.ok(help);
    assert.equal(help.path, '/spec/rules/0/when');
    assert.match(help.description, /CEL/);
  });

  it('lists a Component type\'s settings where a metadata name goes', () => {
    const text = 'kind: Component\nmetadata:\n  name: j\nspec:\n  type: middleware.http.bearer\n  version: v1\n  metadata:\n    - name: issuer\n      value: x\n';
    const help = fieldHelpAt(text, text.indexOf('issuer') + 1);
    assert.ok(help?.values?.includes('audience'));
  });

  it('reads the parent of a line being typed from indentation, lists included', () => {
    const text = 'kind: MCPToolPolicy\nspec:\n  rules:\n    - name: a\n      action: allow\n      \n';
    assert.deepEqual(parentPathOfLine(text, 5), ['spec', 'rules', '0']);
    assert.deepEqual(parentPathOfLine('kind: X\nspec:\n  \n', 2), ['spec']);
    assert.deepEqual(parentPathOfLine('kind: X\n\n', 1), []);
    assert.deepEqual(parentPathOfLine('kind: X\nspec:\n  rules:\n    - \n', 3), ['spec', 'rules', '0']);
  });

  it('suggests the fields of the place being typed, required ones flagged', () => {
    const text = 'apiVersion: skein.dev/v1alpha1\nkind: MCPToolPolicy\nmetadata:\n  name: p\nspec:\n  rules:\n    - name: a\n      \n';
    const names = fieldSuggestionsAt(text, 7).map((suggestion) => suggestion.name);
    for (const name of ['action', 'tools', 'when', 'callers', 'methods']) assert.ok(names.includes(name), `${name} in ${names.join(',')}`);
    const top = fieldSuggestionsAt('kind: MCPToolPolicy\n\n', 1);
    assert.ok(top.find((suggestion) => suggestion.name === 'spec')?.required);
  });

  it('suggests the values a field takes: enums, booleans, and the kinds', () => {
    assert.ok(valueSuggestionsAt('\n', 0, 'kind').includes('MCPToolPolicy'));
    const text = 'kind: MCPToolPolicy\nspec:\n  defaultAction: \n';
    assert.deepEqual(valueSuggestionsAt(text, 2, 'defaultAction'), ['allow', 'deny']);
    const rules = 'kind: MCPToolPolicy\nspec:\n  rules:\n    - name: a\n      action: \n';
    assert.deepEqual(valueSuggestionsAt(rules, 4, 'action'), ['allow', 'deny']);
  });
});

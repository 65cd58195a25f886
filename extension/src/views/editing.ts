/**
 * Editing resource YAML: diagnostics as you type (each document checked by its kind exactly as the sidecar loads
 * it, CEL included), hover documentation and completion of fields, all from the runtime's own checks and the JSON
 * Schemas in `@skein/proto`. Works with or without other YAML extensions installed.
 */
import * as vscode from 'vscode';
import { checkResourceText, fieldHelpAt, fieldSuggestionsAt, valueSuggestionsAt } from '@skein/runtime/editor';

/** A YAML file is a Skein resource file when a document names a Dapr or Skein apiVersion, or is a run file. */
export function isResourceText(text: string): boolean {
  return /^apiVersion:\s*['"]?(dapr\.io|skein\.dev)\//m.test(text) || /^kind:\s*(Configuration|Component|HTTPEndpoint|Resiliency|MCPToolPolicy|MCPServer|WorkflowAccessPolicy)\s*$/m.test(text) || (/^version:\s*1\s*$/m.test(text) && /^apps:\s*$/m.test(text));
}

function isYaml(document: vscode.TextDocument): boolean {
  return document.languageId === 'yaml' || /\.ya?ml$/i.test(document.fileName);
}

const SELECTOR: vscode.DocumentSelector = [{ language: 'yaml' }, { pattern: '**/*.{yaml,yml}' }];

/** Registers diagnostics, hover and completion; returns what to dispose. */
export function registerEditing(): vscode.Disposable[] {
  const diagnostics = vscode.languages.createDiagnosticCollection('skein');
  const pending = new Map<string, NodeJS.Timeout>();
  const check = (document: vscode.TextDocument): void => {
    if (!isYaml(document)) return;
    const text = document.getText();
    if (!isResourceText(text)) {
      diagnostics.delete(document.uri);
      return;
    }
    diagnostics.set(
      document.uri,
      checkResourceText(text).map((problem) => {
        const range = new vscode.Range(problem.range.start.line, problem.range.start.character, problem.range.end.line, problem.range.end.character);
        const diagnostic = new vscode.Diagnostic(range, problem.message, vscode.DiagnosticSeverity.Error);
        diagnostic.source = 'skein';
        diagnostic.code = problem.path;
        return diagnostic;
      }),
    );
  };
  // Typing re-checks after a short pause, so a fast typist does not re-check every keystroke.
  const later = (document: vscode.TextDocument): void => {
    const key = document.uri.toString();
    clearTimeout(pending.get(key));
    pending.set(key, setTimeout(() => {
      pending.delete(key);
      check(document);
    }, 150));
  };
  vscode.workspace.textDocuments.forEach(check);
  return [
    diagnostics,
    vscode.workspace.onDidOpenTextDocument(check),
    vscode.workspace.onDidChangeTextDocument((event) => later(event.document)),
    vscode.workspace.onDidCloseTextDocument((document) => diagnostics.delete(document.uri)),
    vscode.languages.registerHoverProvider(SELECTOR, {
      provideHover(document, position) {
        const text = document.getText();
        if (!isResourceText(text)) return undefined;
        const help = fieldHelpAt(text, document.offsetAt(position));
        if (!help) return undefined;
        const markdown = new vscode.MarkdownString();
        markdown.appendMarkdown(`**${help.kind}** \`${help.path}\`\n\n`);
        markdown.appendMarkdown(help.description);
        if (help.values) markdown.appendMarkdown(`\n\nOne of: ${help.values.map((value) => `\`${value}\``).join(', ')}`);
        if (help.defaultValue) markdown.appendMarkdown(`\n\nDefault: \`${help.defaultValue}\``);
        return new vscode.Hover(markdown);
      },
    }),
    vscode.languages.registerCompletionItemProvider(SELECTOR, {
      provideCompletionItems(document, position) {
        const text = document.getText();
        // A new file gets the kinds at its first `kind:`; after that only Skein resource files are helped.
        if (!isResourceText(text) && !/^kind:\s*\w*$/m.test(text)) return undefined;
        const before = document.lineAt(position.line).text.slice(0, position.character);
        // After `key: `, the values the schema allows there.
        const valueOf = /^\s*(?:- )?([A-Za-z0-9_]+):\s+[A-Za-z0-9_.-]*$/.exec(before);
        if (valueOf) {
          return valueSuggestionsAt(text, position.line, valueOf[1] as string).map((value) => new vscode.CompletionItem(value, vscode.CompletionItemKind.EnumMember));
        }
        // Field names are completed where a key is being typed: at the start of a line or after a list dash.
        if (!/^\s*(- )?[A-Za-z0-9_]*$/.test(before)) return undefined;
        return fieldSuggestionsAt(text, position.line).map((suggestion) => {
          const item = new vscode.CompletionItem(suggestion.name, vscode.CompletionItemKind.Field);
          item.insertText = `${suggestion.name}: `;
          item.documentation = new vscode.MarkdownString(suggestion.description);
          item.detail = suggestion.required ? 'required' : undefined;
          item.sortText = `${suggestion.required ? '0' : '1'}${suggestion.name}`;
          return item;
        });
      },
    }, ' ', ':'),
    { dispose: () => pending.forEach((timer) => clearTimeout(timer)) },
  ];
}

/**
 * What the editor (the Skein VS Code extension) uses of the runtime, and nothing else: checking resource YAML as
 * the sidecar checks it at load, the schema help for hover and completion, and where a local control plane is.
 * A narrow entry so the extension bundles these pure modules, not the sidecar.
 */
export { checkResourceText, documentKind, pointerSegments, rangeOf, type ResourceDiagnostic, type TextPosition, type DocumentKind } from './config/check.js';
export { fieldHelpAt, fieldSuggestionsAt, valueSuggestionsAt, parentPathOfLine, type FieldHelp, type FieldSuggestion } from './config/schema-help.js';
export { readControlPlane, controlPlaneFile, type ControlPlaneStatus, type ControlPlaneRecord } from './cli/control-plane.js';
export { parseToolWorkflow, toolWorkflowName, type ToolWorkflow } from './mcp/mcpserver/tool-workflows.js';
export { WorkflowApi, SidecarError, summarizeEvent } from './cli/workflows.js';
export type { HistoryEventJson, WorkflowStateJson } from './api/http-workflows.js';
export { compileToolPoliciesOfText, readDocuments, type ReadDocument } from './config/check.js';
export { replayToolDecision, toolPolicyAppliesTo, type ReplayedDecision, type CompiledToolPolicy } from './policy/tool-policy.js';

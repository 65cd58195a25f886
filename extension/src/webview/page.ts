/**
 * The script of the Skein webviews (runs in the webview, not in Node): draws a trace waterfall or a workflow
 * instance from the messages of `protocol.ts`. Everything shown is set as text, never as HTML, so nothing a span
 * or an instance carries can run in the page.
 */
import type { FromWebview, InstanceAction, ToWebview } from './protocol.js';
import type { Waterfall, WaterfallRow } from '../model/traces.js';
import type { InstanceView, TimelineEntry } from '../model/workflows.js';
import type { InstanceDetails } from './protocol.js';

declare function acquireVsCodeApi(): { postMessage(message: FromWebview): void };

const vscode = acquireVsCodeApi();
const root = document.getElementById('root') as HTMLElement;

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function ms(value: number): string {
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 100) return `${value.toFixed(0)} ms`;
  if (value >= 10) return `${value.toFixed(1)} ms`;
  return `${value.toFixed(2)} ms`;
}

function bar(left: number, width: number, className: string): HTMLElement {
  const track = element('div', 'track');
  const fill = element('div', className);
  fill.style.left = `${(left * 100).toFixed(3)}%`;
  fill.style.width = `${Math.max(0.2, Math.min(100 - left * 100, width * 100)).toFixed(3)}%`;
  track.append(fill);
  return track;
}

function spanRow(row: WaterfallRow, totalMs: number): HTMLElement {
  const wrapper = element('div', `span-row${row.error ? ' error' : ''}`);
  wrapper.dataset['spanId'] = row.spanId;
  const line = element('div', 'span-line');
  const label = element('div', 'label');
  label.style.paddingLeft = `${row.depth * 14}px`;
  label.append(element('span', 'name', row.name), element('span', 'app', ` ${row.appId}`));
  line.append(label);
  const track = bar(row.left, row.width, `bar${row.error ? ' bar-error' : ''}`);
  for (const marker of row.markers) {
    const mark = element('span', `marker marker-${marker.kind}`, '◆');
    mark.style.left = `${((totalMs === 0 ? 0 : marker.offsetMs / totalMs) * 100).toFixed(3)}%`;
    mark.title = marker.label;
    track.append(mark);
  }
  const status = element('div', 'status', row.error ? `ERROR${row.statusMessage ? `: ${row.statusMessage}` : ''}` : 'ok');
  status.title = status.textContent ?? '';
  line.append(track, element('div', 'offset', `+${ms(row.offsetMs)}`), element('div', 'duration', ms(row.durationMs)), status);
  wrapper.append(line);
  const details = element('div', 'details');
  if (row.attributes.length > 0) {
    const attributes = element('div', 'attributes');
    for (const [key, value] of row.attributes) attributes.append(element('span', 'attribute', `${key}=${value}`));
    details.append(attributes);
  }
  for (const marker of row.markers) {
    const line = element('div', `event event-${marker.kind}`, `◆ +${ms(marker.offsetMs)} ${marker.label}`);
    const reason = marker.attributes['skein.decision.reason'];
    if (reason) line.append(element('span', 'reason', ` — ${reason}`));
    details.append(line);
  }
  if (row.truncated) details.append(element('div', 'note', 'attributes shortened when published'));
  wrapper.append(details);
  line.addEventListener('click', () => wrapper.classList.toggle('open'));
  return wrapper;
}

function drawTrace(waterfall: Waterfall, redacted: boolean): void {
  const header = element('div', 'header');
  header.append(element('h2', undefined, `trace ${waterfall.traceId}`));
  const facts = element('div', 'facts', `${waterfall.rows.length} spans · ${waterfall.apps.join(', ')} · ${ms(waterfall.totalMs)} · ${waterfall.error ? 'ERROR' : 'ok'} · started ${waterfall.startTime}`);
  const copy = element('button', 'copy', 'Copy trace id');
  copy.addEventListener('click', () => vscode.postMessage({ type: 'copyTraceId', traceId: waterfall.traceId }));
  header.append(facts, copy);
  if (redacted) header.append(element('div', 'note', 'Bodies are not published on the telemetry stream; only attributes the redaction allows are shown.'));
  const rows = element('div', 'rows');
  for (const row of waterfall.rows) rows.append(spanRow(row, waterfall.totalMs));
  root.replaceChildren(header, rows);
}

const ACTIONS_BY_STATUS: Record<string, InstanceAction[]> = {
  RUNNING: ['suspend', 'raise', 'terminate', 'rerun'],
  SUSPENDED: ['resume', 'raise', 'terminate', 'rerun'],
  COMPLETED: ['rerun', 'purge'],
  FAILED: ['rerun', 'purge'],
  TERMINATED: ['rerun', 'purge'],
};

function timelineRow(entry: TimelineEntry, startMs: number, totalMs: number): HTMLElement {
  const row = element('div', `timeline-row kind-${entry.kind} status-${entry.status}`);
  const label = `${entry.label}${entry.attempt && entry.attempt > 1 ? ` (attempt ${entry.attempt})` : ''}`;
  row.append(element('div', 'label', label));
  const left = totalMs === 0 ? 0 : (entry.startMs - startMs) / totalMs;
  row.append(bar(Math.max(0, left), totalMs === 0 ? 0.002 : (entry.durationMs ?? 0) / totalMs, `bar status-${entry.status}`));
  row.append(element('div', 'duration', entry.durationMs === undefined ? entry.status : ms(entry.durationMs)));
  if (entry.failure) row.append(element('div', 'failure', `${entry.failure.type}: ${entry.failure.message}`));
  if (entry.childInstanceId) {
    const open = element('button', 'link', entry.childInstanceId);
    open.addEventListener('click', () => vscode.postMessage({ type: 'openInstance', instanceId: entry.childInstanceId as string }));
    row.append(open);
  }
  return row;
}

function block(title: string, text: string | undefined): HTMLElement | undefined {
  if (text === undefined || text === '') return undefined;
  const section = element('section', 'payload');
  section.append(element('h3', undefined, title), element('pre', undefined, text));
  return section;
}

function drawInstance(view: InstanceView, details: InstanceDetails | undefined, detailsError: string | undefined, server: string | undefined, tool: string | undefined): void {
  const header = element('div', 'header');
  header.append(element('h2', undefined, `${view.workflowName} · ${view.instanceId}`));
  header.append(element('div', `facts status-${view.status}`, `${view.status} · app ${view.appId} · ${view.durationMs === undefined ? 'running' : ms(view.durationMs)} · created ${new Date(view.createdMs).toISOString()}`));
  if (server) header.append(element('div', 'facts', `MCP server ${server}${tool ? ` · tool ${tool}` : ' · tools/list'}`));
  const actions = element('div', 'actions');
  for (const action of ACTIONS_BY_STATUS[view.status] ?? []) {
    const button = element('button', `action action-${action}`, action);
    button.addEventListener('click', () => vscode.postMessage({ type: 'action', action }));
    actions.append(button);
  }
  const debug = element('button', 'action action-debug', 'Debug (replay)');
  debug.title = 'Replay the recorded history through the app\'s workflow code under the debugger; nothing runs again';
  debug.addEventListener('click', () => vscode.postMessage({ type: 'debug' }));
  actions.append(debug);
  const trace = element('button', 'link', 'Open its trace');
  trace.addEventListener('click', () => vscode.postMessage({ type: 'openTrace', traceId: view.traceId }));
  actions.append(trace);
  header.append(actions);
  const parts: HTMLElement[] = [header];
  if (view.failure) parts.push(element('div', 'failure', `${view.failure.type}: ${view.failure.message}`));
  const timeline = element('div', 'timeline');
  const end = Math.max(view.updatedMs, ...view.timeline.map((entry) => entry.startMs + (entry.durationMs ?? 0)));
  for (const entry of view.timeline) timeline.append(timelineRow(entry, view.createdMs, end - view.createdMs));
  parts.push(element('h3', undefined, 'Timeline'), timeline);
  if (detailsError) parts.push(element('div', 'note', detailsError));
  if (details) {
    for (const section of [block('Input', details.input), block('Output', details.output), block('Custom status', details.customStatus), block('Failure', details.failure)]) if (section) parts.push(section);
    const history = element('table', 'history');
    details.history.forEach((event, index) => {
      const row = element('tr', 'history-row');
      const replay = element('button', 'link', 'debug to here');
      replay.title = `Replay up to event ${index + 1} under the debugger`;
      replay.addEventListener('click', () => vscode.postMessage({ type: 'debug', until: index + 1 }));
      const cell = element('td');
      cell.append(replay);
      row.append(element('td', undefined, String(index + 1)), element('td', undefined, event.time), element('td', undefined, event.type), element('td', undefined, event.summary), cell);
      history.append(row);
    });
    parts.push(element('h3', undefined, 'History'), history);
  }
  root.replaceChildren(...parts);
}

window.addEventListener('message', (event: MessageEvent<ToWebview>) => {
  const message = event.data;
  if (message.type === 'trace') drawTrace(message.waterfall, message.redacted);
  else if (message.type === 'instance') drawInstance(message.view, message.details, message.detailsError, message.server, message.tool);
});
vscode.postMessage({ type: 'ready' });

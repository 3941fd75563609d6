/**
 * Errors of the operator commands (queues, tasks, events). Each says what is wrong with what,
 * and which command to run next.
 */
import { AbsurdError } from 'absurd-kit';
import { shellQuote } from './cli-format.js';

/**
 * The queue named on the command line has no row in `absurd.queues`.
 *
 * @example
 * throw new QueueNotFoundError('orders'); // queue "orders" does not exist — run `absurd queue create orders`
 */
export class QueueNotFoundError extends AbsurdError {
  declare readonly code: 'QUEUE_NOT_FOUND';
  readonly queue: string;

  constructor(queue: string, hint = `run \`absurd queue create ${shellQuote(queue)}\``) {
    super('QUEUE_NOT_FOUND', `queue ${JSON.stringify(queue)} does not exist — ${hint}`);
    this.queue = queue;
  }
}

/**
 * No task (or run) with the given id exists in the queue(s) searched.
 *
 * @example
 * throw new TaskNotFoundError('0190…', 'orders');
 */
export class TaskNotFoundError extends AbsurdError {
  declare readonly code: 'TASK_NOT_FOUND';
  readonly taskID: string;
  /** The queue searched, or undefined when every queue was. */
  readonly queue: string | undefined;

  constructor(taskID: string, queue: string | undefined) {
    const where = queue === undefined ? 'in any queue' : `in queue ${JSON.stringify(queue)}`;
    const list = queue === undefined ? 'absurd tasks list' : `absurd tasks list -q ${shellQuote(queue)}`;
    super('TASK_NOT_FOUND', `task ${taskID} not found ${where} — see \`${list}\``);
    this.taskID = taskID;
    this.queue = queue;
  }
}

/**
 * A JSON argument (`--params`, `--payload`, `-P key:=json`) does not parse. The message gives the
 * line and column of the problem and shows the text around it.
 *
 * @example
 * throw new JsonInputError('--params', '{"a": }', 'Unexpected token }', 6);
 */
export class JsonInputError extends AbsurdError {
  declare readonly code: 'JSON_INPUT';
  /** Which argument held the text. */
  readonly source: string;
  /** Zero-based offset of the problem in the text, when the parser reported one. */
  readonly position: number | undefined;

  constructor(source: string, text: string, reason: string, position: number | undefined) {
    super('JSON_INPUT', `${source} is not valid JSON: ${reason}${describePosition(text, position)}`);
    this.source = source;
    this.position = position;
  }
}

/** ` at line 1, column 7:` plus the line and a caret under the offending character. */
function describePosition(text: string, position: number | undefined): string {
  if (position === undefined) return text.length > 80 ? '' : `\n  ${text}`;
  const at = Math.min(Math.max(position, 0), text.length);
  const before = text.slice(0, at);
  const line = before.split('\n').length;
  const lineStart = before.lastIndexOf('\n') + 1;
  const lineEnd = text.indexOf('\n', at) === -1 ? text.length : text.indexOf('\n', at);
  const column = at - lineStart + 1;
  // Long lines are cut to 30 characters either side of the problem.
  const from = Math.max(lineStart, at - 30);
  const to = Math.min(lineEnd, at + 30);
  const excerpt = `${from > lineStart ? '…' : ''}${text.slice(from, to)}${to < lineEnd ? '…' : ''}`;
  const caret = ' '.repeat(at - from + (from > lineStart ? 1 : 0)) + '^';
  return ` (line ${line}, column ${column})\n  ${excerpt}\n  ${caret}`;
}

/**
 * What `absurd generate` reports about the contract files: problems located by file and line,
 * gathered so that one run shows all of them.
 */
import { AbsurdError } from 'absurd-kit';

/** One problem in the contract files. `file` is relative to the project root, `line` 1-based. */
export interface GenerateProblem {
  readonly file: string;
  readonly line?: number;
  readonly message: string;
}

/** The contract files cannot be turned into generated code; `problems` says where and why. */
export class GenerateError extends AbsurdError {
  declare readonly code: 'GENERATE_FAILED';
  readonly problems: readonly GenerateProblem[];

  constructor(problems: readonly GenerateProblem[]) {
    const sorted = [...problems].sort(compareProblems);
    super(
      'GENERATE_FAILED',
      sorted.length === 1
        ? formatProblem(sorted[0]!)
        : `${sorted.length} problems in the contract files:\n${sorted.map((p) => `  ${formatProblem(p)}`).join('\n')}`,
    );
    this.problems = sorted;
  }
}

/** `file:line: message` (or `file: message` without a line). */
export function formatProblem(problem: GenerateProblem): string {
  return `${problem.file}${problem.line === undefined ? '' : `:${problem.line}`}: ${problem.message}`;
}

function compareProblems(a: GenerateProblem, b: GenerateProblem): number {
  return a.file === b.file ? (a.line ?? 0) - (b.line ?? 0) || a.message.localeCompare(b.message) : a.file < b.file ? -1 : 1;
}

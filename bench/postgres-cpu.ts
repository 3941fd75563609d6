/**
 * CPU time the PostgreSQL server spends, read from Linux's /proc: the postmaster's own time, the
 * time of its children that have exited (the postmaster's cutime/cstime: a backend that closed
 * with its client's pool counts too), and the time of its children alive now (backends, WAL
 * writer, checkpointer, autovacuum). Two samples around a run give the server's CPU for that run,
 * whoever caused it. Only for a server on this machine; elsewhere `sample` returns NaN.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { BenchDatabase } from './databases.js';

/** Clock ticks per second of /proc's times (USER_HZ: 100 on every Linux distribution in use). */
const TICKS_PER_SECOND = 100;

/** Reads the server's CPU time; built from any connection to it. */
export class PostgresCpu {
  private constructor(private readonly postmaster: number | undefined) {}

  /** Finds the postmaster of `db`'s server: the parent of the orchestrator's own backend. */
  static async of(db: BenchDatabase): Promise<PostgresCpu> {
    try {
      const { rows } = await db.query<{ pid: number }>('select pg_backend_pid() as pid');
      const backend = rows[0]?.pid;
      const stat = backend === undefined ? undefined : procStat(backend);
      return new PostgresCpu(stat?.ppid);
    } catch {
      return new PostgresCpu(undefined);
    }
  }

  /** Milliseconds of CPU the server has used so far (NaN when it cannot be read). */
  sample(): number {
    if (this.postmaster === undefined) return NaN;
    const own = procStat(this.postmaster);
    if (!own) return NaN;
    let ticks = own.utime + own.stime + own.cutime + own.cstime;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const child = procStat(Number(entry));
      if (child?.ppid === this.postmaster) ticks += child.utime + child.stime;
    }
    return (ticks * 1000) / TICKS_PER_SECOND;
  }
}

interface ProcStat {
  ppid: number;
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
}

/** Fields of /proc/<pid>/stat (see proc(5)); undefined when the process is gone or unreadable. */
function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: split after it.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const field = (n: number) => Number(fields[n - 3]);
  return { ppid: field(4), utime: field(14), stime: field(15), cutime: field(16), cstime: field(17) };
}

/** The URL of database `database` on the server of `url` (same host, port, user and options). */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

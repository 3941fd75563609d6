/*
  Wake-up channels (src/notify.ts). LISTEN takes an identifier, which no statement parameter can
  carry: these build the statement, the channel always double-quoted (embedded quotes doubled).

  NotifyQueue              wakes the idle workers listening on a queue's channel.
  ListenStatement          `listen <channel>`
  UnlistenStatement        `unlisten <channel>`
*/

/* @name NotifyQueue */
select pg_notify(:channel!, '');

/* @name ListenStatement */
select format('listen "%s"', replace(:channel!::text, '"', '""')) as "statement!";

/* @name UnlistenStatement */
select format('unlisten "%s"', replace(:channel!::text, '"', '""')) as "statement!";

/*
  Wake-up channels (src/notify.ts). LISTEN takes an identifier, which no statement parameter can
  carry: these build the statement with format('%I'), which quotes the channel name safely.

  NotifyQueue              wakes the idle workers listening on a queue's channel.
  ListenStatement          `listen <channel>`
  UnlistenStatement        `unlisten <channel>`
*/

/* @name NotifyQueue */
select pg_notify(:channel!, '');

/* @name ListenStatement */
select format('listen %I', :channel!::text) as "statement!";

/* @name UnlistenStatement */
select format('unlisten %I', :channel!::text) as "statement!";

/*
  Wake-up channels (src/notify.ts). LISTEN takes an identifier, which no statement parameter can
  carry: these build the statement with format('%I'), which quotes the channel name safely.

  ListenStatement          `listen <channel>`
  UnlistenStatement        `unlisten <channel>`
*/

/* @name ListenStatement */
select format('listen %I', :channel!::text) as "statement!";

/* @name UnlistenStatement */
select format('unlisten %I', :channel!::text) as "statement!";

-- absurd-kit engine, migration 000006: functions for absurd-kit's workers.
--
-- Additions only (the kit_ prefix marks functions that are not part of the Absurd contract); no
-- existing function changes behaviour, so every other client keeps working unchanged.

-- kit_seconds_until_next_run(q): seconds from now (absurd.current_time()) until the queue's earliest
-- pending or sleeping run becomes claimable; 0 or less when one is due already; NULL when no run is
-- waiting for time (runs waiting for an event without timeout wait for 'infinity' and do not count).
-- Idle workers sleep until then instead of polling. Reads the first entry of r_<q>_cai only.
create function absurd.kit_seconds_until_next_run(p_queue_name text) returns double precision
language plpgsql stable
as $$
declare
  v_next timestamptz;
begin
  execute format(
    'select r.available_at from absurd.%I r
      where r.state in (''pending'', ''sleeping'') and r.available_at < ''infinity''
      order by r.available_at, r.run_id
      limit 1',
    'r_' || p_queue_name)
    into v_next;
  if v_next is null then
    return null;
  end if;
  return extract(epoch from v_next - absurd.current_time())::double precision;
end;
$$;

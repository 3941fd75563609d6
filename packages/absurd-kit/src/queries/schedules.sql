/*
  Cron schedules (engine migration 000015; src/schedules.ts).

  UpsertSchedule           creates or updates a schedule and returns its row; `params` and
                           `options` are JSON text (options in the engine's snake_case). The engine
                           refuses a bad cron (AB010), time zone (AB011), queue (AB013) or argument
                           (AB014).
  RemoveSchedule           deletes a schedule; whether it existed.
  SetSchedulePaused        pauses or resumes a schedule and returns its row; AB012 when unknown.
  ListSchedules            every schedule, or those of one queue, by name.
  FireSchedules            fires the due schedules of a queue (what claim_task does first), for a
                           worker whose slots are all busy and so does not claim; how many tasks
                           it created.
*/

/* @name UpsertSchedule */
select schedule_name as "schedule_name!", queue_name as "queue_name!", task_name as "task_name!", cron as "cron!",
       timezone as "timezone!", params as "params!", options as "options!", catch_up as "catch_up!", paused as "paused!",
       next_fire_at, last_fired_at, last_task_id, last_error, created_at as "created_at!", updated_at as "updated_at!"
  from absurd.kit_upsert_schedule(:scheduleName!, :queueName!, :taskName!, :cron!, :timezone!, :params!::jsonb,
                                  :options!::jsonb, :catchUp!);

/* @name RemoveSchedule */
select absurd.kit_remove_schedule(:scheduleName!) as "removed!";

/* @name SetSchedulePaused */
select schedule_name as "schedule_name!", queue_name as "queue_name!", task_name as "task_name!", cron as "cron!",
       timezone as "timezone!", params as "params!", options as "options!", catch_up as "catch_up!", paused as "paused!",
       next_fire_at, last_fired_at, last_task_id, last_error, created_at as "created_at!", updated_at as "updated_at!"
  from absurd.kit_set_schedule_paused(:scheduleName!, :paused!);

/* @name ListSchedules */
select schedule_name as "schedule_name!", queue_name as "queue_name!", task_name as "task_name!", cron as "cron!",
       timezone as "timezone!", params as "params!", options as "options!", catch_up as "catch_up!", paused as "paused!",
       next_fire_at, last_fired_at, last_task_id, last_error, created_at as "created_at!", updated_at as "updated_at!"
  from absurd.kit_list_schedules(:queueName);

/* @name FireSchedules */
select absurd.kit_fire_schedules(:queueName!) as "created!";

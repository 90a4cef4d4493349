-- Named queries of the repository, loaded once by db/queries.py.
-- Each block starts with `-- name: <name>` and holds exactly one statement.

-- name: get_course
SELECT id, user_id, title, language, style, course_description, target_audience, difficulty,
       lesson_duration_minutes, learning_outcomes, estimated_lessons, estimated_sections,
       content_strategy, output_formats, generation_status::text AS generation_status,
       generation_progress, generation_started_at, generation_completed_at,
       last_progress_update, webhook_url, error_message, error_details, workflow_id, run_id,
       run_started_at, progress_seq, created_at, updated_at
  FROM public.courses
 WHERE id = $1;

-- name: get_course_for
-- A status read or a start in one round trip: the course row (the columns of `get_course`),
-- the caller's stored tier ($2's `user_profiles.tier`, whoever owns the course) and, only for a
-- rolled-back course, what its recorded run's saga undid (as `rollback_undone`).
SELECT c.id, c.user_id, c.title, c.language, c.style, c.course_description, c.target_audience,
       c.difficulty, c.lesson_duration_minutes, c.learning_outcomes, c.estimated_lessons,
       c.estimated_sections, c.content_strategy, c.output_formats,
       c.generation_status::text AS generation_status, c.generation_progress,
       c.generation_started_at, c.generation_completed_at, c.last_progress_update, c.webhook_url,
       c.error_message, c.error_details, c.workflow_id, c.run_id, c.run_started_at,
       c.progress_seq, c.created_at, c.updated_at,
       (SELECT p.tier FROM public.user_profiles p WHERE p.id = $2) AS caller_tier,
       CASE WHEN c.generation_status::text IN ('failed', 'cancelled') THEN
           (SELECT m.metadata->'undone'
              FROM public.system_metrics m
             WHERE m.course_id = c.id AND m.event_type = 'job_rollback'
               AND m.metadata->>'run_id' = c.run_id
             ORDER BY m."timestamp" DESC
             LIMIT 1)
       END AS undone
  FROM public.courses c
 WHERE c.id = $1;

-- name: get_user_tier
SELECT tier FROM public.user_profiles WHERE id = $1;

-- name: claim_generation
SELECT public.claim_course_generation($1, $2, $3, $4, $5, $6, $7);

-- name: update_progress
SELECT public.update_course_progress($1, $2, $3, $4, $5, $6, $7);

-- name: update_progress_steps
SELECT public.update_course_progress_steps($1, $2);

-- name: finish_generation
SELECT public.finish_course_generation($1, $2, $3, $4, $5);

-- name: record_metric
SELECT public.record_system_metric($1, $2, $3, $4, $5, $6);

-- name: generation_summary
SELECT public.get_generation_summary($1, $2);

-- name: status_history
SELECT id, course_id::text AS course_id, old_status::text AS old_status,
       new_status::text AS new_status, changed_at, trigger_source, metadata
  FROM public.generation_status_history
 WHERE course_id = $1
 ORDER BY changed_at, id;

-- name: rollback_undone
SELECT metadata->'undone'
  FROM public.system_metrics
 WHERE course_id = $1 AND event_type = 'job_rollback' AND metadata->>'run_id' = $2
 ORDER BY "timestamp" DESC
 LIMIT 1;

-- name: progress_snapshots
SELECT id::text AS course_id, generation_status::text AS generation_status, progress_seq AS seq,
       generation_progress -> 'current_step' AS current_step,
       generation_progress -> 'percentage' AS percentage,
       generation_progress ->> 'message' AS message, workflow_id, run_id
  FROM public.courses
 WHERE id = ANY($1::uuid[]);

-- name: claim_webhooks
-- The due head of each course's pending events (none while an earlier one of that course is
-- pending, so a course's events go out in order), leased for $2 seconds. `superseded`: a
-- progress event older than $3 seconds whose next pending event is also progress.
WITH heads AS (
    SELECT o.id
      FROM public.webhook_outbox o
     WHERE o.status = 'pending' AND o.next_attempt_at <= now()
       AND (o.leased_until IS NULL OR o.leased_until < now())
       AND NOT EXISTS (SELECT 1 FROM public.webhook_outbox e
                        WHERE e.course_id = o.course_id AND e.status = 'pending' AND e.id < o.id)
     ORDER BY o.next_attempt_at, o.id
     LIMIT $1
       FOR UPDATE SKIP LOCKED
)
UPDATE public.webhook_outbox o
   SET leased_until = now() + make_interval(secs => $2), attempts = o.attempts + 1
  FROM heads
 WHERE o.id = heads.id
RETURNING o.id, o.webhook_id, o.course_id::text AS course_id, o.user_id::text AS user_id,
          o.url, o.payload, o.event_type, o.attempts, o.created_at,
          (o.event_type = 'generation.progress'
           AND o.created_at < now() - make_interval(secs => $3)
           AND (SELECT n.event_type FROM public.webhook_outbox n
                 WHERE n.course_id = o.course_id AND n.status = 'pending' AND n.id > o.id
                 ORDER BY n.id LIMIT 1) = 'generation.progress') AS superseded;

-- name: finish_webhook
UPDATE public.webhook_outbox
   SET status = $2, finished_at = now(), leased_until = NULL, last_error = $3
 WHERE id = $1;

-- name: retry_webhook
UPDATE public.webhook_outbox
   SET next_attempt_at = now() + make_interval(secs => $2), leased_until = NULL, last_error = $3
 WHERE id = $1;

-- name: purge_webhooks
DELETE FROM public.webhook_outbox
 WHERE status IN ('delivered', 'superseded') AND finished_at < now() - make_interval(secs => $1);

-- name: reconcile_active_page
-- One keyset page of courses in an active status (after course id $1, at most $2), with how
-- long each has gone without progress; the reconciler never reads them all at once.
SELECT id::text AS course_id, user_id::text AS user_id,
       generation_status::text AS generation_status, run_id,
       extract(epoch FROM now() - coalesce(last_progress_update, updated_at))::float8
           AS idle_seconds
  FROM public.courses
 WHERE generation_status NOT IN ('completed', 'failed', 'cancelled')
   AND id > $1
 ORDER BY id
 LIMIT $2;

-- name: reconcile_active_runs
-- The run (and user) each of courses $1 (uuid[]) names, for those in an active status that
-- name one: the leases of these runs are checked by the course pages, so a lease page skips them.
SELECT id, run_id, user_id::text AS user_id
  FROM public.courses
 WHERE id = ANY($1::uuid[])
   AND run_id IS NOT NULL
   AND generation_status NOT IN ('completed', 'failed', 'cancelled');

-- name: reconcile_fail_orphan
-- `finish_course_generation(failed)` for a course still active, still naming run $2 and idle
-- for $5 seconds or more; no row when any of that no longer holds (another pass won the race,
-- the run wrote progress or finished). The row lock makes two passes apply it once.
WITH orphan AS (
    SELECT id FROM public.courses
     WHERE id = $1
       AND run_id IS NOT DISTINCT FROM $2
       AND generation_status NOT IN ('completed', 'failed', 'cancelled')
       AND coalesce(last_progress_update, updated_at) <= now() - make_interval(secs => $5)
       FOR UPDATE
)
SELECT public.finish_course_generation(id, $2, 'failed', $3, $4) IS NOT NULL FROM orphan;

-- name: reconcile_still_active
-- Whether course $1 is still in an active status and still names run $2 (read again after a
-- lease restore: a run writes its end before it frees its lease).
SELECT EXISTS (
    SELECT 1 FROM public.courses
     WHERE id = $1
       AND run_id = $2
       AND generation_status NOT IN ('completed', 'failed', 'cancelled')
);

-- name: reconcile_flagged
-- Whether the reconciler has already recorded `worker_timeout` for run $2 of workflow $1.
SELECT EXISTS (
    SELECT 1 FROM public.system_metrics
     WHERE job_id = $1 AND event_type = 'worker_timeout'
       AND metadata->>'run_id' = $2 AND metadata->>'source' = 'reconciler'
);

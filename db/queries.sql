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

-- name: get_user_tier
SELECT tier FROM public.user_profiles WHERE id = $1;

-- name: begin_generation
SELECT public.begin_course_generation($1, $2, $3, $4, $5);

-- name: update_progress
SELECT public.update_course_progress($1, $2, $3, $4, $5, $6, $7);

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

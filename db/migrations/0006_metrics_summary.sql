-- Helpers: recording a system metric, and a summary of one course's generation.

CREATE FUNCTION public.record_system_metric(
    p_event_type text, p_severity text, p_user_id uuid DEFAULT NULL,
    p_course_id uuid DEFAULT NULL, p_job_id text DEFAULT NULL,
    p_metadata jsonb DEFAULT '{}'::jsonb
) RETURNS uuid
LANGUAGE sql
SECURITY DEFINER
SET search_path = ''
AS $$
    INSERT INTO public.system_metrics (event_type, severity, user_id, course_id, job_id, metadata)
    VALUES (p_event_type::public.metric_event_type, p_severity::public.metric_severity,
            p_user_id, p_course_id, p_job_id, coalesce(p_metadata, '{}'::jsonb))
    RETURNING id
$$;

REVOKE ALL ON FUNCTION public.record_system_metric(text, text, uuid, uuid, text, jsonb)
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.record_system_metric(text, text, uuid, uuid, text, jsonb)
    TO service_role;

-- SECURITY INVOKER: an authenticated caller sees only their own course through RLS.
-- Active = running a step; stuck = active with no progress update for p_stuck_after_seconds.
CREATE FUNCTION public.get_generation_summary(
    p_course_id uuid, p_stuck_after_seconds integer DEFAULT 900
) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = ''
AS $$
    SELECT pg_catalog.jsonb_build_object(
        'course_id', c.id,
        'generation_status', c.generation_status,
        'current_step', c.generation_progress -> 'current_step',
        'percentage', c.generation_progress -> 'percentage',
        'message', c.generation_progress -> 'message',
        'workflow_id', c.workflow_id,
        'run_id', c.run_id,
        'progress_seq', c.progress_seq,
        'started_at', c.generation_started_at,
        'completed_at', c.generation_completed_at,
        'last_progress_update', c.last_progress_update,
        'duration_seconds', EXTRACT(EPOCH FROM coalesce(c.generation_completed_at, pg_catalog.now())
                                               - c.generation_started_at),
        'is_active', a.active,
        'is_stuck', a.active AND coalesce(c.last_progress_update, c.generation_started_at)
                    < pg_catalog.now() - pg_catalog.make_interval(secs => p_stuck_after_seconds),
        'transition_count', (SELECT pg_catalog.count(*) FROM public.generation_status_history h
                              WHERE h.course_id = c.id))
      FROM public.courses c
     CROSS JOIN LATERAL (SELECT c.generation_status IN (
            'initializing', 'processing_documents', 'analyzing_task', 'generating_structure',
            'generating_content', 'finalizing') IS TRUE AS active) a
     WHERE c.id = p_course_id
$$;

REVOKE ALL ON FUNCTION public.get_generation_summary(uuid, integer) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.get_generation_summary(uuid, integer)
    TO authenticated, service_role;

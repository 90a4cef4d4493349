-- A run's adjacent progress writes (step N completed, step N+1 in progress) in one call: one
-- round trip and one commit where they took two, and the pair lands whole or not at all. Each
-- write still goes through `update_course_progress`, the one writer of progress, in the order
-- given; `p_writes` is a JSON array of {step_id, status, message, error_message?,
-- error_details?, metadata?}. NULL when the course does not exist.
CREATE FUNCTION public.update_course_progress_steps(p_course_id uuid, p_writes jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    doc jsonb;
    w jsonb;
BEGIN
    IF p_writes IS NULL OR pg_catalog.jsonb_typeof(p_writes) <> 'array'
       OR pg_catalog.jsonb_array_length(p_writes) = 0 THEN
        RAISE EXCEPTION 'p_writes must be a non-empty JSON array' USING ERRCODE = '22023';
    END IF;
    FOR w IN SELECT value FROM pg_catalog.jsonb_array_elements(p_writes) LOOP
        doc := public.update_course_progress(
            p_course_id, (w ->> 'step_id')::integer, w ->> 'status', w ->> 'message',
            w ->> 'error_message', w -> 'error_details', coalesce(w -> 'metadata', '{}'));
        IF doc IS NULL THEN
            RETURN NULL;
        END IF;
    END LOOP;
    RETURN doc;
END
$$;

REVOKE ALL ON FUNCTION public.update_course_progress_steps(uuid, jsonb)
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.update_course_progress_steps(uuid, jsonb) TO service_role;

-- The claim's own step writes go through the function above, so one loop applies a run's
-- write lists (the claim's behaviour is unchanged: begin, then its writes, one transaction).
CREATE OR REPLACE FUNCTION public.claim_course_generation(
    p_course_id uuid, p_workflow_id text, p_run_id text, p_generation_type text,
    p_run_started_at timestamptz, p_webhook_url text, p_writes jsonb
) RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    doc jsonb;
BEGIN
    IF p_webhook_url IS NOT NULL THEN
        PERFORM pg_catalog.set_config('app.webhook_url', p_webhook_url, true);
    END IF;
    doc := public.begin_course_generation(p_course_id, p_workflow_id, p_run_id,
                                          p_generation_type, p_run_started_at);
    IF doc IS NULL OR pg_catalog.jsonb_array_length(coalesce(p_writes, '[]')) = 0 THEN
        RETURN doc;
    END IF;
    RETURN public.update_course_progress_steps(p_course_id, p_writes);
END
$$;

-- The claim and the run's first step writes in one call: one round trip and one commit where
-- the claim took five (begin, then step 1 started, completed and step 2 started). Each write
-- still goes through `update_course_progress`, the one writer of progress, in the order given;
-- `p_writes` is a JSON array of {step_id, status, message, metadata}. `p_webhook_url` is what
-- the claim's trigger records for the run (as `app.webhook_url`, transaction-local).
CREATE FUNCTION public.claim_course_generation(
    p_course_id uuid, p_workflow_id text, p_run_id text, p_generation_type text,
    p_run_started_at timestamptz, p_webhook_url text, p_writes jsonb
) RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    doc jsonb;
    w jsonb;
BEGIN
    IF p_webhook_url IS NOT NULL THEN
        PERFORM pg_catalog.set_config('app.webhook_url', p_webhook_url, true);
    END IF;
    doc := public.begin_course_generation(p_course_id, p_workflow_id, p_run_id,
                                          p_generation_type, p_run_started_at);
    IF doc IS NULL THEN
        RETURN NULL;
    END IF;
    FOR w IN SELECT value FROM pg_catalog.jsonb_array_elements(coalesce(p_writes, '[]')) LOOP
        doc := public.update_course_progress(
            p_course_id, (w ->> 'step_id')::integer, w ->> 'status', w ->> 'message',
            NULL, NULL, coalesce(w -> 'metadata', '{}'));
    END LOOP;
    RETURN doc;
END
$$;

REVOKE ALL ON FUNCTION public.claim_course_generation(
    uuid, text, text, text, timestamptz, text, jsonb) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.claim_course_generation(
    uuid, text, text, text, timestamptz, text, jsonb) TO service_role;

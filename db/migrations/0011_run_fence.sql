-- The run fence is visible. A write from a run other than the one recorded on the course raises
-- SQLSTATE CG002 ("stale run") and changes nothing, so an old run learns it was superseded.
-- A claim carries its run's start time (courses.run_started_at): a claim by a run that started
-- before the recorded one is an old run's late claim and is refused the same way. Within one
-- run a step never moves backwards: `pending`/`in_progress` after the step completed or failed
-- is a no-op.

ALTER TABLE public.courses ADD COLUMN run_started_at timestamptz;

CREATE FUNCTION private.raise_stale_run(p_course_id uuid, p_write_run text, p_course_run text)
RETURNS void
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    RAISE EXCEPTION 'stale run: course % belongs to run %, not run %', p_course_id,
        coalesce(p_course_run, 'NULL'), coalesce(p_write_run, 'NULL')
        USING ERRCODE = 'CG002';
END
$$;
REVOKE ALL ON FUNCTION private.raise_stale_run(uuid, text, text) FROM PUBLIC;

DROP FUNCTION public.begin_course_generation(uuid, text, text, text);

CREATE FUNCTION public.begin_course_generation(
    p_course_id uuid, p_workflow_id text, p_run_id text, p_generation_type text,
    p_run_started_at timestamptz
) RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    c public.courses;
    has_docs boolean := p_generation_type = 'DOCUMENT_PROCESSING';
    doc jsonb;
    seq bigint;
BEGIN
    IF p_generation_type IS NULL
       OR p_generation_type NOT IN ('DOCUMENT_PROCESSING', 'STRUCTURE_ANALYSIS') THEN
        RAISE EXCEPTION 'invalid generation_type: %. Must be DOCUMENT_PROCESSING|STRUCTURE_ANALYSIS',
            coalesce(p_generation_type, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF p_run_id IS NULL OR p_run_id = '' OR p_run_started_at IS NULL THEN
        RAISE EXCEPTION 'invalid claim: a claim needs a run id and its start time'
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO c FROM public.courses WHERE id = p_course_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF c.run_id = p_run_id THEN
        RETURN c.generation_progress;  -- the same run claiming again: already done
    END IF;
    IF c.run_started_at > p_run_started_at THEN
        PERFORM private.raise_stale_run(p_course_id, p_run_id, c.run_id);
    END IF;
    PERFORM pg_catalog.set_config('app.trigger_source', 'begin_course_generation', true);
    IF c.generation_status NOT IN ('completed', 'failed', 'cancelled') THEN
        PERFORM private.apply_finish(c, 'failed', 'superseded by a new run', NULL);
    END IF;
    doc := CASE WHEN pg_catalog.jsonb_typeof(c.generation_progress) = 'object'
                THEN c.generation_progress ELSE '{}'::jsonb END
        || pg_catalog.jsonb_build_object(
               'steps', private.initial_steps(has_docs), 'total_steps', 5, 'current_step', 1,
               'percentage', 0, 'message', '', 'has_documents', has_docs);
    UPDATE public.courses
       SET workflow_id = p_workflow_id, run_id = p_run_id, run_started_at = p_run_started_at,
           generation_progress = doc, generation_status = 'pending', error_message = NULL,
           error_details = NULL, generation_started_at = pg_catalog.now(),
           generation_completed_at = NULL, last_progress_update = pg_catalog.now(),
           progress_seq = progress_seq + 1
     WHERE id = p_course_id
    RETURNING progress_seq INTO seq;
    PERFORM private.notify_progress(p_course_id, seq, 'pending', doc);
    RETURN doc;
END
$$;

CREATE OR REPLACE FUNCTION public.update_course_progress(
    p_course_id uuid, p_step_id integer, p_status text, p_message text,
    p_error_message text DEFAULT NULL, p_error_details jsonb DEFAULT NULL,
    p_metadata jsonb DEFAULT '{}'::jsonb
) RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    meta jsonb := coalesce(p_metadata, '{}'::jsonb);
    c public.courses;
    doc jsonb;
    v_status public.generation_status;
    err_message text;
    err_details jsonb;
    v_completed_at timestamptz;
    seq bigint;
BEGIN
    IF p_step_id IS NULL OR p_step_id NOT BETWEEN 1 AND 5 THEN
        RAISE EXCEPTION 'invalid step_id: %. Must be 1-5', coalesce(p_step_id::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF p_status IS NULL OR p_status NOT IN ('pending', 'in_progress', 'completed', 'failed') THEN
        RAISE EXCEPTION 'invalid status: %. Must be pending|in_progress|completed|failed',
            coalesce(p_status, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.jsonb_typeof(meta) <> 'object' THEN
        RAISE EXCEPTION 'invalid metadata: must be a JSON object' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO c FROM public.courses WHERE id = p_course_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF (meta ->> 'run_id') IS DISTINCT FROM c.run_id THEN
        PERFORM private.raise_stale_run(p_course_id, meta ->> 'run_id', c.run_id);
    END IF;
    doc := private.ensure_document(c.generation_progress);
    IF p_status IN ('pending', 'in_progress')
       AND (doc -> 'steps' -> (p_step_id - 1) ->> 'status') IN ('completed', 'failed') THEN
        RETURN c.generation_progress;  -- a late write never moves a step backwards
    END IF;
    doc := private.apply_progress(doc, p_step_id, p_status, p_message, p_error_message,
        p_error_details, meta, private.iso_now());
    v_status := private.derived_status(c.generation_status, p_step_id, p_status,
                                     coalesce((doc ->> 'has_documents')::boolean, false));
    err_message := CASE WHEN p_status = 'failed' THEN coalesce(p_error_message, p_message)
                        ELSE c.error_message END;
    err_details := CASE WHEN p_status = 'failed' THEN p_error_details ELSE c.error_details END;
    v_completed_at := CASE WHEN v_status IN ('completed', 'failed')
                          AND v_status IS DISTINCT FROM c.generation_status
                         THEN pg_catalog.now() ELSE c.generation_completed_at END;
    IF doc = c.generation_progress AND v_status IS NOT DISTINCT FROM c.generation_status
       AND err_message IS NOT DISTINCT FROM c.error_message
       AND err_details IS NOT DISTINCT FROM c.error_details
       AND c.generation_started_at IS NOT NULL
       AND v_completed_at IS NOT DISTINCT FROM c.generation_completed_at THEN
        RETURN c.generation_progress;  -- nothing changes: write nothing
    END IF;
    IF v_status IS DISTINCT FROM c.generation_status THEN
        PERFORM pg_catalog.set_config('app.trigger_source', 'update_course_progress', true);
    END IF;
    UPDATE public.courses
       SET generation_progress = doc, generation_status = v_status,
           error_message = err_message, error_details = err_details,
           generation_started_at = coalesce(generation_started_at, pg_catalog.now()),
           generation_completed_at = v_completed_at, last_progress_update = pg_catalog.now(),
           progress_seq = progress_seq + 1
     WHERE id = p_course_id
    RETURNING progress_seq INTO seq;
    PERFORM private.notify_progress(p_course_id, seq, v_status, doc);
    RETURN doc;
END
$$;

CREATE OR REPLACE FUNCTION public.finish_course_generation(
    p_course_id uuid, p_run_id text, p_outcome text, p_message text,
    p_error_details jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    c public.courses;
BEGIN
    IF p_outcome IS NULL OR p_outcome NOT IN ('failed', 'cancelled') THEN
        RAISE EXCEPTION 'invalid outcome: %. Must be failed|cancelled', coalesce(p_outcome, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO c FROM public.courses WHERE id = p_course_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF p_run_id IS DISTINCT FROM c.run_id THEN
        PERFORM private.raise_stale_run(p_course_id, p_run_id, c.run_id);
    END IF;
    IF c.generation_status IN ('completed', 'failed', 'cancelled') THEN
        RETURN c.generation_progress;  -- already terminal: no-op
    END IF;
    PERFORM pg_catalog.set_config('app.trigger_source', 'finish_course_generation', true);
    RETURN private.apply_finish(c, p_outcome::public.generation_status, p_message,
                                p_error_details);
END
$$;

REVOKE ALL ON FUNCTION public.begin_course_generation(uuid, text, text, text, timestamptz)
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.begin_course_generation(uuid, text, text, text, timestamptz)
    TO service_role;

-- The three course writers. Each locks the row, applies the run fence, writes at most
-- one UPDATE per state change (nothing when nothing changes), bumps progress_seq and notifies
-- channel `course_progress`. SECURITY DEFINER with an empty search_path; EXECUTE only for
-- service_role and the owner (the application's login role, which runs the migrations).

-- Fail or cancel a locked, non-terminal course in one UPDATE; returns the stored document.
CREATE FUNCTION private.apply_finish(
    p_course public.courses, p_outcome public.generation_status, p_message text,
    p_error_details jsonb
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    doc jsonb := private.ensure_document(p_course.generation_progress);
    i integer := private.failing_step(doc);
    seq bigint;
BEGIN
    IF i IS NOT NULL THEN
        doc := pg_catalog.jsonb_set(doc, ARRAY['steps', i::text],
            (doc -> 'steps' -> i) || pg_catalog.jsonb_build_object(
                'status', 'failed', 'error', p_message, 'error_details', p_error_details,
                'completed_at', private.iso_now()));
    END IF;
    doc := doc || pg_catalog.jsonb_build_object('message', coalesce(p_message, ''));
    UPDATE public.courses
       SET generation_progress = doc, generation_status = p_outcome,
           error_message = p_message, error_details = p_error_details,
           generation_completed_at = pg_catalog.now(), last_progress_update = pg_catalog.now(),
           progress_seq = progress_seq + 1
     WHERE id = p_course.id
    RETURNING progress_seq INTO seq;
    PERFORM private.notify_progress(p_course.id, seq, p_outcome, doc);
    RETURN doc;
END
$$;

CREATE FUNCTION public.begin_course_generation(
    p_course_id uuid, p_workflow_id text, p_run_id text, p_generation_type text
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
    IF p_run_id IS NULL OR p_run_id = '' THEN
        RAISE EXCEPTION 'invalid run_id: a claim needs a run id' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO c FROM public.courses WHERE id = p_course_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF c.run_id = p_run_id THEN
        RETURN c.generation_progress;  -- the same run claiming again: already done
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
       SET workflow_id = p_workflow_id, run_id = p_run_id, generation_progress = doc,
           generation_status = 'pending', error_message = NULL, error_details = NULL,
           generation_started_at = pg_catalog.now(), generation_completed_at = NULL,
           last_progress_update = pg_catalog.now(), progress_seq = progress_seq + 1
     WHERE id = p_course_id
    RETURNING progress_seq INTO seq;
    PERFORM private.notify_progress(p_course_id, seq, 'pending', doc);
    RETURN doc;
END
$$;

CREATE FUNCTION public.update_course_progress(
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
        RETURN c.generation_progress;  -- fenced: a late or foreign write changes nothing
    END IF;
    doc := private.apply_progress(private.ensure_document(c.generation_progress), p_step_id,
        p_status, p_message, p_error_message, p_error_details, meta, private.iso_now());
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

CREATE FUNCTION public.finish_course_generation(
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
    IF p_run_id IS DISTINCT FROM c.run_id
       OR c.generation_status IN ('completed', 'failed', 'cancelled') THEN
        RETURN c.generation_progress;  -- fenced, or already terminal: no-op
    END IF;
    PERFORM pg_catalog.set_config('app.trigger_source', 'finish_course_generation', true);
    RETURN private.apply_finish(c, p_outcome::public.generation_status, p_message,
                                p_error_details);
END
$$;

REVOKE ALL ON FUNCTION private.apply_finish(public.courses, public.generation_status, text, jsonb)
    FROM PUBLIC;
REVOKE ALL ON FUNCTION public.begin_course_generation(uuid, text, text, text)
    FROM PUBLIC, anon, authenticated;
REVOKE ALL ON FUNCTION public.update_course_progress(uuid, integer, text, text, text, jsonb, jsonb)
    FROM PUBLIC, anon, authenticated;
REVOKE ALL ON FUNCTION public.finish_course_generation(uuid, text, text, text, jsonb)
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.begin_course_generation(uuid, text, text, text) TO service_role;
GRANT EXECUTE ON FUNCTION public.update_course_progress(uuid, integer, text, text, text, jsonb, jsonb)
    TO service_role;
GRANT EXECUTE ON FUNCTION public.finish_course_generation(uuid, text, text, text, jsonb)
    TO service_role;

-- Pure helpers that build and edit the progress document. They live in `private`
-- and are only called from the SECURITY DEFINER writers of 0005.

CREATE FUNCTION private.iso_now() RETURNS text
LANGUAGE sql STABLE
SET search_path = ''
AS $$
    SELECT pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE FUNCTION private.initial_steps(p_has_documents boolean) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = ''
AS $$
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'id', s.id, 'name', s.name, 'status', 'pending', 'started_at', NULL,
               'completed_at', NULL, 'error', NULL, 'error_details', NULL,
               'metadata', '{}'::jsonb) ORDER BY s.id)
      FROM (VALUES
              (1, 'Запуск генерации'),
              (2, CASE WHEN p_has_documents THEN 'Обработка документов' ELSE 'Анализ задачи' END),
              (3, 'Генерация структуры'),
              (4, 'Создание контента'),
              (5, 'Финализация')) AS s (id, name)
$$;

CREATE FUNCTION private.has_files(p_doc jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = ''
AS $$
    SELECT coalesce(pg_catalog.jsonb_typeof(p_doc -> 'files') = 'array'
                    AND pg_catalog.jsonb_array_length(p_doc -> 'files') > 0, false)
$$;

-- The document as stored, or a fresh one (keeping present keys) when it has no five steps.
CREATE FUNCTION private.ensure_document(p_doc jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = ''
AS $$
DECLARE
    base jsonb := CASE WHEN pg_catalog.jsonb_typeof(p_doc) = 'object' THEN p_doc
                       ELSE '{}'::jsonb END;
    has_docs boolean := private.has_files(base);
BEGIN
    IF pg_catalog.jsonb_typeof(base -> 'steps') = 'array'
       AND pg_catalog.jsonb_array_length(base -> 'steps') = 5 THEN
        RETURN base;
    END IF;
    RETURN pg_catalog.jsonb_build_object(
               'total_steps', 5, 'current_step', 1, 'percentage', 0, 'message', '',
               'has_documents', has_docs)
           || base
           || pg_catalog.jsonb_build_object('steps', private.initial_steps(has_docs));
END
$$;

-- The generation_status a step runs under (step 2 by branch).
CREATE FUNCTION private.step_status(p_step integer, p_has_documents boolean)
RETURNS public.generation_status
LANGUAGE sql IMMUTABLE
SET search_path = ''
AS $$
    SELECT (CASE p_step
        WHEN 1 THEN 'initializing'
        WHEN 2 THEN CASE WHEN p_has_documents THEN 'processing_documents'
                         ELSE 'analyzing_task' END
        WHEN 3 THEN 'generating_structure'
        WHEN 4 THEN 'generating_content'
        ELSE 'finalizing'
    END)::public.generation_status
$$;

CREATE FUNCTION private.derived_status(
    p_current public.generation_status, p_step integer, p_status text, p_has_documents boolean
) RETURNS public.generation_status
LANGUAGE sql IMMUTABLE
SET search_path = ''
AS $$
    SELECT CASE
        WHEN p_status = 'failed' THEN 'failed'::public.generation_status
        WHEN p_status = 'pending' THEN p_current
        WHEN p_status = 'completed' AND p_step = 5 THEN 'completed'::public.generation_status
        ELSE private.step_status(p_step, p_has_documents)
    END
$$;

-- One step's new state: status, started_at while null, completed_at on the transition to
-- completed/failed, error fields when given, metadata merged inside the step's `metadata`.
CREATE FUNCTION private.apply_step(
    p_step jsonb, p_status text, p_error text, p_error_details jsonb, p_metadata jsonb,
    p_now text
) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = ''
AS $$
DECLARE
    step jsonb := p_step || pg_catalog.jsonb_build_object('status', p_status);
    meta jsonb := CASE WHEN pg_catalog.jsonb_typeof(p_step -> 'metadata') = 'object'
                       THEN p_step -> 'metadata' ELSE '{}'::jsonb END;
BEGIN
    IF p_status <> 'pending' AND coalesce(pg_catalog.jsonb_typeof(p_step -> 'started_at'),
                                          'null') = 'null' THEN
        step := step || pg_catalog.jsonb_build_object('started_at', p_now);
    END IF;
    IF p_status IN ('completed', 'failed') AND (p_step ->> 'status') IS DISTINCT FROM p_status THEN
        step := step || pg_catalog.jsonb_build_object('completed_at', p_now);
    END IF;
    IF p_error IS NOT NULL OR p_error_details IS NOT NULL THEN
        step := step || pg_catalog.jsonb_build_object('error', p_error,
                                                      'error_details', p_error_details);
    END IF;
    RETURN step || pg_catalog.jsonb_build_object('metadata', meta || p_metadata);
END
$$;

-- The whole document after a progress write of step p_step_id.
CREATE FUNCTION private.apply_progress(
    p_doc jsonb, p_step_id integer, p_status text, p_message text, p_error text,
    p_error_details jsonb, p_metadata jsonb, p_now text
) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = ''
AS $$
DECLARE
    i integer := p_step_id - 1;
    doc jsonb;
BEGIN
    doc := pg_catalog.jsonb_set(p_doc, ARRAY['steps', i::text], private.apply_step(
        p_doc -> 'steps' -> i, p_status, p_error, p_error_details, p_metadata, p_now));
    doc := doc || pg_catalog.jsonb_build_object(
        'current_step', p_step_id, 'message', coalesce(p_message, doc ->> 'message', ''));
    IF p_status = 'in_progress' THEN
        doc := doc || pg_catalog.jsonb_build_object('percentage', (p_step_id - 1) * 20 + 10);
    ELSIF p_status = 'completed' THEN
        doc := doc || pg_catalog.jsonb_build_object('percentage', p_step_id * 20);
    END IF;
    RETURN doc;
END
$$;

-- The step a failure or cancellation marks: the in_progress one, else the first not completed.
CREATE FUNCTION private.failing_step(p_doc jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = ''
AS $$
    SELECT (s.ord - 1)::integer
      FROM pg_catalog.jsonb_array_elements(p_doc -> 'steps') WITH ORDINALITY AS s (step, ord)
     WHERE (s.step ->> 'status') IS DISTINCT FROM 'completed'
     ORDER BY (s.step ->> 'status') IS NOT DISTINCT FROM 'in_progress' DESC, s.ord
     LIMIT 1
$$;

CREATE FUNCTION private.notify_progress(
    p_course_id uuid, p_seq bigint, p_status public.generation_status, p_doc jsonb
) RETURNS void
LANGUAGE sql
SET search_path = ''
AS $$
    SELECT pg_catalog.pg_notify('course_progress', pg_catalog.jsonb_build_object(
        'courseId', p_course_id, 'seq', p_seq, 'generationStatus', p_status,
        'percentage', p_doc -> 'percentage', 'currentStep', p_doc -> 'current_step')::text)
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA private FROM PUBLIC;

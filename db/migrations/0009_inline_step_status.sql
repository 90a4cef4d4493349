-- private.step_status cast text to the enum at run time (enum_in is not immutable), so it could
-- not be inlined and was planned on every call: a quarter of update_course_progress's time.
-- Typed constants make it a plain CASE over literals, inlined into its callers.

CREATE OR REPLACE FUNCTION private.step_status(p_step integer, p_has_documents boolean)
RETURNS public.generation_status
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE p_step
        WHEN 1 THEN 'initializing'::public.generation_status
        WHEN 2 THEN CASE WHEN p_has_documents THEN 'processing_documents'::public.generation_status
                         ELSE 'analyzing_task'::public.generation_status END
        WHEN 3 THEN 'generating_structure'::public.generation_status
        WHEN 4 THEN 'generating_content'::public.generation_status
        ELSE 'finalizing'::public.generation_status
    END
$$;

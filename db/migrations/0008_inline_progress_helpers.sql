-- The pure helpers of 0004 ran with their own `SET search_path`, which costs a GUC save and
-- restore per call and stops SQL functions from being inlined (it doubled the cost of
-- update_course_progress against a plain UPDATE). They are reachable only from the SECURITY
-- DEFINER writers (schema `private` has no USAGE for other roles), which already pin an empty
-- search_path, and every name in them is schema-qualified; so they inherit the caller's.

ALTER FUNCTION private.iso_now() RESET search_path;
ALTER FUNCTION private.initial_steps(boolean) RESET search_path;
ALTER FUNCTION private.has_files(jsonb) RESET search_path;
ALTER FUNCTION private.ensure_document(jsonb) RESET search_path;
ALTER FUNCTION private.step_status(integer, boolean) RESET search_path;
ALTER FUNCTION private.derived_status(public.generation_status, integer, text, boolean)
    RESET search_path;
ALTER FUNCTION private.apply_step(jsonb, text, text, jsonb, jsonb, text) RESET search_path;
ALTER FUNCTION private.apply_progress(jsonb, integer, text, text, text, jsonb, jsonb, text)
    RESET search_path;
ALTER FUNCTION private.failing_step(jsonb) RESET search_path;
ALTER FUNCTION private.notify_progress(uuid, bigint, public.generation_status, jsonb)
    RESET search_path;
ALTER FUNCTION private.apply_finish(public.courses, public.generation_status, text, jsonb)
    RESET search_path;

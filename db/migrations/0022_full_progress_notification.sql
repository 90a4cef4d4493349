-- A progress notification carries the whole state a progress stream reports (message,
-- workflowId and runId besides the status, step and percentage), so the gateway can send each
-- change as its own event without reading the row. NOTIFY refuses payloads of 8000 bytes or
-- more: when the full form would be that big (a long message), the notification is the short
-- form {courseId, seq} and the gateway reads the row, as it did for every change before.
-- Same signature as in 0004, so its callers stay as they are; the run's ids come from the row
-- the caller has just updated (and still holds locked) in the same transaction.
CREATE OR REPLACE FUNCTION private.notify_progress(
    p_course_id uuid, p_seq bigint, p_status public.generation_status, p_doc jsonb
) RETURNS void
LANGUAGE sql
AS $$
    SELECT pg_catalog.pg_notify('course_progress',
               CASE WHEN pg_catalog.octet_length(n.payload) < 8000 THEN n.payload
                    ELSE pg_catalog.jsonb_build_object('courseId', p_course_id,
                                                       'seq', p_seq)::text END)
      FROM (SELECT pg_catalog.jsonb_build_object(
                       'courseId', p_course_id, 'seq', p_seq, 'generationStatus', p_status,
                       'percentage', p_doc -> 'percentage',
                       'currentStep', p_doc -> 'current_step',
                       'message', p_doc ->> 'message',
                       'workflowId', c.workflow_id, 'runId', c.run_id)::text AS payload
              FROM (SELECT) AS one
              LEFT JOIN public.courses c ON c.id = p_course_id) AS n
$$;

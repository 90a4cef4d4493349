-- A step's `completed` written again after a later step has begun keeps the course's status.
-- It happens when a worker dies inside a workflow task: the progress writes of that task ran
-- (local activities) but their results were never recorded, so the next worker runs them
-- again, and "step 3 completed" arrives while the row already says `generating_content`.
-- Without this the status machine refused the backward move and the run failed.
CREATE OR REPLACE FUNCTION private.derived_status(
    p_current public.generation_status, p_step integer, p_status text, p_has_documents boolean
) RETURNS public.generation_status
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE
        WHEN p_status = 'failed' THEN 'failed'::public.generation_status
        WHEN p_status = 'pending' THEN p_current
        WHEN p_status = 'completed' AND p_step = 5 THEN 'completed'::public.generation_status
        WHEN p_status = 'completed'
             AND p_current > private.step_status(p_step, p_has_documents)
             AND p_current < 'completed'::public.generation_status THEN p_current
        ELSE private.step_status(p_step, p_has_documents)
    END
$$;

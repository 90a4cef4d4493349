-- Webhook delivery: an outbox row per real change of a course that has a webhook, written by
-- trigger in the same transaction as the change, and drained by the worker's dispatchers
-- (webhooks/). The run never waits for a receiver and writes no history for delivery.

-- A course's webhook belongs to its run: the claim (the UPDATE that records a new run id) takes
-- it from the transaction-local setting `app.webhook_url`, which the claim activity sets to the
-- run's webhookUrl; a claim without one clears the previous run's.
CREATE FUNCTION private.claim_webhook_url() RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    NEW.webhook_url := nullif(pg_catalog.current_setting('app.webhook_url', true), '');
    RETURN NEW;
END
$$;

CREATE TRIGGER courses_claim_webhook_url
    BEFORE UPDATE OF run_id ON public.courses
    FOR EACH ROW WHEN (NEW.run_id IS DISTINCT FROM OLD.run_id)
    EXECUTE FUNCTION private.claim_webhook_url();

-- One row per event to deliver. `webhook_id` is the Standard Webhooks message id: made once,
-- sent unchanged on every attempt so receivers can deduplicate. `payload` is the JSON body.
-- No foreign keys: events about a deleted course are still delivered.
CREATE TABLE public.webhook_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id      text NOT NULL,
    course_id       uuid NOT NULL,
    user_id         uuid NOT NULL,
    run_id          text,
    seq             bigint NOT NULL,
    event_type      text NOT NULL CHECK (event_type IN (
                        'generation.progress', 'generation.completed', 'generation.failed',
                        'generation.cancelled')),
    url             text NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed', 'superseded')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    leased_until    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    finished_at     timestamptz
);

CREATE INDEX webhook_outbox_due_idx ON public.webhook_outbox (next_attempt_at, id)
    WHERE status = 'pending';
CREATE INDEX webhook_outbox_course_idx ON public.webhook_outbox (course_id, id)
    WHERE status = 'pending';
CREATE INDEX webhook_outbox_finished_idx ON public.webhook_outbox (finished_at)
    WHERE status IN ('delivered', 'superseded');

COMMENT ON TABLE public.webhook_outbox IS
    'Webhook events of course progress; pending until delivered, superseded or failed.';

ALTER TABLE public.webhook_outbox ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.webhook_outbox FROM PUBLIC, anon, authenticated, service_role;

CREATE FUNCTION private.enqueue_webhook() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    kind text := CASE NEW.generation_status
        WHEN 'completed' THEN 'generation.completed'
        WHEN 'failed' THEN 'generation.failed'
        WHEN 'cancelled' THEN 'generation.cancelled'
        ELSE 'generation.progress' END;
BEGIN
    INSERT INTO public.webhook_outbox
        (webhook_id, course_id, user_id, run_id, seq, event_type, url, payload)
    VALUES (
        'msg_' || pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', ''),
        NEW.id, NEW.user_id, NEW.run_id, NEW.progress_seq, kind, NEW.webhook_url,
        pg_catalog.jsonb_build_object(
            'type', kind, 'courseId', NEW.id, 'runId', NEW.run_id, 'seq', NEW.progress_seq,
            'generationStatus', NEW.generation_status,
            'currentStep', NEW.generation_progress -> 'current_step',
            'percentage', NEW.generation_progress -> 'percentage',
            'message', NEW.generation_progress -> 'message',
            'occurredAt', private.iso_now()));
    PERFORM pg_catalog.pg_notify('webhook_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER courses_enqueue_webhook
    AFTER UPDATE OF progress_seq ON public.courses
    FOR EACH ROW
    WHEN (NEW.progress_seq IS DISTINCT FROM OLD.progress_seq AND NEW.webhook_url IS NOT NULL)
    EXECUTE FUNCTION private.enqueue_webhook();

REVOKE ALL ON FUNCTION private.claim_webhook_url() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.enqueue_webhook() FROM PUBLIC;

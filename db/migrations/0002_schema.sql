-- Tables and enums of the course generation schema.

CREATE TYPE public.generation_status AS ENUM (
    'pending', 'initializing', 'processing_documents', 'analyzing_task',
    'generating_structure', 'generating_content', 'finalizing',
    'completed', 'failed', 'cancelled'
);

CREATE TYPE public.metric_event_type AS ENUM (
    'job_rollback', 'orphaned_job_recovery', 'concurrency_limit_hit', 'worker_timeout',
    'rpc_retry_exhausted', 'duplicate_job_detected'
);

CREATE TYPE public.metric_severity AS ENUM ('info', 'warn', 'error', 'fatal');

CREATE TABLE public.user_profiles (
    id         uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    tier       text NOT NULL DEFAULT 'FREE'
               CHECK (upper(tier) IN ('FREE', 'BASIC', 'STANDARD', 'TRIAL', 'PREMIUM')),
    role       text NOT NULL DEFAULT 'user',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.courses (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                 uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    title                   text NOT NULL,
    language                text,
    style                   text,
    course_description      text,
    target_audience         text,
    difficulty              text,
    lesson_duration_minutes integer,
    learning_outcomes       text,
    estimated_lessons       integer,
    estimated_sections      integer,
    content_strategy        text,
    output_formats          text[],
    generation_status       public.generation_status,
    generation_progress     jsonb,
    generation_started_at   timestamptz,
    generation_completed_at timestamptz,
    last_progress_update    timestamptz,
    webhook_url             text,
    error_message           text,
    error_details           jsonb,
    workflow_id             text,
    run_id                  text,
    progress_seq            bigint NOT NULL DEFAULT 0,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX courses_user_id_idx ON public.courses (user_id);
CREATE INDEX courses_generation_status_idx ON public.courses (generation_status)
    WHERE generation_status IS NOT NULL;
CREATE INDEX courses_active_generation_idx
    ON public.courses (generation_status, last_progress_update)
    WHERE generation_status NOT IN ('completed', 'failed', 'cancelled');

-- No foreign keys on user_id/course_id: metrics about deleted rows are kept and never fail.
CREATE TABLE public.system_metrics (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_type  public.metric_event_type NOT NULL,
    severity    public.metric_severity NOT NULL,
    user_id     uuid,
    course_id   uuid,
    job_id      text,
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    "timestamp" timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_system_metrics_event_type ON public.system_metrics (event_type);
CREATE INDEX idx_system_metrics_severity ON public.system_metrics (severity);
CREATE INDEX idx_system_metrics_timestamp ON public.system_metrics ("timestamp" DESC);
CREATE INDEX idx_system_metrics_course ON public.system_metrics (course_id)
    WHERE course_id IS NOT NULL;

COMMENT ON TABLE public.system_metrics IS
    'Critical orchestration events (rollbacks, limits, timeouts); append-only.';

CREATE TABLE public.generation_status_history (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    course_id      uuid NOT NULL REFERENCES public.courses (id) ON DELETE CASCADE,
    old_status     public.generation_status,
    new_status     public.generation_status NOT NULL,
    changed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    trigger_source text NOT NULL DEFAULT 'system',
    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX generation_status_history_course_idx
    ON public.generation_status_history (course_id, changed_at DESC);

-- The generation_status machine (see docs/architecture.md), enforced by trigger, with its history.
-- Helpers live in schema `private`, which the API roles cannot use.

CREATE SCHEMA IF NOT EXISTS private;
REVOKE ALL ON SCHEMA private FROM PUBLIC;

CREATE FUNCTION private.allowed_status_targets(p_from public.generation_status)
RETURNS public.generation_status[]
LANGUAGE sql IMMUTABLE
SET search_path = ''
AS $$
    SELECT CASE p_from
        WHEN 'pending' THEN '{initializing,failed,cancelled}'
        WHEN 'initializing' THEN '{processing_documents,analyzing_task,failed,cancelled}'
        WHEN 'processing_documents' THEN '{generating_structure,failed,cancelled}'
        WHEN 'analyzing_task' THEN '{generating_structure,failed,cancelled}'
        WHEN 'generating_structure' THEN '{generating_content,failed,cancelled}'
        WHEN 'generating_content' THEN '{finalizing,failed,cancelled}'
        WHEN 'finalizing' THEN '{completed,failed,cancelled}'
        ELSE '{pending}'  -- completed, failed, cancelled: a new run claims the course
    END::public.generation_status[]
$$;

-- NULL -> any is the first write; same -> same never reaches here (trigger WHEN clause).
CREATE FUNCTION private.validate_generation_status() RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    allowed public.generation_status[];
BEGIN
    IF OLD.generation_status IS NULL THEN
        RETURN NEW;
    END IF;
    allowed := private.allowed_status_targets(OLD.generation_status);
    IF NEW.generation_status IS NULL OR NOT NEW.generation_status = ANY (allowed) THEN
        RAISE EXCEPTION 'invalid generation_status transition: % -> % (allowed from %: %)',
            OLD.generation_status, coalesce(NEW.generation_status::text, 'NULL'),
            OLD.generation_status, array_to_string(allowed, ', ')
            USING ERRCODE = 'P0001',
                  HINT = 'allowed targets: ' || array_to_string(allowed, ', ');
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER courses_validate_generation_status
    BEFORE UPDATE OF generation_status ON public.courses
    FOR EACH ROW
    WHEN (OLD.generation_status IS DISTINCT FROM NEW.generation_status)
    EXECUTE FUNCTION private.validate_generation_status();

-- SECURITY DEFINER: the history row is written whoever changed the course.
CREATE FUNCTION private.log_generation_status() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    INSERT INTO public.generation_status_history
        (course_id, old_status, new_status, trigger_source, metadata)
    VALUES (
        NEW.id,
        CASE WHEN TG_OP = 'UPDATE' THEN OLD.generation_status END,
        NEW.generation_status,
        coalesce(nullif(current_setting('app.trigger_source', true), ''), 'system'),
        jsonb_build_object(
            'workflow_id', NEW.workflow_id,
            'run_id', NEW.run_id,
            'progress_seq', NEW.progress_seq,
            'current_step', NEW.generation_progress -> 'current_step',
            'error_message', NEW.error_message
        )
    );
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION private.log_generation_status() FROM PUBLIC;

CREATE TRIGGER courses_log_generation_status
    AFTER UPDATE OF generation_status ON public.courses
    FOR EACH ROW
    WHEN (OLD.generation_status IS DISTINCT FROM NEW.generation_status)
    EXECUTE FUNCTION private.log_generation_status();

CREATE TRIGGER courses_log_initial_generation_status
    AFTER INSERT ON public.courses
    FOR EACH ROW
    WHEN (NEW.generation_status IS NOT NULL)
    EXECUTE FUNCTION private.log_generation_status();

CREATE FUNCTION private.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END
$$;

CREATE TRIGGER courses_touch_updated_at
    BEFORE UPDATE ON public.courses
    FOR EACH ROW EXECUTE FUNCTION private.touch_updated_at();

CREATE TRIGGER user_profiles_touch_updated_at
    BEFORE UPDATE ON public.user_profiles
    FOR EACH ROW EXECUTE FUNCTION private.touch_updated_at();

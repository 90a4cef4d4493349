-- The status machine's refusal gets its own SQLSTATE, CG001, so callers match the code and
-- never the message text. Same check, same message and hint as before.

CREATE OR REPLACE FUNCTION private.validate_generation_status() RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    allowed public.generation_status[] := private.allowed_status_targets(OLD.generation_status);
    targets text := pg_catalog.array_to_string(allowed, ', ');
BEGIN
    IF OLD.generation_status IS NOT NULL
       AND (NEW.generation_status IS NULL OR NOT NEW.generation_status = ANY (allowed)) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CG001',
            MESSAGE = pg_catalog.format(
                'invalid generation_status transition: %s -> %s (allowed from %s: %s)',
                OLD.generation_status, coalesce(NEW.generation_status::text, 'NULL'),
                OLD.generation_status, targets),
            HINT = 'allowed targets: ' || targets;
    END IF;
    RETURN NEW;
END
$$;

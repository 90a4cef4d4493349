-- Row-level security. Supabase's default grants give anon/authenticated ALL on
-- public tables; here they are narrowed, and policies restrict rows. service_role bypasses RLS.

ALTER TABLE public.courses ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.user_profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.system_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.generation_status_history ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON public.courses, public.user_profiles, public.system_metrics,
              public.generation_status_history, public.schema_migrations
    FROM anon, authenticated;
REVOKE ALL ON public.system_metrics, public.generation_status_history, public.schema_migrations
    FROM service_role;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM anon, authenticated;

-- courses: owners only; the generation machinery's columns are written by the functions alone.
GRANT SELECT, DELETE ON public.courses TO authenticated;
GRANT INSERT (id, user_id, title, language, style, course_description, target_audience,
              difficulty, lesson_duration_minutes, learning_outcomes, estimated_lessons,
              estimated_sections, content_strategy, output_formats, webhook_url)
    ON public.courses TO authenticated;
GRANT UPDATE (title, language, style, course_description, target_audience, difficulty,
              lesson_duration_minutes, learning_outcomes, estimated_lessons, estimated_sections,
              content_strategy, output_formats, webhook_url)
    ON public.courses TO authenticated;

CREATE POLICY courses_owner_select ON public.courses FOR SELECT TO authenticated
    USING ((SELECT auth.uid()) = user_id);
CREATE POLICY courses_owner_insert ON public.courses FOR INSERT TO authenticated
    WITH CHECK ((SELECT auth.uid()) = user_id);
CREATE POLICY courses_owner_update ON public.courses FOR UPDATE TO authenticated
    USING ((SELECT auth.uid()) = user_id) WITH CHECK ((SELECT auth.uid()) = user_id);
CREATE POLICY courses_owner_delete ON public.courses FOR DELETE TO authenticated
    USING ((SELECT auth.uid()) = user_id);

-- user_profiles: a user reads their own; tier and role are written by the service only.
GRANT SELECT ON public.user_profiles TO authenticated;
CREATE POLICY user_profiles_own_select ON public.user_profiles FOR SELECT TO authenticated
    USING ((SELECT auth.uid()) = id);

-- system_metrics: insert-only for the service, readable by admins.
GRANT INSERT ON public.system_metrics TO service_role;
GRANT SELECT ON public.system_metrics TO authenticated;
CREATE POLICY system_metrics_service_insert ON public.system_metrics FOR INSERT TO service_role
    WITH CHECK (true);
CREATE POLICY system_metrics_admin_read ON public.system_metrics FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.user_profiles p
                    WHERE p.id = (SELECT auth.uid()) AND p.role = 'admin'));

-- generation_status_history: readable by the course owner; written by trigger only.
GRANT SELECT ON public.generation_status_history TO authenticated, service_role;
CREATE POLICY generation_status_history_owner_read ON public.generation_status_history
    FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.courses c
                    WHERE c.id = course_id AND c.user_id = (SELECT auth.uid())));

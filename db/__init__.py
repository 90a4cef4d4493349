"""PostgreSQL: migrations, the course-progress functions and the repository (DESIGN §3).

- `db.migrate`    the migration runner (`python -m db migrate|status`) and the start-up check.
- `db.pool`       `create_pool()`: asyncpg pool with json/jsonb as Python values.
- `db.repository` `CourseRepository`: one short method per named query of `db/queries.sql`.
- `db/migrations` numbered SQL files, never edited once applied anywhere; add a new one.
"""

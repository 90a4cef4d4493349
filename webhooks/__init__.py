"""Signed webhooks of course progress, delivered from the outbox by the worker's dispatchers.

`signing` derives each user's secret and signs per Standard Webhooks; `addresses` decides where
a URL may be sent (public addresses only, unless allow-listed); `sender` POSTs one event to
the checked address; `dispatcher` drains the outbox in order per course, with retries.
"""

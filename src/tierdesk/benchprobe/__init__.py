"""A bare endpoint for bench/: one row inserted through Django and django-ninja.

Installed only when TIERDESK_BENCH_ENDPOINTS=1; never part of a normal deployment.
"""

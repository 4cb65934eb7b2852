"""HTTP: the dashboard page, ``/health`` and ``/metrics``."""

"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from pg_support import any_fresh_pg_url as any_fresh_pg_url
from pg_support import debian_pg_server as debian_pg_server
from pg_support import debian_pg_url as debian_pg_url
from pg_support import fresh_debian_pg_url as fresh_debian_pg_url
from pg_support import fresh_pg_url as fresh_pg_url
from pg_support import pg_server as pg_server
from pg_support import pg_tmp_path as pg_tmp_path
from pg_support import pg_url as pg_url
from webhook_support import receiver as receiver

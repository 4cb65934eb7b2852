"""PostgreSQL: the database, the embedded server, migrations and the stores built on them."""

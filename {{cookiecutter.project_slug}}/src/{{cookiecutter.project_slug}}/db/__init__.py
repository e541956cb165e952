"""The database: engine and sessions, tables, migrations, and the generation log."""

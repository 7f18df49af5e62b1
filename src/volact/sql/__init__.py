"""What every SQL store shares (the host's SQLite and PostgreSQL stores, the vendor store).

- :mod:`volact.sql.migrations`: one migration runner over the ``.sql`` files in ``schemas/``;
- :mod:`volact.sql.errors`: one mapping of sqlite3 and psycopg failures to plain messages;
- :mod:`volact.sql.urls`: database URL parsing and password redaction;
- :mod:`volact.sql.locks`: PostgreSQL advisory lock keys;
- :mod:`volact.sql.sqlite_writer` and :mod:`volact.sql.checkpointer`: SQLite's one writer
  thread with group commit, and the WAL checkpointer beside it.

Nothing here knows the licensing domain. psycopg is imported only by what needs it.
"""

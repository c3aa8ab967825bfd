"""Hand-written SQL for the few hot paths where building queries through the ORM is most of the cost.

The rating loop's submit-and-next round trip is about ten short statements; composing each one through the
ORM's query compiler cost ~6 ms of CPU per round trip, more than the database spent running them
(BENCHMARKS.md, "Rating loop"). These helpers send the same statements as text, composed once per process,
and turn the rows back into model instances exactly as the ORM would: the same column converters (so
datetimes from SQLite and JSON from PostgreSQL arrive as Python values), and unread fields deferred (reading
one later loads it, as with `.only()`).

The SQL is portable between PostgreSQL and SQLite >= 3.35 (RETURNING); callers add row locks only where
the database has them (`connection.features`).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache

from django.db import connection
from django.db.models import Model
from psycopg import ClientCursor


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def table(model: type[Model]) -> str:
    return quote(model._meta.db_table)


class Columns:
    """Some columns of one model under a table alias: the SELECT list, and the instance built from a row."""

    def __init__(self, model: type[Model], alias: str, fields: Sequence[str] | None = None):
        self.model = model
        chosen = ([model._meta.get_field(name) for name in fields] if fields is not None
                  else list(model._meta.concrete_fields))
        self.attnames = [field.attname for field in chosen]
        prefix = f"{alias}." if alias else ""  # no alias: SQLite's RETURNING takes bare column names only
        self.sql = ", ".join(prefix + quote(field.column) for field in chosen)
        self.width = len(chosen)
        self._converters = []
        for field in chosen:
            column = field.get_col(alias)
            # The order the ORM's compiler applies them in: the backend's, then the field's own.
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            self._converters.append([(converter, column) for converter in found])

    def build(self, row: Sequence, start: int = 0) -> Model:
        values = list(row[start:start + self.width])
        for index, converters in enumerate(self._converters):
            for converter, column in converters:
                values[index] = converter(values[index], column, connection)
        return self.model.from_db(connection.alias, self.attnames, values)


@cache
def columns(model: type[Model], alias: str, fields: tuple[str, ...] | None = None, vendor: str = "") -> Columns:
    """`Columns`, made once per process (and database vendor: converters differ)."""
    return Columns(model, alias, fields)


def cols(model: type[Model], alias: str, fields: Iterable[str] | None = None) -> Columns:
    return columns(model, alias, tuple(fields) if fields is not None else None, connection.vendor)


# Several models read in one statement: (model, table alias, fields or None for all), in SELECT order.
Spec = tuple[type[Model], str, Sequence[str] | None]


def select_list(specs: Sequence[Spec]) -> str:
    return ", ".join(cols(*spec).sql for spec in specs)


def build_all(specs: Sequence[Spec], row: Sequence) -> list[Model]:
    """One instance per spec, each from its slice of a row selected with `select_list(specs)`."""
    built, start = [], 0
    for spec in specs:
        columns = cols(*spec)
        built.append(columns.build(row, start))
        start += columns.width
    return built


def fetchone(sql: str, params: Sequence) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def execute(sql: str, params: Sequence) -> int:
    """Run a statement; the number of rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def execute_together(statements: Sequence[tuple[str, Sequence]]) -> tuple | None:
    """Run statements in order, in one network round trip on PostgreSQL; the first row of the last one
    (e.g. an INSERT's RETURNING).

    Every round trip to the database costs ~0.1 ms of CPU on each side plus two context switches, and a
    sync gunicorn worker waits through each. PostgreSQL runs several statements sent as one text (bound
    on the client, since a prepared statement holds only one); SQLite runs them one by one. Use it for
    statements whose row counts nobody reads: only the last one's result comes back.
    """
    if len(statements) == 1 or connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
            return cursor.fetchone() if cursor.description else None
    connection.ensure_connection()
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    with wrap(ClientCursor(connection.connection)) as cursor:
        cursor.execute(";\n".join(sql for sql, _ in statements), [value for _, params in statements for value in params])
        raw = cursor.cursor
        while raw.nextset():  # to the last statement's result
            pass
        return raw.fetchone() if raw.description else None


@cache
def _insert_sql(model: type[Model], attnames: tuple[str, ...], vendor: str) -> str:
    fields = [model._meta.get_field(name) for name in attnames]
    return (f"INSERT INTO {table(model)} ({', '.join(quote(field.column) for field in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(model._meta.pk.column)}")


def insert_statement(model: type[Model], values: dict) -> tuple[str, list]:
    """INSERT one row from {attname: value} (values prepared as `save()` would), RETURNING its pk."""
    sql = _insert_sql(model, tuple(values), connection.vendor)
    return sql, [model._meta.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()]


def insert(model: type[Model], values: dict) -> int:
    """Insert one row from {attname: value} -> its pk."""
    return fetchone(*insert_statement(model, values))[0]


def prep(model: type[Model], attname: str, value):
    """A value for a hand-written statement, prepared as `save()` would (datetimes on SQLite, JSON...)."""
    return model._meta.get_field(attname).get_db_prep_save(value, connection)

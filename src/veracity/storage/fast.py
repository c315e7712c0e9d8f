"""Hot read statements run straight on the SQLite driver, compiled once.

SQLAlchemy's Core spends, per execution, several times what SQLite spends on a one-row indexed
lookup: the statement's cache key, the execution context, parameter and row processing. The
labelling queue (next task, submit) runs a dozen such lookups per label, so on SQLite it runs its
SELECT statements through :class:`FastSelect`: the statement is compiled once per dialect with
SQLAlchemy itself, and every execution binds the parameters with the column types' own bind
processors, runs the SQL on the driver's cursor inside the connection's current transaction and
builds rows with the types' own result processors. On any other database, or for a statement
that cannot take this path (expanding ``IN`` parameters), it is a plain ``Connection.execute``.

Only SELECT statements: an INSERT or UPDATE would miss the Python-side column defaults and
``onupdate`` values that Core fills in.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Dialect

__all__ = ["FastSelect"]


class _Compiled:
    __slots__ = ("binds", "row", "sql")

    def __init__(self, stmt: Select[Any], dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        if compiled.positiontup is None or any(b.expanding for b in compiled.binds.values()):
            raise ValueError("FastSelect needs a positional, non-expanding statement")
        self.sql: str = compiled.string
        self.binds: list[tuple[str, Any, Callable[[Any], Any] | None]] = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            self.binds.append((bind.key, bind.value, bind.type.dialect_impl(dialect).bind_processor(dialect)))
        keys = list(stmt.selected_columns.keys())
        processors = [col.type.dialect_impl(dialect).result_processor(dialect, None) for col in stmt.selected_columns]
        cls = namedtuple("FastRow", keys, rename=True)  # type: ignore[misc]
        if any(p is not None for p in processors):
            pairs = list(zip(processors, range(len(keys)), strict=True))

            def row(raw: tuple[Any, ...]) -> Any:
                return cls._make([raw[i] if p is None or raw[i] is None else p(raw[i]) for p, i in pairs])
        else:
            row = cls._make
        self.row = row


class FastSelect:
    """A SELECT run on the SQLite driver directly (see the module docstring); ``first`` and
    ``all`` return rows with attribute and index access, as Core's rows do."""

    __slots__ = ("_compiled", "stmt")

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt
        self._compiled: _Compiled | None = None

    def _prepared(self, conn: Connection) -> _Compiled | None:
        if conn.dialect.name != "sqlite":
            return None
        if self._compiled is None:
            self._compiled = _Compiled(self.stmt, conn.dialect)
        return self._compiled

    def _run(self, conn: Connection, c: _Compiled, params: Mapping[str, Any]) -> Any:
        args = []
        for key, default, process in c.binds:
            value = params.get(key, default)
            args.append(process(value) if process is not None and value is not None else value)
        return conn.connection.dbapi_connection.execute(c.sql, args)  # type: ignore[union-attr]

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        c = self._prepared(conn)
        if c is None:
            return conn.execute(self.stmt, dict(params)).first()
        raw = self._run(conn, c, params).fetchone()
        return None if raw is None else c.row(raw)

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        c = self._prepared(conn)
        if c is None:
            return list(conn.execute(self.stmt, dict(params)).all())
        return [c.row(raw) for raw in self._run(conn, c, params).fetchall()]

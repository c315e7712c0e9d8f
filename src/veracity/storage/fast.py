"""Hot statements run straight on the SQLite driver, compiled once.

SQLAlchemy's Core spends, per execution, several times what SQLite spends on a one-row indexed
lookup: the statement's cache key, the execution context, parameter and row processing. The
labelling queue (next task, submit) runs a dozen such lookups per label, so on SQLite it runs its
SELECT statements through :class:`FastSelect` and its UPDATE statements through
:class:`FastUpdate`: the statement is compiled once per dialect with SQLAlchemy itself, and every
execution binds the parameters with the column types' own bind processors, runs the SQL on the
driver's cursor inside the connection's current transaction and builds rows with the types' own
result processors. On any other database it is a plain ``Connection.execute``. Statements with
expanding ``IN`` parameters are refused when compiled.

No INSERT: it would miss the Python-side column defaults that Core fills in. An UPDATE is accepted
only on a table without ``onupdate`` columns, and it sets exactly the columns its ``values()`` name.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Select, Update
from sqlalchemy.engine import Dialect

__all__ = ["FastSelect", "FastUpdate"]


class _Compiled:
    __slots__ = ("binds", "row", "sql")

    def __init__(self, stmt: Select[Any] | Update, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        if compiled.positiontup is None or any(b.expanding for b in compiled.binds.values()):
            raise ValueError("storage.fast needs a positional, non-expanding statement")
        self.sql: str = compiled.string
        self.binds: list[tuple[str, Any, Callable[[Any], Any] | None]] = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            self.binds.append((bind.key, bind.value, bind.type.dialect_impl(dialect).bind_processor(dialect)))
        self.row: Callable[[tuple[Any, ...]], Any] = tuple
        if not isinstance(stmt, Select):
            return
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


def _bind(c: _Compiled, params: Mapping[str, Any]) -> list[Any]:
    args = []
    for key, default, process in c.binds:
        value = params.get(key, default)
        args.append(process(value) if process is not None and value is not None else value)
    return args


class _Fast:
    """A statement compiled on first use on SQLite and run on the driver's cursor."""

    __slots__ = ("_compiled", "stmt")

    def __init__(self, stmt: Select[Any] | Update) -> None:
        self.stmt = stmt
        self._compiled: _Compiled | None = None

    def _driver(self, conn: Connection, params: Mapping[str, Any]) -> tuple[_Compiled, Any] | None:
        """The compiled form and the driver's cursor after running it, or None off SQLite."""
        if conn.dialect.name != "sqlite":
            return None
        if self._compiled is None:
            self._compiled = _Compiled(self.stmt, conn.dialect)
        c = self._compiled
        return c, conn.connection.dbapi_connection.execute(c.sql, _bind(c, params))  # type: ignore[union-attr]


class FastSelect(_Fast):
    """A SELECT run on the SQLite driver directly (see the module docstring); ``first`` and
    ``all`` return rows with attribute and index access, as Core's rows do."""

    __slots__ = ()

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        ran = self._driver(conn, params)
        if ran is None:
            return conn.execute(self.stmt, dict(params)).first()
        c, cursor = ran
        raw = cursor.fetchone()
        return None if raw is None else c.row(raw)

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        ran = self._driver(conn, params)
        if ran is None:
            return list(conn.execute(self.stmt, dict(params)).all())
        c, cursor = ran
        return [c.row(raw) for raw in cursor.fetchall()]


class FastUpdate(_Fast):
    """An UPDATE run on the SQLite driver directly; :meth:`run` returns the number of rows matched."""

    __slots__ = ()

    def __init__(self, stmt: Update) -> None:
        table = stmt.table
        columns = getattr(table, "c", ())
        if any(col.onupdate is not None or col.server_onupdate is not None for col in columns):
            raise ValueError(f"FastUpdate: table {table} has onupdate columns that Core would set")
        super().__init__(stmt)

    def run(self, conn: Connection, params: Mapping[str, Any]) -> int:
        ran = self._driver(conn, params)
        if ran is None:
            return int(conn.execute(self.stmt, dict(params)).rowcount)
        return int(ran[1].rowcount)

"""Make the embedded DynamoDB's ``TransactWriteItems`` cost what the transaction touches, not the table.

moto backs up every table a transaction names with ``copy.deepcopy`` before applying it, so each
transaction costs O(table size): in an emulator holding 10,000 connections (30,000 items) a single
``subscribe`` took seconds, and concurrent subscribes timed out. DynamoDB's own cost is per item.

:func:`install` wraps moto's ``DynamoDBBackend.transact_write_items``: it snapshots only the items the
transaction names, lets moto apply it with the whole-table backup turned into a no-op, and on failure
puts those items back itself, so an all-or-nothing transaction stays all-or-nothing. The embedded
server runs DynamoDB requests one at a time (``services.py``), so no other request sees the window.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models.table import Table

_Snapshot = list[tuple[str, dict[str, Any], dict[str, Any] | None]]


def _key_of(table: Table, op_type: str, op: dict[str, Any]) -> dict[str, Any] | None:
    attrs = op.get("Item") if op_type == "Put" else op.get("Key")
    if not isinstance(attrs, dict) or table.hash_key_attr not in attrs:
        return None  # moto itself refuses it, before changing anything
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        if table.range_key_attr not in attrs:
            return None
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> _Snapshot:
    """The current attributes (or ``None``) of every item the transaction names."""
    found: _Snapshot = []
    for entry in transact_items:
        if not isinstance(entry, dict) or len(entry) != 1:
            continue
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
        if table is None:
            continue
        key = _key_of(table, op_type, op)
        if key is None:
            continue
        item = backend.get_item(op["TableName"], key)
        found.append((op["TableName"], key, None if item is None else item.to_json()["Attributes"]))
    return found


def _restore(backend: Any, snapshot: _Snapshot) -> None:
    for table_name, key, attrs in reversed(snapshot):
        if attrs is None:
            backend.delete_item(table_name, key)
        else:
            backend.put_item(table_name, copy.deepcopy(attrs))


def _deepcopy_except_tables(value: Any, memo: dict[int, Any] | None = None) -> Any:
    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


@contextmanager
def _no_whole_table_backup() -> Iterator[None]:
    """While moto's transaction runs, its ``copy.deepcopy(table)`` returns the table itself."""
    original = dynamodb_models.copy  # type: ignore[attr-defined]
    dynamodb_models.copy = SimpleNamespace(deepcopy=_deepcopy_except_tables, copy=copy.copy)  # type: ignore[attr-defined,assignment]
    try:
        yield
    finally:
        dynamodb_models.copy = original  # type: ignore[attr-defined]


def install() -> None:
    """Patch moto (idempotent; process-wide, as moto's backends are)."""
    backend_class: Any = dynamodb_models.DynamoDBBackend
    current = backend_class.transact_write_items
    if getattr(current, "_lambdacast_per_item", False):
        return

    @functools.wraps(current)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        snapshot = _snapshot(self, transact_items)
        try:
            with _no_whole_table_backup():
                return current(self, transact_items)
        except Exception:
            _restore(self, snapshot)
            raise

    wrapped: Callable[..., Any] = transact_write_items
    wrapped._lambdacast_per_item = True  # type: ignore[attr-defined]
    backend_class.transact_write_items = wrapped

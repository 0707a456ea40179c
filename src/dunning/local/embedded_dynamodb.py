"""DynamoDB Queries in the embedded AWS read the partition they ask for, not the whole table.

moto answers every Query by sorting every item of the table (`Table.all_items`) and then keeping those of
the queried partition, so a simulation's cost grew with the square of its ledger: at 1,000 accounts that
sort was 40% of a `dunning simulate`. DynamoDB itself reads one partition. `partitioned_queries` keeps
moto's Query as it is (its ordering, Limit and ExclusiveStartKey, ScanIndexForward, key conditions, filters
and projections) and only changes what `all_items` hands it during that Query: the items of the queried
partition, in the order `all_items` would have listed them. Every item left out is one moto's Query would
have dropped (its partition key differs from the one queried), so the answer is moto's own.

- Base table: moto already keeps the items by partition key (`Table.items`).
- Secondary index: a map from the index's partition key value to the keys of the items that have it, built
  on the index's first Query and kept current from then on. An item's attributes change only through
  `Table.put_item` (a new item), `Table.delete_item` and `DynamoDBBackend.update_item` (in place), which
  batch writes, transactions and PartiQL also go through: each marks the item's key, and the next Query of
  the index refiles the marked items before it reads the map. A table moto puts in another's place (a
  transaction rolled back, a restore) is another object, with maps of its own.

Queries without an equality on the partition key (which moto would answer anyway, or refuse) and keys
that cannot be hashed go to moto unchanged. Every internal used is listed in `dunning.local.moto_internals`.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dunning.local import moto_internals as internals

# An item's key: its partition key value and its sort key value (None on a table without a sort key).
ItemKey = tuple[Any, Any]

# Index maps and marks are shared by every thread that writes or queries (the simulator's executions run in
# threads of their own): one lock for both.
_LOCK = threading.Lock()
_indexes: weakref.WeakKeyDictionary[Any, dict[str, _IndexPartitions]] = weakref.WeakKeyDictionary()
# What `all_items` answers, for the table whose Query is running on this thread.
_narrowed = threading.local()


@dataclass
class _IndexPartitions:
    """The items of one table's secondary index by the value of the index's partition key."""

    attribute: str
    by_value: dict[Any, dict[ItemKey, None]] = field(default_factory=dict)  # insertion-ordered sets
    filed_under: dict[ItemKey, Any] = field(default_factory=dict)
    # Items whose value could not be hashed: handed to every Query (moto's own comparison drops them).
    loose: dict[ItemKey, None] = field(default_factory=dict)
    marked: set[ItemKey] = field(default_factory=set)

    @classmethod
    def build(cls, table: Any, attribute: str) -> _IndexPartitions:
        partitions = cls(attribute)
        for key, item in _table_items(table):
            partitions.file(key, item)
        return partitions

    def file(self, key: ItemKey, item: Any) -> None:
        """File `item` (None: no longer in the table) under its current value, wherever it was before."""
        self._unfile(key)
        value = None if item is None else item.attrs.get(self.attribute)
        if value is None:
            return  # not in the index: moto's Query skips an item without the attribute
        try:
            self.by_value.setdefault(value, {})[key] = None
        except TypeError:
            self.loose[key] = None
            value = _LOOSE
        self.filed_under[key] = value

    def _unfile(self, key: ItemKey) -> None:
        value = self.filed_under.pop(key, None)
        if value is _LOOSE:
            self.loose.pop(key, None)
        elif value is not None:
            keys = self.by_value[value]
            keys.pop(key, None)
            if not keys:
                del self.by_value[value]

    def refile_marked(self, table: Any) -> None:
        for key in self.marked:
            self.file(key, _item_at(table, key))
        self.marked.clear()

    def keys_with(self, value: Any) -> list[ItemKey]:
        return [*self.by_value.get(value, ()), *self.loose]


_LOOSE = object()


def _table_items(table: Any) -> Iterator[tuple[ItemKey, Any]]:
    for hash_key, partition in table.items.items():
        if isinstance(partition, dict):
            for range_key, item in partition.items():
                yield (hash_key, range_key), item
        else:
            yield (hash_key, None), partition


def _item_at(table: Any, key: ItemKey) -> Any:
    # .get: `Table.items` is a defaultdict, and a lookup must not add an empty partition to it.
    partition = table.items.get(key[0])
    if isinstance(partition, dict):
        return partition.get(key[1])
    return partition


def _partition(table: Any, hash_key: Any) -> list[Any]:
    partition = table.items.get(hash_key)
    if partition is None:
        return []
    return list(partition.values()) if isinstance(partition, dict) else [partition]


def _in_table_order(items: list[Any]) -> list[Any]:
    """`items` in the order `Table.all_items` lists a table (the same key)."""
    return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


def _mark(table: Any, key: ItemKey) -> None:
    with _LOCK:
        for partitions in _indexes.get(table, {}).values():
            partitions.marked.add(key)


def _forget(table: Any) -> None:
    with _LOCK:
        _indexes.pop(table, None)


def _index_candidates(table: Any, index: Any, attribute: str, value: Any) -> list[Any]:
    with _LOCK:
        maps = _indexes.setdefault(table, {})
        partitions = maps.get(index.name)
        if partitions is None or partitions.attribute != attribute:
            partitions = maps[index.name] = _IndexPartitions.build(table, attribute)
        else:
            partitions.refile_marked(table)
        items = [_item_at(table, key) for key in partitions.keys_with(value)]
    return [item for item in items if item is not None]


def _candidates(table: Any, arguments: dict[str, Any]) -> list[Any] | None:
    """The items moto's Query needs to see (None: it needs the whole table)."""
    index_name = arguments.get("index_name")
    if not index_name:
        hash_key = arguments.get("hash_key")
        if hash_key is None:
            return None
        return _in_table_order(_partition(table, hash_key))
    index = next((index for index in table.all_indexes() if index.name == index_name), None)
    if index is None:
        return None  # moto refuses the Query, naming the indexes there are
    hash_attributes = [key["AttributeName"] for key in index.schema if key["KeyType"] == "HASH"]
    conditions = dict(arguments.get("hash_key_conditions") or ())
    if not hash_attributes or hash_attributes[0] not in conditions:
        return None
    value = conditions[hash_attributes[0]]
    try:
        hash(value)
    except TypeError:
        return None
    return _in_table_order(_index_candidates(table, index, hash_attributes[0], value))


def _narrowing_query(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        candidates = _candidates(self, signature.bind(self, *args, **kwargs).arguments)
        if candidates is None:
            return original(self, *args, **kwargs)
        _narrowed.table, _narrowed.items = self, candidates
        try:
            return original(self, *args, **kwargs)
        finally:
            _narrowed.table = _narrowed.items = None

    return query


def _narrowed_all_items(original: Callable[..., Any]) -> Callable[..., Any]:
    def all_items(self: Any) -> Any:
        if getattr(_narrowed, "table", None) is self:
            return list(_narrowed.items)
        return original(self)

    return all_items


def _put_item_marking(original: Callable[..., Any]) -> Callable[..., Any]:
    def put_item(self: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, item_attrs, *args, **kwargs)
        finally:
            key = _key_of(self, item_attrs)
            if key is None:
                _forget(self)
            else:
                _mark(self, key)

    return put_item


def _delete_item_marking(original: Callable[..., Any]) -> Callable[..., Any]:
    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        try:
            return original(self, hash_key, range_key)
        finally:
            _mark(self, (hash_key, range_key))

    return delete_item


def _update_item_marking(original: Callable[..., Any]) -> Callable[..., Any]:
    def update_item(self: Any, table_name: str, key: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, table_name, key, *args, **kwargs)
        finally:
            try:
                table = self.get_table(table_name)
            except Exception:  # no such table: moto raised, and nothing was written
                table = None
            if table is not None:
                item_key = _key_of(table, key)
                if item_key is None:
                    _forget(table)
                else:
                    _mark(table, item_key)

    return update_item


def _key_of(table: Any, attributes: Any) -> ItemKey | None:
    """The key moto stores an item of `attributes` under (None: attributes it cannot make a key of, and
    then it wrote nothing, or they are not what we expect: the caller drops the table's maps)."""
    dynamo_type = internals.DYNAMO_TYPE.get()
    try:
        hash_key = dynamo_type(attributes[table.hash_key_attr])
        range_attribute = table.range_key_attr
        range_key = dynamo_type(attributes[range_attribute]) if range_attribute is not None else None
        hash((hash_key, range_key))
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
    return hash_key, range_key


@contextmanager
def partitioned_queries() -> Iterator[None]:
    """Inside the block, moto's Query reads only the queried partition (of the table or of an index)."""
    replacements = [
        (internals.DYNAMODB_TABLE_QUERY, _narrowing_query),
        (internals.DYNAMODB_TABLE_ALL_ITEMS, _narrowed_all_items),
        (internals.DYNAMODB_TABLE_PUT_ITEM, _put_item_marking),
        (internals.DYNAMODB_TABLE_DELETE_ITEM, _delete_item_marking),
        (internals.DYNAMODB_UPDATE_ITEM, _update_item_marking),
    ]
    # The maps are only kept current while the writes are watched: none outlives the block.
    with _LOCK:
        _indexes.clear()
    try:
        with internals.patched(*[(internal, wrap(internal.get())) for internal, wrap in replacements]):
            yield
    finally:
        with _LOCK:
            _indexes.clear()


# --- Answers: items as moto already holds them on the wire -------------------------------------------------
# moto serializes every answer by walking the output shape and, for every AttributeValue, trying each of its
# ten members through attribute-name aliases: half a simulation's time went there (a day's Queries return a
# few thousand items). moto holds an item's values in DynamoDB's JSON form already ({"S": ...}, {"M": {...}}),
# which is what that walk produces for them; binary values are left to moto, which encodes them.
_TEXT_KINDS = frozenset({"S", "N"})
_FLAG_KINDS = frozenset({"BOOL", "NULL"})
_SET_KINDS = frozenset({"SS", "NS"})


def on_the_wire(value: Any) -> bool:
    """Whether `value` is an AttributeValue exactly as DynamoDB's JSON answer carries it."""
    if type(value) is not dict or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in _TEXT_KINDS:
        return type(inner) is str
    if kind in _FLAG_KINDS:
        return type(inner) is bool
    if kind in _SET_KINDS:
        return type(inner) is list and all(type(member) is str for member in inner)
    if kind == "M":
        return type(inner) is dict and all(
            type(name) is str and on_the_wire(member) for name, member in inner.items()
        )
    if kind == "L":
        return type(inner) is list and all(on_the_wire(member) for member in inner)
    return False


def _wire_ready_structure(original: Callable[..., Any]) -> Callable[..., Any]:
    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and on_the_wire(value):
            self._default_serialize(serialized, value, shape, key)
            return
        original(self, serialized, value, shape, key)

    return serialize_structure


@contextmanager
def wire_ready_attribute_values() -> Iterator[None]:
    """Inside the block, moto puts an AttributeValue it holds in wire form into its JSON answers as it is."""
    internal = internals.JSON_SERIALIZE_STRUCTURE
    with internals.patched((internal, _wire_ready_structure(internal.get()))):
        yield

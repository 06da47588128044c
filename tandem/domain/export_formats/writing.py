"""Writing a format's rows: JSON Lines as they come, or Parquet (pyarrow).

Parquet needs one schema for the whole file, and a batch of rows may lack what a later one has (a
column null throughout a batch, a metadata key only later tasks have). So the rows are written
to a JSON Lines scratch file first while the schemas of their batches are merged, then read back
a batch at a time under the merged schema: memory stays one batch, whatever the export's size.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import IO, TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import pyarrow as pa

ROWS_PER_GROUP = 1000


def line(row: dict[str, Any]) -> bytes:
    """The row as one line of JSON, UTF-8: bytes, as orjson writes them (a str would be decoded
    and encoded again, which costs more than the encoding itself)."""
    try:
        # Keys that are not strings, as json.dumps writes them, only when there are some: allowing
        # them costs a third of the encoding.
        try:
            return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:
            return orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # an integer beyond 64 bits (a task's metadata may hold one), which orjson refuses
        return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    count = 0
    for row in rows:
        out.write(line(row))
        count += 1
    return count


def write_parquet(rows: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    """Write the rows to ``out`` (a binary file) as one Parquet file; return how many."""
    # Imported here: pyarrow costs ~60 MB of memory and 0.2 s of start-up, which JSON Lines need not pay.
    import pyarrow as pa
    import pyarrow.parquet as pq

    count, schema = 0, None
    with tempfile.TemporaryFile() as scratch:
        rows = iter(rows)
        while batch := list(islice(rows, ROWS_PER_GROUP)):
            batch_schema = pa.schema(list(pa.array(batch).type))  # every key of every row, not the first's
            schema = (
                batch_schema
                if schema is None
                else pa.unify_schemas([schema, batch_schema], promote_options="permissive")
            )
            scratch.writelines(line(row) for row in batch)
            count += len(batch)
        scratch.seek(0)
        schema, empty = _without_empty_objects(schema or pa.schema([]))
        with pq.ParquetWriter(out, schema) as writer:
            for batch in _batches(scratch):
                for row in batch:
                    row.update(dict.fromkeys(empty))
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return count


def _without_empty_objects(schema: pa.Schema) -> tuple[pa.Schema, list[str]]:
    """Parquet cannot store an object with no keys: a column that is {} in every row (no rater
    scored anything, say) is written as null."""
    import pyarrow as pa

    empty = [field.name for field in schema if pa.types.is_struct(field.type) and field.type.num_fields == 0]
    for name in empty:
        schema = schema.set(schema.get_field_index(name), pa.field(name, pa.null()))
    return schema, empty


def _batches(scratch: IO[bytes]) -> Iterator[list[dict[str, Any]]]:
    while batch := [json.loads(text) for text in islice(scratch, ROWS_PER_GROUP)]:
        yield batch

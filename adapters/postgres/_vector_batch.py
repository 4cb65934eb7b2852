"""A batch of embeddings as one binary ``float4[]`` parameter.

Writing 64 vectors of 256 dimensions as pgvector text literals costs more than embedding them
(16,000 floats formatted in Python, parsed again by the server). A batch is sent instead as one
flat ``real[]`` in PostgreSQL's binary array format, built by numpy in microseconds; each row takes
its slice and casts it (``(%(embs)s::float4[])[a:b]::vector``). ``real[]`` is a built-in type, so
its OID is the same in every database.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import numpy as np
import psycopg
import psycopg.adapt
import psycopg.pq

__all__ = ["Float4Array", "float4_array"]

_FLOAT4_OID: Final = 700
_FLOAT4_ARRAY_OID: Final = 1021
_ELEMENT: Final = np.dtype([("length", ">i4"), ("value", ">f4")])


class Float4Array(bytes):
    """A one-dimensional ``real[]`` in PostgreSQL's binary array format (no NULL elements)."""


class _Float4ArrayDumper(psycopg.adapt.Dumper):
    format = psycopg.pq.Format.BINARY
    oid = _FLOAT4_ARRAY_OID

    def dump(self, obj: Any) -> bytes:
        return bytes(obj)


psycopg.adapters.register_dumper(Float4Array, _Float4ArrayDumper)


def float4_array(matrix: np.ndarray[Any, Any]) -> Float4Array:
    """The rows of ``matrix`` one after another as one ``real[]``."""
    flat = np.ascontiguousarray(matrix, dtype=np.float32).ravel()
    elements = np.empty(flat.size, dtype=_ELEMENT)
    elements["length"] = 4
    elements["value"] = flat
    head = struct.pack(">iiiii", 1, 0, _FLOAT4_OID, flat.size, 1)
    return Float4Array(head + elements.tobytes())

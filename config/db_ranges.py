"""The ranges of the database's integer columns, for bounding input fields at the edge: a value
outside its column's range is refused as a 400 naming the field, never a 500 "integer out of
range" from the database."""

from __future__ import annotations

SMALLINT_MAX = 2**15 - 1  # PositiveSmallIntegerField, SmallIntegerField
INT_MAX = 2**31 - 1  # IntegerField, PositiveIntegerField
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1  # BigIntegerField

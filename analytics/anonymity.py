"""k-anonymity: no figure that is kept or shown counts fewer than k visitors, except a site's totals per time bucket.

A breakdown is a group of rows (the values of one dimension, in one time bucket, under one filter or none).
`fold` merges the rows counting fewer than k visitors into one row, `(other)`, whose counters are the sums of
theirs (so every breakdown's sums stay exact); its visitors are the distinct visitors of the merged rows when
they are known (the rollup knows them for rows that small), the sum otherwise. If `(other)` itself counts fewer
than k, the smallest remaining rows join it until it does; a group that cannot reach k at all (a day with three
visitors, k = 5) keeps no row: its visitors are in the totals only.

The same function shapes the rollup's rows (what is stored when a day closes, and today's live rows, computed
from the raw events by the same code, so a figure means the same before and after its day closes) and every
answer (a sum of stored rows is at least k whenever one of its rows is; `fold` runs again on the answer so that
rows added together from different sources obey the rule as well).

A filter names a value: its figures are the value's own row in the breakdown by its dimension, so a filter on a
value counting fewer than k visitors in a bucket has nothing in that bucket (its rows are never formed: rare
values are folded before pairing).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

OTHER = "(other)"
"""The value under which the rows of fewer than k visitors are merged. A value sent as "(other)" (an event name,
a property) is counted there too, and so is a value erased by `analytics forget`."""

Counts = tuple[int, ...]
"""visitors, visits, pageviews, events, bounces, duration."""
K = TypeVar("K", bound=Hashable)


def plus(a: Sequence[int], b: Sequence[int]) -> Counts:
    """Two rows' counters added up (visitors included: the sum, an upper bound of the distinct ones)."""
    return tuple(x + y for x, y in zip(a, b, strict=True))


def fold(
    rows: dict[K, Counts],
    k: int,
    other: K,
    visitors_of: Mapping[K, Sequence[int]] | None = None,
) -> dict[K, Counts]:
    """The group's rows with those under k visitors merged into `other` (a row already named `other` is merged
    whatever its count). `visitors_of` may give the visitor ids of the small rows, so that `other` counts a
    person who had two rare values once. Rows counting no visitor at all are kept as they are (zero is not a
    small count: a comparison's empty row)."""
    if k <= 1:
        return rows
    small = [key for key, c in rows.items() if key == other or 0 < c[0] < k]
    if not small:
        return rows
    kept = {key: c for key, c in rows.items() if key != other and not 0 < c[0] < k}
    merged: Counts = (0, 0, 0, 0, 0, 0)
    for key in small:
        merged = plus(merged, rows[key])
    if visitors_of is not None and all(key in visitors_of for key in small):
        distinct = set().union(*(visitors_of[key] for key in small))
        merged = (len(distinct), *merged[1:])
    while 0 < merged[0] < k and kept:  # the smallest rows join until `other` reaches k
        smallest = min(kept, key=lambda key: (kept[key][0], str(key)))
        merged = plus(merged, kept.pop(smallest))
    if 0 < merged[0] < k:
        return {key: c for key, c in kept.items() if c[0] >= k}  # nothing left to join: the group keeps no row
    kept[other] = merged
    return kept


def fold_groups(rows: dict[tuple[str, str], Counts], k: int) -> dict[tuple[str, str], Counts]:
    """`fold` for rows keyed (group, value), such as (time bucket, value): each group folded on its own, with
    `(group, OTHER)` its merged row."""
    if k <= 1:
        return rows
    groups: dict[str, dict[tuple[str, str], Counts]] = {}
    for key, counts in rows.items():
        groups.setdefault(key[0], {})[key] = counts
    folded: dict[tuple[str, str], Counts] = {}
    for name, members in groups.items():
        folded.update(fold(members, k, (name, OTHER)))
    return folded


def enough(counts: Sequence[int], k: int) -> bool:
    """Whether a figure that is not a site's totals may be kept or shown: no visitor, or at least k."""
    return counts[0] == 0 or counts[0] >= k

"""How a check's queries reach its detector: one frame, extra queries marked by a label.

Most checks have one query. A detector may bring its own (burn_rate's `good`/`total`, the
volume guard's `total`): the engine evaluates each and hands the detector one frame whose
extra columns carry `__query__="good"` or `"total"`. The label never reaches a Firing (the
detectors pair columns on their other labels) and is not in any `group_by`, so it never
splits a fingerprint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from incident.model import AnomalyParams, BurnRateParams, ChangeParams, Labels

if TYPE_CHECKING:
    import pandas as pd

QUERY_LABEL = "__query__"


def queries(main: str, params: Any) -> dict[str, str]:
    """The queries a check evaluates: "" for its own query, then the detector's extra ones."""
    out = {"": main} if main else {}
    if isinstance(params, BurnRateParams) and params.good:
        out["good"] = params.good
    if isinstance(params, (ChangeParams, AnomalyParams, BurnRateParams)) and params.total:
        out["total"] = params.total
    return out


def combine(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One frame from the per-query frames of `queries` (same grid), extra columns marked."""
    import pandas as pd

    parts = []
    for name, frame in frames.items():
        if name:
            frame = frame.set_axis([Labels({**c.as_dict(), QUERY_LABEL: name})
                                    for c in frame.columns], axis=1)
        parts.append(frame)
    if len(parts) == 1:
        return parts[0]
    return pd.concat(parts, axis=1).astype(np.float64)


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The check's own columns, and the extra queries' columns by name (label removed)."""
    own = [c for c in frame.columns if not (isinstance(c, Labels) and QUERY_LABEL in c)]
    extra: dict[str, list[Any]] = {}
    for c in frame.columns:
        if isinstance(c, Labels) and QUERY_LABEL in c:
            extra.setdefault(c[QUERY_LABEL], []).append(c)
    others = {name: frame[cols].set_axis([c.without(QUERY_LABEL) for c in cols], axis=1)
              for name, cols in extra.items()}
    return frame[own], others


def aligned(labels: list[Any], other: pd.DataFrame | None, rows: int) -> np.ndarray:
    """`other`'s columns matched to `labels` as an (rows, len(labels)) array, NaN where none.

    Columns match on equal labels; a lone column without a match (a query summed over
    everything) applies to every series.
    """
    out = np.full((rows, len(labels)), np.nan)
    if other is None or other.shape[1] == 0:
        return out
    values = other.to_numpy(dtype=np.float64)[:rows]
    where = {c: i for i, c in enumerate(other.columns)}
    for j, label in enumerate(labels):
        i = where.get(label)
        if i is None and other.shape[1] == 1:
            i = 0
        if i is not None:
            out[:, j] = values[:, i]
    return out

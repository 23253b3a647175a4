"""A shared hypothesis property: appending or rewriting future points never changes a past verdict."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from detector_frames import Detect, at, clipped
from hypothesis import strategies as st


def assert_causal(detect: Detect, frame: pd.DataFrame, params: Any, data: st.DataObject,
                  levels: st.SearchStrategy[float]) -> None:
    """Verdicts up to a drawn t agree between now=t, now=last, and a rewritten future."""
    n = len(frame)
    t = at(data.draw(st.integers(0, n - 1), label="t"))
    full = detect(frame, params, at(n - 1))
    assert clipped(full, t) == clipped(detect(frame, params, t), t)
    assert clipped(full, t) == clipped(detect(frame.loc[frame.index <= t], params, t), t)
    future = frame.copy()
    later = int((future.index > t).sum())
    if later:
        cells = data.draw(st.lists(levels, min_size=later * frame.shape[1],
                                   max_size=later * frame.shape[1]), label="future")
        future.iloc[n - later:] = np.asarray(cells, dtype=np.float64).reshape(later, frame.shape[1])
    assert clipped(detect(future, params, at(n - 1)), t) == clipped(full, t)

"""Recorded series on disk: OpenMetrics text and CSV files, read into raw series.

OpenMetrics is read by hand, not with prometheus-client: history files hold many timestamps
per histogram, which its parser refuses. The reader accepts what
`promtool tsdb create-blocks-from openmetrics` accepts, and rejects — with file:line and what
was expected — what promtool would reject or silently mangle (samples without timestamps,
out-of-order or duplicate samples, millisecond timestamps).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from incident.errors import SourceError
from incident.model import Labels
from incident.sources.promql.storage import MemoryStorage, RawSeries

OPENMETRICS_SUFFIXES = (".om", ".txt", ".prom")
CSV_SUFFIXES = (".csv",)

# 3000-01-01T00:00:00Z in Unix seconds: anything later is a millisecond timestamp by mistake.
MAX_SECONDS = 32503680000.0

_METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_LABEL_VALUE = r'"(?:[^"\\\n]|\\.)*"'
_LABEL = rf"{_LABEL_NAME}={_LABEL_VALUE}"
_HEAD = re.compile(rf"({_METRIC_NAME})(?:\{{((?:{_LABEL}(?:,{_LABEL})*)?)\}})?")
_PAIR = re.compile(rf"({_LABEL_NAME})=({_LABEL_VALUE})")
_NUMBER = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])"
)
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_TYPES = ("counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset",
          "unknown")

SAMPLE_FORM = "name{label=\"value\",…} value timestamp"


def load_series(path: Path, *, source: str = "file") -> MemoryStorage:
    """Every series in a file, or in every supported file of a directory, merged by labels."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in OPENMETRICS_SUFFIXES + CSV_SUFFIXES)
    elif path.is_file():
        files = [path]
    else:
        raise SourceError(source, f"{path} does not exist")
    chunks: list[tuple[Path, RawSeries]] = []
    for file in files:
        if file.suffix.lower() in CSV_SUFFIXES:
            series = read_csv(file, source=source)
        else:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise SourceError(source, f"{file}: cannot read: {exc}") from None
            series = read_openmetrics(text, file=file, source=source)
        chunks.extend((file, s) for s in series)
    return MemoryStorage(merge_series(chunks, source=source))


def merge_series(chunks: Iterable[tuple[Path, RawSeries]], *, source: str = "file"
                 ) -> list[RawSeries]:
    """One series per label set, samples from every file sorted by time; conflicts are errors."""
    groups: dict[Labels, list[tuple[Path, RawSeries]]] = {}
    for file, s in chunks:
        groups.setdefault(s.labels, []).append((file, s))
    out = []
    for labels in sorted(groups):
        parts = groups[labels]
        if len(parts) == 1:
            out.append(parts[0][1])
            continue
        t = np.concatenate([s.t for _, s in parts])
        v = np.concatenate([s.v for _, s in parts])
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        dup = np.flatnonzero(t[1:] == t[:-1])
        # The same sample recorded twice is harmless; two different values at one time is not.
        same = (v[dup] == v[dup + 1]) | (np.isnan(v[dup]) & np.isnan(v[dup + 1]))
        if not same.all():
            at = t[dup[~same][0]]
            where = [str(f) for f, s in parts if (s.t == at).any()]
            raise SourceError(source, f"{labels} has different samples at {at:g} "
                                      f"in {' and '.join(where)}")
        keep = np.ones(len(t), dtype=bool)
        keep[dup + 1] = False
        out.append(RawSeries(labels=labels, t=t[keep], v=v[keep]))
    return out


# ---------------------------------------------------------------- OpenMetrics


def read_openmetrics(text: str, *, file: Path | str = "<text>", source: str = "file"
                     ) -> list[RawSeries]:
    """The series of an OpenMetrics text, in order of first appearance."""
    heads: dict[str, int] = {}  # exact text before " value timestamp" → series index
    index: dict[Labels, int] = {}
    labels: list[Labels] = []
    times: list[list[float]] = []
    values: list[list[float]] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "# EOF" in lines[:-1]:
        after = lines.index("# EOF") + 2
        raise SourceError(source, f"{file}:{after}: unexpected data after '# EOF'")
    if not lines or lines[-1] != "# EOF":
        raise SourceError(source, f"{file}:{len(lines) + 1}: expected '# EOF' as the last line "
                                  "(promtool refuses files without it)")
    for number, line in enumerate(lines[:-1], start=1):
        # Fast path: a series seen before, then " value timestamp" (rpartition: label values
        # may hold spaces, numbers may not). Anything else goes through the strict parser.
        head, _, stamp = line.rpartition(" ")
        head, _, value = head.rpartition(" ")
        i = heads.get(head)
        if i is None:
            if line.startswith("#"):
                _metadata(line, file, number, source)
                continue
            i, value, stamp = _slow_sample(line, heads, index, labels, times, values,
                                           file, number, source)
        elif not (_NUMBER.fullmatch(value) and _NUMBER.fullmatch(stamp)):
            _slow_sample(line, heads, index, labels, times, values, file, number, source)
        t = float(stamp)
        if not t <= MAX_SECONDS:
            if math.isnan(t):
                raise SourceError(source, f"{file}:{number}: timestamp NaN: expected Unix seconds")
            raise SourceError(source, f"{file}:{number}: timestamp {stamp} is after the year "
                                      "3000: expected Unix seconds, not milliseconds")
        ts = times[i]
        if ts and t <= ts[-1]:
            what = "a second sample at the same time" if t == ts[-1] else "out of order"
            raise SourceError(source, f"{file}:{number}: {labels[i]} at {stamp} is {what}: "
                                      f"expected a timestamp after {ts[-1]:.17g} "
                                      "(each series in ascending time order)")
        ts.append(t)
        values[i].append(float(value))
    return [RawSeries(labels=lab, t=np.array(t, dtype=np.float64),
                      v=np.array(v, dtype=np.float64))
            for lab, t, v in zip(labels, times, values, strict=True)]


def _slow_sample(line: str, heads: dict[str, int], index: dict[Labels, int],
                 labels: list[Labels], times: list[list[float]], values: list[list[float]],
                 file: Path | str, number: int, source: str) -> tuple[int, str, str]:
    """Parse one sample line strictly; a new series head is remembered for the fast path."""
    m = _HEAD.match(line)
    if m is None or m.end() == 0:
        raise SourceError(source, f"{file}:{number}: expected a sample '{SAMPLE_FORM}', "
                                  f"got {line[:60]!r}")
    after = line[m.end():m.end() + 1]
    if after == "{":
        raise SourceError(source, f"{file}:{number}: bad label syntax in {line[:80]!r}: "
                                  'expected {name="value",…} with no spaces and no trailing '
                                  'comma, and \\ " newline escaped as \\\\ \\" \\n')
    if after != " ":
        raise SourceError(source, f"{file}:{number}: expected one space and a value after the "
                                  f"series, got {line[m.end():m.end() + 20]!r}")
    head = line[:m.end()]
    rest = line[m.end() + 1:]
    sample, _, exemplar = rest.partition(" # ")
    fields = sample.split(" ")
    if len(fields) == 1:
        raise SourceError(source, f"{file}:{number}: sample has no timestamp: expected "
                                  f"'{SAMPLE_FORM}' with the timestamp in Unix seconds")
    if len(fields) != 2:
        raise SourceError(source, f"{file}:{number}: expected 'value timestamp' after the "
                                  f"series, got {sample!r}")
    value, stamp = fields
    _check_number(value, "value", line, file, number, source)
    _check_number(stamp, "timestamp", line, file, number, source)
    found = heads.get(head)
    if found is not None:
        return found, value, stamp
    pairs = {"__name__": m.group(1)}
    for name, quoted in _PAIR.findall(m.group(2) or ""):
        if name in pairs:
            raise SourceError(source, f"{file}:{number}: label {name!r} appears twice")
        pairs[name] = _ESCAPE.sub(lambda e: _ESCAPES.get(e.group(1), e.group(0)), quoted[1:-1])
    key = Labels(pairs)
    i = index.get(key)
    if i is None:
        i = index[key] = len(labels)
        labels.append(key)
        times.append([])
        values.append([])
    if not exemplar:
        heads[head] = i
    return i, value, stamp


def _check_number(text: str, what: str, line: str, file: Path | str, number: int,
                  source: str) -> None:
    if not _NUMBER.fullmatch(text):
        raise SourceError(source, f"{file}:{number}: {what} {text!r} is not a number "
                                  "(expected e.g. 1.5, 2e3, NaN, +Inf, -Inf)")


def _metadata(line: str, file: Path | str, number: int,
              source: str) -> None:
    parts = line.split(" ", 3)
    if len(parts) < 3 or parts[0] != "#" or parts[1] not in ("TYPE", "HELP", "UNIT"):
        if line == "# EOF":
            raise SourceError(source, f"{file}:{number}: unexpected data after '# EOF'")
        raise SourceError(source, f"{file}:{number}: expected '# TYPE', '# HELP', '# UNIT' or "
                                  f"'# EOF', got {line[:60]!r} (OpenMetrics has no comments)")
    keyword, name = parts[1], parts[2]
    if not re.fullmatch(_METRIC_NAME, name):
        raise SourceError(source, f"{file}:{number}: bad metric family name {name!r}")
    if keyword == "TYPE":
        kind = parts[3] if len(parts) == 4 else ""
        if kind not in _TYPES:
            raise SourceError(source, f"{file}:{number}: unknown metric type {kind!r} "
                                      f"(expected one of {', '.join(_TYPES)})")


# ---------------------------------------------------------------- CSV


def read_csv(path: Path, *, source: str = "file") -> list[RawSeries]:
    """The series of a CSV file: a `timestamp` column and one column per series selector."""
    import pandas as pd

    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(source, f"{path}: cannot read: {exc}") from None
    if "timestamp" not in header:
        raise SourceError(source, f"{path}:1: expected a 'timestamp' column, got "
                                  f"{', '.join(header[:5]) or 'no header'}")
    column_labels: list[Labels | None] = []
    seen: dict[Labels, int] = {}
    for col, name in enumerate(header, start=1):
        if name == "timestamp":
            column_labels.append(None)
            continue
        parsed = parse_selector(name, where=f"{path}:1: column {col}", source=source)
        if parsed in seen:
            raise SourceError(source, f"{path}:1: column {col}: {parsed} repeats column "
                                      f"{seen[parsed]}")
        seen[parsed] = col
        column_labels.append(parsed)
    if header.count("timestamp") > 1:
        raise SourceError(source, f"{path}:1: more than one 'timestamp' column")
    try:
        frame = pd.read_csv(path, engine="c", header=None, skiprows=1, names=list(range(len(header))),
                            dtype={header.index("timestamp"): str}, keep_default_na=False,
                            na_values=[""], skip_blank_lines=False)
    except (ValueError, pd.errors.ParserError) as exc:
        message = str(exc).replace("Error tokenizing data. C error: ", "")
        raise SourceError(source, f"{path}: {message} (line numbers count the header)") from None
    stamps = _csv_timestamps(frame[header.index("timestamp")], path, source)
    bad = np.flatnonzero(~(np.diff(stamps) > 0))
    if len(bad):
        raise SourceError(source, f"{path}:{bad[0] + 3}: timestamp is not after the previous "
                                  "row's (rows must be in ascending time order)")
    out = []
    for col, labels in enumerate(column_labels):
        if labels is None:
            continue
        column = frame[col]
        if column.dtype.kind not in "fi":
            column = _numeric_column(column, path, col, source)
        v = column.to_numpy(dtype=np.float64)
        present = ~np.isnan(v) | _nan_cells(frame[col])
        out.append(RawSeries(labels=labels, t=stamps[present], v=v[present]))
    return out


def _nan_cells(column: object) -> np.ndarray:
    """Cells that literally say NaN (a sample) as opposed to empty cells (no sample)."""
    import pandas as pd

    assert isinstance(column, pd.Series)
    if column.dtype.kind in "fi":
        return np.zeros(len(column), dtype=bool)
    text = column.astype(str).str.strip().str.lower()
    return np.asarray(text.isin(["nan", "+nan", "-nan"]), dtype=bool)


def _numeric_column(column: object, path: Path, col: int, source: str) -> object:
    import pandas as pd

    assert isinstance(column, pd.Series)
    numbers = pd.to_numeric(column, errors="coerce")
    text = column.astype(str).str.strip()
    ok = ~numbers.isna() | column.isna() | text.str.lower().isin(["nan", "+nan", "-nan"])
    if not ok.all():
        row = int(np.flatnonzero(~ok.to_numpy())[0])
        raise SourceError(source, f"{path}:{row + 2}: column {col + 1}: {column.iloc[row]!r} "
                                  "is not a number (expected e.g. 1.5, NaN, +Inf, or empty for "
                                  "no sample)")
    return numbers


def _csv_timestamps(column: object, path: Path, source: str) -> np.ndarray:
    """Unix seconds from a column of Unix seconds or RFC 3339 times."""
    import pandas as pd

    assert isinstance(column, pd.Series)
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise SourceError(source, f"{path}:{row + 2}: empty timestamp")
    numeric = pd.to_numeric(column, errors="coerce")
    stamps = numeric.to_numpy(dtype=np.float64, na_value=np.nan).copy()
    textual = np.isnan(stamps)
    if textual.any():
        text = column[textual]
        parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        if parsed.isna().any():
            row = int(text.index[np.flatnonzero(parsed.isna().to_numpy())[0]])
            raise SourceError(source, f"{path}:{row + 2}: timestamp {column.iloc[row]!r} is "
                                      "neither RFC 3339 (2026-11-24T10:00:00Z) nor Unix seconds")
        stamps[textual] = parsed.dt.as_unit("ns").astype("int64").to_numpy() / 1e9
    late = np.flatnonzero(~(stamps <= MAX_SECONDS))
    if len(late):
        raise SourceError(source, f"{path}:{late[0] + 2}: timestamp {column.iloc[late[0]]} "
                                  "is after the year 3000: timestamps are Unix seconds, not "
                                  "milliseconds")
    return stamps


def parse_selector(text: str, *, where: str = "", source: str = "file") -> Labels:
    """`name{a="1"}` or a bare `name` → its labels (with __name__); SourceError otherwise."""
    m = _HEAD.fullmatch(text.strip())
    if m is None:
        raise SourceError(source, f"{where}: {text!r} is not a series selector (expected a "
                                  'metric name like node_load1 or node_load1{instance="web-1"})')
    pairs = {"__name__": m.group(1)}
    for name, quoted in _PAIR.findall(m.group(2) or ""):
        if name in pairs:
            raise SourceError(source, f"{where}: label {name!r} appears twice in {text!r}")
        pairs[name] = _ESCAPE.sub(lambda e: _ESCAPES.get(e.group(1), e.group(0)), quoted[1:-1])
    return Labels(pairs)


def format_series(labels: Labels) -> str:
    """The series as OpenMetrics and CSV write it: name{a="1",b="2"}, labels in name order."""
    return str(labels)

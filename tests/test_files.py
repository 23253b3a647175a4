"""The file source's readers: OpenMetrics text and CSV into raw series, and a directory merged."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from incident.errors import SourceError
from incident.model import Labels
from incident.sources.files import load_series, parse_selector, read_csv, read_openmetrics

HISTORY = """\
# TYPE http_requests counter
# HELP http_requests Requests by code
http_requests_total{code="200",path="/a \\"b\\" \\\\c\\nd"} 10 1700000000
http_requests_total{code="200",path="/a \\"b\\" \\\\c\\nd"} 12 1700000060.5
# TYPE latency_seconds histogram
# UNIT latency_seconds seconds
latency_seconds_bucket{le="0.1"} 1 1700000000
latency_seconds_bucket{le="+Inf"} 2 1700000000
latency_seconds_sum 0.3 1700000000
latency_seconds_count 2 1700000000
latency_seconds_bucket{le="0.1"} 3 1700000060
latency_seconds_bucket{le="+Inf"} 5 1700000060
latency_seconds_sum 0.9 1700000060
latency_seconds_count 5 1700000060
# TYPE temperature gauge
temperature{room="a b"} NaN 1700000000
temperature{room="a b"} +Inf 1700000060
temperature{room="a b"} -Inf 1700000120
temperature{room="a b"} -1.5e3 1700000180
# EOF
"""


def by_labels(series: list) -> dict[str, tuple[list[float], list[float]]]:
    """Series keyed by their PromQL text, with plain lists for easy comparison."""
    return {str(s.labels): (s.t.tolist(), s.v.tolist()) for s in series}


def test_openmetrics_reads_escapes_counters_histograms_and_special_values() -> None:
    """Escaped label values, `_total` samples, repeated histogram timestamps and NaN/±Inf parse."""
    got = by_labels(read_openmetrics(HISTORY))
    assert got['http_requests_total{code="200",path="/a \\"b\\" \\\\c\\nd"}'] == (
        [1700000000.0, 1700000060.5], [10.0, 12.0])
    assert got['latency_seconds_bucket{le="0.1"}'] == ([1700000000.0, 1700000060.0], [1.0, 3.0])
    assert got['latency_seconds_bucket{le="+Inf"}'][1] == [2.0, 5.0]
    assert got["latency_seconds_sum"][1] == [0.3, 0.9]
    assert got["latency_seconds_count"][1] == [2.0, 5.0]
    _, v = got['temperature{room="a b"}']
    assert math.isnan(v[0]) and v[1:] == [math.inf, -math.inf, -1500.0]
    [requests] = [s for s in read_openmetrics(HISTORY) if "code" in s.labels]
    assert requests.labels["path"] == '/a "b" \\c\nd'


def test_openmetrics_ignores_exemplars() -> None:
    """An exemplar after the timestamp is accepted, as promtool does, and not stored."""
    [s] = read_openmetrics('# TYPE a counter\na_total 1 5 # {trace_id="x"} 1 5\n'
                           'a_total 2 6 # {trace_id="y"} 1 6\n# EOF\n')
    assert s.t.tolist() == [5.0, 6.0] and s.v.tolist() == [1.0, 2.0]


@pytest.mark.parametrize(("text", "message"), [
    ("a 1\n# EOF\n",
     "x.om:1: sample has no timestamp: expected 'name{label=\"value\",…} value timestamp' "
     "with the timestamp in Unix seconds"),
    ("a 1 5\na 2 4\n# EOF\n",
     "x.om:2: a at 4 is out of order: expected a timestamp after 5 "
     "(each series in ascending time order)"),
    ("a 1 5\na 2 5\n# EOF\n",
     "x.om:2: a at 5 is a second sample at the same time: expected a timestamp after 5 "
     "(each series in ascending time order)"),
    ("a 1 1700000000000\n# EOF\n",
     "x.om:1: timestamp 1700000000000 is after the year 3000: expected Unix seconds, "
     "not milliseconds"),
    ('a{x="1",} 1 5\n# EOF\n',
     "x.om:1: bad label syntax in 'a{x=\"1\",} 1 5': expected {name=\"value\",…} with no "
     "spaces and no trailing comma, and \\ \" newline escaped as \\\\ \\\" \\n"),
    ('a{x="1", y="2"} 1 5\n# EOF\n',
     "x.om:1: bad label syntax in 'a{x=\"1\", y=\"2\"} 1 5': expected {name=\"value\",…} with "
     "no spaces and no trailing comma, and \\ \" newline escaped as \\\\ \\\" \\n"),
    ("a{x=1} 1 5\n# EOF\n",
     "x.om:1: bad label syntax in 'a{x=1} 1 5': expected {name=\"value\",…} with no spaces "
     "and no trailing comma, and \\ \" newline escaped as \\\\ \\\" \\n"),
    ('a{x="1",x="2"} 1 5\n# EOF\n', "x.om:1: label 'x' appears twice"),
    ("a 1_000 5\n# EOF\n",
     "x.om:1: value '1_000' is not a number (expected e.g. 1.5, 2e3, NaN, +Inf, -Inf)"),
    ("a 1 5\r\n# EOF\n",
     "x.om:1: timestamp '5\\r' is not a number (expected e.g. 1.5, 2e3, NaN, +Inf, -Inf)"),
    ("a  1 5\n# EOF\n", "x.om:1: expected 'value timestamp' after the series, got ' 1 5'"),
    ("a 1 5\n", "x.om:2: expected '# EOF' as the last line (promtool refuses files without it)"),
    ("a 1 5\n# EOF\na 2 6\n", "x.om:3: unexpected data after '# EOF'"),
    ("a 1 5\n# EOF\na 2 6\n# EOF\n", "x.om:3: unexpected data after '# EOF'"),
    ("# a comment\n# EOF\n",
     "x.om:1: expected '# TYPE', '# HELP', '# UNIT' or '# EOF', got '# a comment' "
     "(OpenMetrics has no comments)"),
    ("\n# EOF\n", "x.om:1: expected a sample 'name{label=\"value\",…} value timestamp', got ''"),
    ("# TYPE a countr\n# EOF\n",
     "x.om:1: unknown metric type 'countr' (expected one of counter, gauge, histogram, "
     "gaugehistogram, summary, info, stateset, unknown)"),
])
def test_openmetrics_rejects_what_promtool_rejects_or_mangles(text: str, message: str) -> None:
    """Each malformed input is refused with file:line and what was expected."""
    with pytest.raises(SourceError) as err:
        read_openmetrics(text, file="x.om", source="local")
    assert str(err.value) == f"source 'local': {message}"


def test_openmetrics_strict_check_applies_to_known_series_too() -> None:
    """A bad value on a series already seen is caught, not passed to float()."""
    with pytest.raises(SourceError, match=r"x.om:2: value '1_0' is not a number"):
        read_openmetrics("a 1 5\na 1_0 6\n# EOF\n", file="x.om")


CSV_UNIX = """\
timestamp,node_load1{instance="web-1"},node_load1{instance="web-2"},shop_sessions_total
1700000000,0.5,,100
1700000060,0.75,1.25,
1700000120,NaN,1.5,130
"""

CSV_RFC3339 = CSV_UNIX.replace("1700000000", "2023-11-14T22:13:20Z").replace(
    "1700000060", "2023-11-14T22:14:20Z").replace("1700000120", "2023-11-15T06:15:20+08:00")


@pytest.mark.parametrize("text", [CSV_UNIX, CSV_RFC3339], ids=["unix", "rfc3339"])
def test_csv_reads_both_timestamp_forms_and_skips_empty_cells(tmp_path: Path, text: str) -> None:
    """Unix seconds and RFC 3339 give the same series; an empty cell is no sample, NaN is one."""
    path = tmp_path / "x.csv"
    path.write_text(text)
    got = by_labels(read_csv(path))
    t, v = got['node_load1{instance="web-1"}']
    assert t == [1700000000.0, 1700000060.0, 1700000120.0]
    assert v[:2] == [0.5, 0.75] and math.isnan(v[2])
    assert got['node_load1{instance="web-2"}'] == ([1700000060.0, 1700000120.0], [1.25, 1.5])
    assert got["shop_sessions_total"] == ([1700000000.0, 1700000120.0], [100.0, 130.0])


@pytest.mark.parametrize(("text", "message"), [
    ("time,a\n1,2\n", "x.csv:1: expected a 'timestamp' column, got time, a"),
    ("timestamp,a{b=1}\n1,2\n",
     "x.csv:1: column 2: 'a{b=1}' is not a series selector (expected a metric name like "
     'node_load1 or node_load1{instance="web-1"})'),
    ('timestamp,a{b="1"},"a{b=""1""}"\n1,2,3\n',
     'x.csv:1: column 3: a{b="1"} repeats column 2'),
    ("timestamp,a\n1,2\n1,3\n",
     "x.csv:3: timestamp is not after the previous row's (rows must be in ascending time order)"),
    ("timestamp,a\n1,2\nyesterday,3\n",
     "x.csv:3: timestamp 'yesterday' is neither RFC 3339 (2026-11-24T10:00:00Z) nor Unix seconds"),
    ("timestamp,a\n1700000000000,2\n",
     "x.csv:2: timestamp 1700000000000 is after the year 3000: timestamps are Unix seconds, "
     "not milliseconds"),
    ("timestamp,a,b\n1,2,3\n2,3,x\n",
     "x.csv:3: column 3: 'x' is not a number (expected e.g. 1.5, NaN, +Inf, or empty for no "
     "sample)"),
    ("timestamp,a\n1,2\n,3\n", "x.csv:3: empty timestamp"),
])
def test_csv_errors_name_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    """Each malformed CSV is refused with file:line (and column) and what was expected."""
    path = tmp_path / "x.csv"
    path.write_text(text)
    with pytest.raises(SourceError) as err:
        read_csv(path, source="local")
    assert str(err.value) == f"source 'local': {str(path).replace('x.csv', '')}{message}"


def test_csv_too_many_fields_names_the_file(tmp_path: Path) -> None:
    """A row with more cells than the header is refused, naming the file and line."""
    path = tmp_path / "x.csv"
    path.write_text("timestamp,a\n1,2\n2,3,4\n")
    with pytest.raises(SourceError, match=r"x\.csv: Expected 2 fields in line 3, saw 3"):
        read_csv(path)


def test_selector_parses_bare_names_and_labels() -> None:
    """A CSV header cell is a bare metric name or a selector with equality matchers."""
    assert parse_selector("up") == Labels({"__name__": "up"})
    assert parse_selector('up{job="node",instance="a,b"}') == Labels(
        {"__name__": "up", "job": "node", "instance": "a,b"})


def test_directory_merges_series_across_files_sorted_by_time(tmp_path: Path) -> None:
    """Files in a directory are all read; one series split over files comes back in time order."""
    (tmp_path / "b.om").write_text('up{i="1"} 1 120\nup{i="1"} 1 180\nother 5 60\n# EOF\n')
    (tmp_path / "a.csv").write_text('timestamp,up{i="1"}\n60,0\n120,1\n')
    (tmp_path / "notes.md").write_text("not data")
    storage = load_series(tmp_path)
    got = by_labels(storage.series)
    assert got == {'up{i="1"}': ([60.0, 120.0, 180.0], [0.0, 1.0, 1.0]),
                   "other": ([60.0], [5.0])}


def test_directory_merge_refuses_conflicting_samples(tmp_path: Path) -> None:
    """Two files with different values for one series at one time is an error naming both."""
    (tmp_path / "a.csv").write_text("timestamp,up\n60,0\n")
    (tmp_path / "b.prom").write_text("up 1 60\n# EOF\n")
    with pytest.raises(SourceError) as err:
        load_series(tmp_path, source="local")
    assert str(err.value) == (f"source 'local': up has different samples at 60 in "
                              f"{tmp_path / 'a.csv'} and {tmp_path / 'b.prom'}")


def test_missing_path_is_a_source_error(tmp_path: Path) -> None:
    """A path that does not exist is reported as the source's error."""
    with pytest.raises(SourceError, match="does not exist"):
        load_series(tmp_path / "nope")


def test_single_file_path_loads_that_file(tmp_path: Path) -> None:
    """The source path may name one file instead of a directory."""
    path = tmp_path / "one.txt"
    path.write_text("a 1 1\na 2 2\n# EOF\n")
    [s] = load_series(path).series
    assert np.array_equal(s.v, [1.0, 2.0])

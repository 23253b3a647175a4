"""Runners sharing checks on a real SQLite store: shards, leases per cycle, takeover, `incident db`."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from runner_project import AT, check_name, make_project

from incident import app, runners
from incident.cli import main
from incident.errors import ConfigError
from incident.store import SCHEMA_VERSION, Store
from incident.store.schema import meta
from incident.timeutil import iso

CHECKS = 6
NAMES = [check_name(i) for i in range(CHECKS)]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Six checks, two breaching, on a SQLite store."""
    return make_project(tmp_path / "shop", store="sqlite:///.incident/incident.db",
                        checks=CHECKS, breaching=2)


def cli(project: Path, *args: str) -> tuple[int, str, str]:
    """Run `incident --project P ARGS`; exit code, stdout, stderr."""
    result = CliRunner().invoke(main, ["--project", str(project), *args])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout, result.stderr


def evaluated(project: Path, *args: str) -> list[str]:
    """The checks one `incident check --json ARGS` run evaluated."""
    code, out, err = cli(project, "check", "--json", *args)
    assert code == 0, err
    return [c["check"] for c in json.loads(out)["checks"]]


@pytest.mark.parametrize(("text", "shard"), [("1/1", (1, 1)), ("2/4", (2, 4)), (" 3 / 3 ", (3, 3))])
def test_parse_shard_reads_i_of_n(text: str, shard: tuple[int, int]) -> None:
    """`I/N` with 1 <= I <= N is a shard."""
    parsed = runners.parse_shard(text)
    assert (parsed.index, parsed.count) == shard


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2"])
def test_parse_shard_refuses_anything_else(text: str) -> None:
    """Anything but I/N with 1 <= I <= N is refused with the expected form."""
    with pytest.raises(ValueError, match="--shard takes I/N"):
        runners.parse_shard(text)


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_partition_the_checks(count: int) -> None:
    """Every check belongs to exactly one of the n shards."""
    names = [check_name(i) for i in range(50)]
    owners = Counter(n for i in range(1, count + 1) for n in names
                     if runners.Shard(i, count).owns(n))
    assert owners == Counter(names)


def test_the_shard_hash_is_stable_across_machines() -> None:
    """The hash is pinned (SHA-256), not the process's seeded hash(): hosts agree on shards."""
    assert runners.stable_hash("api-success-rate") == 8148272591005285228
    assert [i for i in range(1, 5) if runners.Shard(i, 4).owns("api-success-rate")] == [1]


def test_a_leased_check_is_evaluated_once_per_cycle(project: Path) -> None:
    """A second runner in the same cycle evaluates nothing; the next cycle is evaluated again."""
    assert sorted(evaluated(project, "--lease", "--runner", "a", "--at", iso(AT) or "")) == NAMES
    assert evaluated(project, "--lease", "--runner", "b", "--at", iso(AT) or "") == []
    assert "0 checks" in cli(project, "check", "--lease", "--at", iso(AT) or "")[1]
    later = iso(AT + timedelta(minutes=1)) or ""
    assert sorted(evaluated(project, "--lease", "--runner", "b", "--at", later)) == NAMES


def test_a_runner_with_no_check_left_still_delivers_what_is_due(project: Path) -> None:
    """Runner b wins no lease in a's cycle, yet it retries a's failed pages once they are due."""
    from incident.testing import HTTPReceiver

    with HTTPReceiver() as rx:
        text = (project / "incident.yaml").read_text()
        (project / "incident.yaml").write_text(text.replace(
            '"file://notifications.log"', f'"{rx.url()}"')
            + "delivery: {backoff: 10s, max_backoff: 10s}\n")
        rx.fail = True
        assert sorted(evaluated(project, "--lease", "--runner", "a", "--at", iso(AT) or "")) \
            == NAMES
        rx.fail = False
        later = iso(AT + timedelta(seconds=30)) or ""  # the same cycle, after the 10 s backoff
        assert evaluated(project, "--lease", "--runner", "b", "--at", later) == []
        [digest] = rx.received
        assert digest["body"]["title"] == "2 incident notifications: 2 opened"
        assert cli(project, "check", "--lease", "--dry-run", "--at", later)[0] == 0


def test_a_plain_check_still_evaluates_everything(project: Path) -> None:
    """Without --lease, leases taken by other runners change nothing: a manual run sees all."""
    evaluated(project, "--lease", "--at", iso(AT) or "")
    assert evaluated(project, "--at", iso(AT) or "") == NAMES
    assert evaluated(project, "--at", iso(AT) or "", NAMES[3]) == [NAMES[3]]


def test_a_dry_run_claims_nothing(project: Path) -> None:
    """--dry-run --lease writes no claim, so the real run that follows evaluates everything."""
    assert evaluated(project, "--lease", "--dry-run", "--at", iso(AT) or "") == NAMES
    assert evaluated(project, "--lease", "--at", iso(AT) or "") == NAMES


def test_shards_split_the_checks_between_runners(project: Path) -> None:
    """--shard 1/2 and --shard 2/2 evaluate disjoint sets that together are all the checks."""
    first = evaluated(project, "--shard", "1/2", "--at", iso(AT) or "")
    second = evaluated(project, "--shard", "2/2", "--at", iso(AT) or "")
    assert sorted(first + second) == NAMES and not set(first) & set(second)
    code, _, err = cli(project, "check", "--shard", "3/2")
    assert code == 2 and "--shard takes I/N" in err


def test_a_dead_runners_claims_are_taken_over_after_the_ttl(project: Path) -> None:
    """Claims never marked done are free after lease_ttl; the new runner evaluates them once."""
    loaded = app.load(project)
    ttl = loaded.settings.lease_ttl
    with Store.connect(loaded.settings.store, root=project) as store:
        dead = runners.plan(loaded, store, (), now=AT, wall=AT, runner="dead", lease=True)
        assert sorted(dead.checks) == NAMES  # and then it died: no runners.run
        early = runners.plan(loaded, store, (), now=AT, wall=AT + ttl, runner="b", lease=True)
        assert early.checks == () and sorted(early.elsewhere) == NAMES
        late = AT + ttl + timedelta(seconds=1)
        heir = runners.plan(loaded, store, (), now=AT, wall=late, runner="heir", lease=True)
        assert sorted(heir.checks) == NAMES
        report = runners.run(app.engine(loaded, store), store, heir, AT, dry_run=False,
                             clock=lambda: late)
        assert sorted(r.check for r in report.results) == NAMES
        leases = store.leases()
        assert {(x.runner, x.takeovers, x.done) for x in leases} == {("heir", 1, True)}
        after = runners.plan(loaded, store, (), now=AT, wall=late + ttl * 10, runner="c",
                             lease=True)
        assert after.checks == ()


def test_lease_ttl_is_a_setting(project: Path) -> None:
    """`runners: {lease_ttl: …}` is read from incident.yaml; a bad value names the field."""
    assert app.load(project).settings.lease_ttl == timedelta(minutes=2)
    text = (project / "incident.yaml").read_text()
    (project / "incident.yaml").write_text(text.replace("lease_ttl: 2m", "lease_ttl: 45s"))
    assert app.load(project).settings.lease_ttl == timedelta(seconds=45)
    (project / "incident.yaml").write_text(text.replace("lease_ttl: 2m", "lease_ttl: soon"))
    with pytest.raises(ConfigError, match=r"runners.lease_ttl: expected a duration"):
        app.load(project)


def _set_version(project: Path, version: int, *, drop_leases: bool = False) -> None:
    engine = sa.create_engine(f"sqlite:///{project / '.incident' / 'incident.db'}")
    with engine.begin() as conn:
        if drop_leases:
            conn.exec_driver_sql("DROP TABLE incident_leases")
            conn.exec_driver_sql("DROP TABLE incident_outbox")  # versions 2 and 3 only
            conn.exec_driver_sql("DROP TABLE incident_silences")  # added tables
            conn.exec_driver_sql("DROP TABLE incident_action_items")  # and version 4
            conn.exec_driver_sql("DROP TABLE incident_postmortems")
            conn.exec_driver_sql("DROP TABLE IF EXISTS drill_runs")  # and version 5
        conn.execute(sa.update(meta).values(value=str(version)))
    engine.dispose()


def test_db_status_and_upgrade_walk_a_store_through_its_versions(project: Path) -> None:
    """status shows empty → current; an old store is refused by `check` until `db upgrade`."""
    code, out, _ = cli(project, "db", "status", "--json")
    assert code == 0 and json.loads(out) == {
        "url": f"sqlite:///{project / '.incident' / 'incident.db'}", "database_version": None,
        "code_version": SCHEMA_VERSION, "state": "empty"}
    assert cli(project, "db", "upgrade")[1] == f"schema created at version {SCHEMA_VERSION}\n"
    assert "up to date" in cli(project, "db", "status")[1]

    _set_version(project, 1, drop_leases=True)
    assert "run `incident db upgrade`" in cli(project, "db", "status")[1]
    code, _, err = cli(project, "check", "--at", iso(AT) or "")
    assert code == 4 and "schema version 1 is older" in err and "incident db upgrade" in err
    assert cli(project, "db", "upgrade")[1] == f"schema upgraded from version 1 to {SCHEMA_VERSION}\n"
    assert evaluated(project, "--lease", "--at", iso(AT) or "") == NAMES

    _set_version(project, SCHEMA_VERSION + 1)
    assert json.loads(cli(project, "db", "status", "--json")[1])["state"] == "newer"
    code, _, err = cli(project, "db", "upgrade")
    assert code == 4 and f"version {SCHEMA_VERSION + 1} is newer" in err
    assert f"this incident's schema version {SCHEMA_VERSION}" in err

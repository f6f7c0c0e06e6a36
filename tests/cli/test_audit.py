"""`otel-agents audit`: the tool-call audit log, exported and verified; tampering caught."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from clitools import StoryStore, cli, copy_store

GENESIS = "0" * 64


def records(store: Path, *args: str) -> list[dict[str, Any]]:
    result = cli(store, "audit", *args)
    assert result.code == 0, result.err
    return [json.loads(line) for line in result.out.splitlines()]


def documented_hash(record: dict[str, Any]) -> str:
    """The hash as docs/cli.md describes it, computed independently of the package."""
    body = {k: v for k, v in record.items() if k not in ("time", "prev_hash", "hash")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(record["prev_hash"].encode() + b"\n" + canonical.encode()).hexdigest()


def test_one_record_per_tool_call_with_who_what_why_and_verdict(story: StoryStore) -> None:
    log = records(story.path)
    runs = {r["run_id"]: r for r in cli(story.path, "runs", "--json").json()}
    assert len(log) == sum(r["tool_calls"] for r in runs.values())
    assert [r["seq"] for r in log] == list(range(1, len(log) + 1))
    mine = [r for r in log if r["run_id"] == story.ok_run]
    assert [r["tool"] for r in mine] == [
        "fetch_vendor_record", "lookup_tax_id", "verify_bank_account", "verify_bank_account",
        "verify_bank_account", "create_account", "grant_permission", "grant_permission",
    ]  # fmt: skip
    by_tool = {r["tool"]: r for r in mine}
    assert by_tool["fetch_vendor_record"]["agent"] == "intake"
    assert by_tool["create_account"]["agent"] == "provisioning"
    assert json.loads(by_tool["fetch_vendor_record"]["input"]) == {"vendor_id": "V-1042"}
    assert json.loads(by_tool["fetch_vendor_record"]["output"])["name"] == "Acme Robotics GmbH"
    assert by_tool["lookup_tax_id"]["reasoning"] == (
        "The tax id was missing; looking it up in the registry."
    )
    create = by_tool["create_account"]
    assert (create["verdict"], create["policy_rule"]) == ("require_approval", "irreversible-writes")
    assert (create["approval_status"], create["approver"]) == ("approved", "alice@example.com")
    denied, granted = (r for r in mine if r["tool"] == "grant_permission")
    assert (denied["verdict"], denied["status"], denied["output"]) == ("deny", "error", None)
    assert denied["policy_reason"] == "admin roles need a security review"
    assert (granted["verdict"], granted["status"]) == ("allow", "ok")
    assert [r["attempt"] for r in mine if r["tool"] == "verify_bank_account"] == [1, 2, 3]
    assert all(
        r["error_type"] == "TimeoutError" for r in mine if r["tool"] == "verify_bank_account"
    )


def test_records_are_chained_as_documented(story: StoryStore) -> None:
    log = records(story.path)
    previous = GENESIS
    for record in log:
        assert record["prev_hash"] == previous
        assert record["hash"] == documented_hash(record)
        previous = record["hash"]


def test_csv_holds_the_same_records(story: StoryStore, tmp_path: Path) -> None:
    target = tmp_path / "audit.csv"
    result = cli(story.path, "audit", "export", "--format", "csv", "-o", str(target))
    assert result.code == 0, result.err
    assert result.out == ""
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    log = records(story.path)
    assert f"wrote {len(log)} audit records to {target}" in result.err
    assert [row["hash"] for row in rows] == [r["hash"] for r in log]
    assert [row["input"] for row in rows] == [r["input"] or "" for r in log]
    assert list(rows[0]) == list(log[0])  # same columns, same order


def test_filters(story: StoryStore) -> None:
    def tools(*args: str) -> list[str]:
        return [r["tool"] for r in records(story.path, *args)]

    assert tools("--tool", "verify_bank_account") == ["verify_bank_account"] * 6
    assert tools("--verdict", "deny") == ["grant_permission"] * 2
    ok_run = records(story.path, "--run", story.ok_run[:8])
    assert {r["run_id"] for r in ok_run} == {story.ok_run} and len(ok_run) == 8
    assert set(tools("--agent", "intake")) == {"fetch_vendor_record", "lookup_tax_id"}
    assert set(tools("--status", "error")) == {"verify_bank_account", "grant_permission"}
    assert tools("--since", "2999-01-01") == []
    assert len(tools("--since", "1h", "--until", "2999-01-01")) == 16
    bad = cli(story.path, "audit", "--verdict", "maybe")
    assert bad.code == 2 and "invalid choice: 'maybe'" in bad.err
    unknown = cli(story.path, "audit", "--run", "ffffffff")
    assert unknown.code == 1 and "no run matches 'ffffffff'" in unknown.err


def test_an_intact_log_verifies_and_prints_its_head(story: StoryStore) -> None:
    result = cli(story.path, "audit", "verify")
    assert result.code == 0, result.err
    last = records(story.path)[-1]
    assert f"audit log intact: {last['seq']} records" in result.out
    assert f"head {last['seq']}:{last['hash']}" in result.out
    document = cli(story.path, "audit", "verify", "--json").json()
    assert document["ok"] is True and document["head_hash"] == last["hash"]


def _tampered(story: StoryStore, tmp_path: Path, *statements: str) -> Path:
    store = copy_store(story.path, tmp_path)
    with sqlite3.connect(store) as conn:
        for statement in statements:
            conn.execute(statement)
    return store


@pytest.mark.parametrize(
    ("statements", "bad_seq", "message"),
    [
        (["UPDATE audit SET output = '{\"granted\":\"no\"}' WHERE seq = 5"], 5,
         "record 5 does not match its hash"),
        (["UPDATE audit SET approver = 'mallory' WHERE seq = 6"], 6,
         "record 6 does not match its hash"),
        (["DELETE FROM audit WHERE seq = 7"], 7, "record 7 is missing"),
        (["DELETE FROM audit WHERE seq = 1"], 1, "record 1 is missing"),
        (["DELETE FROM audit WHERE seq >= 15"], 15, "records 15-16 are missing"),
        (["UPDATE audit SET seq = 100 WHERE seq = 3"], 3, "record 3 is missing"),
    ],
)  # fmt: skip
def test_altered_and_missing_records_are_named(
    story: StoryStore, tmp_path: Path, statements: list[str], bad_seq: int, message: str
) -> None:
    store = _tampered(story, tmp_path, *statements)
    result = cli(store, "audit", "verify")
    assert result.code == 1
    assert f"audit log broken at record {bad_seq}: {message}" in result.out
    document = cli(store, "audit", "verify", "--json").json()
    assert (document["ok"], document["bad_seq"]) == (False, bad_seq)


def test_a_record_rewritten_with_a_fresh_hash_is_still_caught(
    story: StoryStore, tmp_path: Path
) -> None:
    forged = records(story.path)[4]  # seq 5
    forged["input"] = json.dumps({"account_id": "acct_v-1042", "role": "owner"})
    new_hash = documented_hash(forged)
    store = _tampered(
        story,
        tmp_path,
        f"UPDATE audit SET input = '{forged['input']}', hash = '{new_hash}' WHERE seq = 5",
    )
    result = cli(store, "audit", "verify")
    assert result.code == 1
    assert "audit log broken at record 5: record 5 was changed and its hash recomputed" in (
        result.out
    )
    assert "tool verify_bank_account" in result.out  # which call it was


def test_verify_without_a_store_fails_clearly(tmp_path: Path) -> None:
    result = cli(tmp_path / "none.db", "audit", "verify")
    assert result.code == 1 and "no trace store at" in result.err

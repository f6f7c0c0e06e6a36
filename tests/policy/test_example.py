"""The vendor-onboarding example runs as documented and shows every kind of decision."""

from __future__ import annotations

import subprocess
import sys

from policy_helpers import ROOT


def test_the_vendor_onboarding_example_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "vendor_onboarding_policy.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    expected = [
        "email the vendor itself: STOPPED -> ToolCallDenied",
        "create the account: ok",
        "grant viewer: ok",
        "grant admin: STOPPED -> ToolCallDenied",
        "grant billing to 12 sub-accounts: STOPPED -> ApprovalRejected",
        "buy 3 licences ($12): ok",
        "sync the CRM (try 4): STOPPED -> ToolCallEscalated",
        "await_approval create_account  policy.rule=new-accounts-need-finance, "
        "approval.status=approved, approval.approver=finance@example.com",
        "! sync_crm failed 3 times with identical arguments",
        "policy.rule=welcome-email-trial, policy.mode=observe",
        "! send_welcome_email returned without raising, but the result has a non-empty "
        "'error' field",
        "handoff.checks.passed=[has_tax_id, screened], handoff.accepted=True",
    ]
    missing = [line for line in expected if line not in out]
    assert not missing, out

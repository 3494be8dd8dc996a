"""A pseudonymized capture (exporter/em/capture.py) keeps no customer word: default-deny on every text and
attribute value but numbers, times, truth values, GUIDs (pseudonymized) and schema enums."""

from __future__ import annotations

from exporter.em.capture import Answer, Capture, pseudonymize

SECRETS = ("ACME Corp", "acme-dr", "vbr01.acme.example", "10.20.30.40", "svc-backup@acme", "Plan Omega")
ERROR = (
    '<Error xmlns="http://www.veeam.com/ent/v1.0" StatusCode="400" Message="Plan Omega of tenant '
    'ACME Corp on vbr01.acme.example (10.20.30.40): account svc-backup@acme has no access"/>'
)
ODD = """<?xml version="1.0"?>
<CloudFailoverPlan xmlns="http://www.veeam.com/ent/v1.0" Type="CloudFailoverPlan" Name="Plan Omega"
    UID="urn:veeam:CloudFailoverPlan:0f4bb6f4-6c1e-4a2c-9f4e-1b2c3d4e5f60">
  <PlanName>Plan Omega</PlanName>
  <TenantRef Name="acme-dr" Href="https://em.acme.example:9398/api/cloud/tenants/1b2c3d4e-0000-4000-8000-000000000001"/>
  <HostName>vbr01.acme.example</HostName><IpAddress>10.20.30.40</IpAddress><DnsName>vbr01.acme.example</DnsName>
  <Comment>call ACME Corp at 555</Comment>
  <State>Working</State><Progress>42</Progress><CreationTimeUTC>2026-12-03T10:00:00Z</CreationTimeUTC>
  <VmCount>7</VmCount>
</CloudFailoverPlan>"""


def test_every_customer_word_is_gone_and_the_schema_stays() -> None:
    capture = Capture(
        "2026-12-03T10:00:00Z",
        "test",
        answers=[
            Answer("GET /cloud/cloudFailoverPlans", 200, "application/xml", ODD),
            Answer("POST /cloud/cloudFailoverPlans/x?action=start", 400, "application/xml", ERROR),
        ],
    )
    out = pseudonymize(capture)
    text = "".join(a.body + a.request for a in out.answers)
    for secret in SECRETS:
        assert secret not in text, secret
    body = out.answers[0].body
    kept_parts = (
        "<State>Working</State>",
        "<Progress>42</Progress>",
        "2026-12-03T10:00:00Z",
        "<VmCount>7</VmCount>",
    )
    for kept in kept_parts:
        assert kept in body, kept
    assert "0f4bb6f4-6c1e-4a2c-9f4e-1b2c3d4e5f60" not in body and "urn:veeam:CloudFailoverPlan:" in body
    assert 'Message="redacted"' in out.answers[1].body and 'StatusCode="400"' in out.answers[1].body

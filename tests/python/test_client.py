"""The hoso API driven from Python, with stubs generated from proto/ (see conftest.py).

The same dossier life as crates/hoso/tests/e2e/lifecycle.rs: received on Tuesday 9 June 2026
with 3 working days, digitized, a supplement asked for and received the next morning, appraised
and approved by the handling agency, paid online, an e-result issued, the result returned,
rated, and marked synced by an operator. Then the auditor's replay and chain check, and two
refusals (a receipt code received twice; no token).
"""

import itertools
import json
import os
import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from conftest import OWN_AGENCY

#: 08:30 on Tuesday 9 June 2026 in UTC+7.
START = datetime(2026, 6, 9, 8, 30, tzinfo=timezone(timedelta(hours=7)))

EVENT_TYPES = [
    "DossierReceived",
    "DossierDigitized",
    "SupplementRequested",
    "SupplementReceived",
    "DossierProcessed",
    "PaidOnline",
    "DossierProcessed",
    "EResultIssued",
    "ResultReturned",
    "SatisfactionRated",
    "SyncedToNationalPortal",
]

_sequence = itertools.count(1)


def receipt_code() -> str:
    """A fresh receipt code dated 9 June 2026, unique per run (from the pid) and per call."""
    n = os.getpid() % 1000 * 10_000 + next(_sequence)
    return f"G09.20-20260609-{n:07d}"


def timestamp(dt: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt.astimezone(timezone.utc))
    return ts


def to_utc(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=timezone.utc)


def header(pb, minutes: int):
    """A command header with a new command id, `minutes` after START."""
    return pb.desk.CommandHeader(
        command_id=str(uuid.uuid4()),
        occurred_at=timestamp(START + timedelta(minutes=minutes)),
    )


def by_code(pb, code: str):
    return pb.dossier.DossierRef(receipt_code=code)


def receive_request(pb, code: str, minutes: int = 0):
    """A receipt that names its procedure by code alone: the server takes the rest from its
    catalogue (see `catalogue`)."""
    d = pb.dossier
    return pb.desk.ReceiveDossierRequest(
        command=header(pb, minutes),
        receipt_code=code,
        procedure=d.Procedure(code="1.001234"),
        handling_agency=OWN_AGENCY,
        channel=d.CHANNEL_ONLINE,
        applicant_ref=str(uuid.uuid4()),
    )


@pytest.fixture(scope="module")
def catalogue(pb, server):
    """The province's catalogue, as an operator loads it: one procedure, 3 working days."""
    d = pb.dossier
    stub = pb.admin_grpc.AdminServiceStub(server.channel())
    answer = stub.LoadCatalogue(
        pb.admin.LoadCatalogueRequest(
            decision="100/QĐ-UBND",
            effective_from="2026-01-01",
            entries=[
                pb.reference.CatalogueEntry(
                    code="1.001234",
                    name="Cấp giấy phép xây dựng",
                    statutory_time=d.StatutoryTime(amount=3, unit=d.TIME_UNIT_WORKING_DAYS),
                    fee_vnd=50_000,
                    full_online_eligible=True,
                    paper_result=True,
                    handling_agencies=[OWN_AGENCY],
                )
            ],
            load_id="7d1f0c4e-2a55-4d8e-9f3b-6c0a1e2b3c4d",
        ),
        metadata=server.metadata("operator"),
        timeout=30,
    )
    return answer.catalogue


@pytest.fixture(scope="module")
def lifecycle(pb, server, catalogue):
    """One dossier's whole life; (receipt code, the 11 command outcomes)."""
    desk_pb = pb.desk
    code = receipt_code()
    ref = by_code(pb, code)
    stub = pb.desk_grpc.DeskServiceStub(server.channel())
    desk = server.metadata("desk_officer")
    agency = server.metadata("agency_officer")
    operator = server.metadata("operator")
    hour = 60
    steps = [
        (stub.ReceiveDossier, desk, receive_request(pb, code)),
        (
            stub.DigitizeDossier,
            desk,
            desk_pb.DigitizeDossierRequest(
                command=header(pb, 10),
                dossier=ref,
                files=[desk_pb.ComponentFile(component="Đơn đề nghị", content_hash="ab" * 32)],
            ),
        ),
        (
            stub.RequestSupplement,
            desk,
            desk_pb.RequestSupplementRequest(
                command=header(pb, 20), dossier=ref, missing_components=["Bản vẽ thiết kế"]
            ),
        ),
        (
            stub.ReceiveSupplement,
            desk,
            desk_pb.ReceiveSupplementRequest(command=header(pb, 24 * hour), dossier=ref),
        ),
        (
            stub.ProcessDossier,
            agency,
            desk_pb.ProcessDossierRequest(
                command=header(pb, 25 * hour), dossier=ref, step=desk_pb.PROCESSING_STEP_APPRAISED
            ),
        ),
        (
            stub.RecordOnlinePayment,
            desk,
            desk_pb.RecordOnlinePaymentRequest(
                command=header(pb, 26 * hour),
                dossier=ref,
                amount_vnd=50_000,
                gateway=desk_pb.PAYMENT_GATEWAY_NATIONAL_PORTAL,
                transaction_ref=f"TX-{26 * hour}",
            ),
        ),
        (
            stub.ProcessDossier,
            agency,
            desk_pb.ProcessDossierRequest(
                command=header(pb, 27 * hour), dossier=ref, step=desk_pb.PROCESSING_STEP_APPROVED
            ),
        ),
        (
            stub.IssueEResult,
            agency,
            desk_pb.IssueEResultRequest(
                command=header(pb, 28 * hour),
                dossier=ref,
                result_id=f"KQ-{code}",
                content_hash="cd" * 32,
                signer="signer.g18",
            ),
        ),
        (
            stub.ReturnResult,
            desk,
            desk_pb.ReturnResultRequest(
                command=header(pb, 29 * hour), dossier=ref, method=desk_pb.RETURN_METHOD_ONLINE
            ),
        ),
        (
            stub.RecordRating,
            desk,
            desk_pb.RecordRatingRequest(
                command=header(pb, 30 * hour), dossier=ref, rating=pb.dossier.SATISFACTION_SATISFIED
            ),
        ),
        (
            stub.MarkSynced,
            operator,
            desk_pb.MarkSyncedRequest(command=header(pb, 31 * hour), dossier=ref, status=pb.dossier.DOSSIER_STATUS_RESULT_RETURNED),
        ),
    ]
    outcomes = []
    for rpc, metadata, request in steps:
        response = rpc(request, metadata=metadata, timeout=30)
        assert response.HasField("outcome"), f"{type(request).__name__}: no outcome"
        outcomes.append(response.outcome)
    return code, outcomes


def test_a_dossier_lives_its_whole_life(pb, server, lifecycle):
    code, outcomes = lifecycle
    receipt = outcomes[0]
    assert receipt.status == pb.dossier.DOSSIER_STATUS_RECEIVED
    # Received Tuesday 9 June 2026 with 3 working days: due Friday 12 June, 17:00 (UTC+7).
    assert to_utc(receipt.due_at).isoformat() == "2026-06-12T10:00:00+00:00"
    assert [o.version for o in outcomes] == list(range(11))
    positions = [o.position for o in outcomes]
    assert positions == sorted(set(positions)), positions
    assert all(not o.replayed and o.receipt_code == code for o in outcomes)
    assert all(o.dossier_id == receipt.dossier_id for o in outcomes)
    assert outcomes[-1].status == pb.dossier.DOSSIER_STATUS_RESULT_RETURNED

    # The supplement pause (9 June 08:50 to 10 June 08:30: 1 working day) moved the due date.
    query = pb.dossier_grpc.DossierQueryServiceStub(server.channel())
    dossier = query.GetDossier(
        pb.dossier.GetDossierRequest(dossier=pb.dossier.DossierRef(dossier_id=receipt.dossier_id)),
        metadata=server.metadata("desk_officer"),
        timeout=30,
    ).dossier
    assert dossier.receipt_code == code
    assert dossier.version == 10
    assert dossier.status == pb.dossier.DOSSIER_STATUS_RESULT_RETURNED
    assert dossier.channel == pb.dossier.CHANNEL_ONLINE
    assert dossier.paid_online_vnd == 50_000
    assert dossier.satisfaction == pb.dossier.SATISFACTION_SATISFIED
    assert list(dossier.missing_components) == []
    assert to_utc(dossier.due_at).isoformat() == "2026-06-15T10:00:00+00:00", "moved by 1 day"
    assert dossier.deadline.state == pb.dossier.DEADLINE_STATE_FINISHED_ON_TIME


def test_the_auditor_replays_it_and_the_chain_verifies(pb, server, lifecycle):
    code, outcomes = lifecycle
    audit = pb.audit_grpc.AuditServiceStub(server.channel())
    auditor = server.metadata("auditor")
    items = list(
        audit.ReplayDossier(
            pb.audit.ReplayDossierRequest(dossier=by_code(pb, code)), metadata=auditor, timeout=30
        )
    )
    assert len(items) == 11
    assert [i.event.event_type for i in items] == EVENT_TYPES
    for item, outcome in zip(items, outcomes, strict=True):
        event = item.event
        assert (event.version, event.position) == (outcome.version, outcome.position), event
        assert len(event.hash) == 64
        assert "occurred_at" in json.loads(event.data_json)
        assert isinstance(json.loads(event.metadata_json)["command_id"], str)
        assert item.dossier_after.version == event.version
    assert items[0].event.event_id == outcomes[0].dossier_id
    assert items[0].event.actor == "dev.desk-officer"
    assert items[4].event.actor == "dev.agency-officer"
    assert json.loads(items[5].event.data_json)["amount_vnd"] == 50_000

    verified = audit.VerifyChain(
        pb.audit.VerifyChainRequest(dossier=by_code(pb, code)), metadata=auditor, timeout=30
    )
    assert verified.ok and verified.records_checked == 11, verified
    assert not verified.HasField("first_problem"), verified


def test_a_receipt_code_is_received_only_once(pb, server, lifecycle):
    code, _ = lifecycle
    stub = pb.desk_grpc.DeskServiceStub(server.channel())
    # A new command id: not a retry, a second receipt.
    with pytest.raises(grpc.RpcError) as refused:
        stub.ReceiveDossier(
            receive_request(pb, code),
            metadata=server.metadata("desk_officer"),
            timeout=30,
        )
    call = refused.value
    assert call.code() == grpc.StatusCode.FAILED_PRECONDITION, call.details()
    status = rpc_status.from_call(call)
    assert status is not None, "no google.rpc.Status in the trailers"
    reasons = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reasons.append(info.reason)
    assert reasons == ["dossier-already-received"], status


def test_the_receipt_took_its_values_from_the_catalogue(pb, server, lifecycle, catalogue):
    code, _ = lifecycle
    stub = pb.dossier_grpc.DossierQueryServiceStub(server.channel())
    dossier = stub.GetDossier(
        pb.dossier.GetDossierRequest(dossier=by_code(pb, code)),
        metadata=server.metadata("auditor"),
        timeout=30,
    ).dossier
    assert dossier.procedure_source == pb.dossier.PROCEDURE_SOURCE_CATALOGUE
    assert dossier.catalogue.decision == "100/QĐ-UBND"
    assert dossier.catalogue.version == catalogue.version
    assert dossier.procedure.fee_vnd == 50_000
    assert [(c.year, c.provisional) for c in dossier.due_at_calendars] == [(2026, False)]


def test_a_value_that_differs_from_the_catalogue_is_refused(pb, server, catalogue):
    request = receive_request(pb, receipt_code())
    request.procedure.fee_vnd = 1
    stub = pb.desk_grpc.DeskServiceStub(server.channel())
    with pytest.raises(grpc.RpcError) as refused:
        stub.ReceiveDossier(request, metadata=server.metadata("desk_officer"), timeout=30)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "procedure.fee_vnd" in refused.value.details()
    assert "100/QĐ-UBND" in refused.value.details()


def test_a_request_without_a_token_is_unauthenticated(pb, server):
    stub = pb.desk_grpc.DeskServiceStub(server.channel())
    with pytest.raises(grpc.RpcError) as refused:
        stub.ReceiveDossier(receive_request(pb, receipt_code()), timeout=30)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused.value.details()

//! Given/when/then tests for every rule of [`decide`] and every rejection: given the commands
//! already accepted, when a command arrives, then these events (or this rejection).

use expect_test::{Expect, expect};

use super::{Context, decide};
use crate::calendar::BusinessCalendar;
use crate::codes::ProcedureCode;
use crate::command::*;
use crate::dossier::DossierState;
use crate::event::ProcessingStep;
use crate::procedure::{GreenLane, StatutoryTime};
use crate::tests::*;

fn green_lane() -> GreenLane {
    GreenLane::new().with(
        ProcedureCode::parse("code", "2.000815").unwrap(),
        StatutoryTime::working_hours(4),
    )
}

/// Folds the events of `given` (each must be accepted), then renders the decision on `when`.
fn check(given: impl IntoIterator<Item = Command>, when: impl Into<Command>, expect: Expect) {
    let calendar = BusinessCalendar::vietnam();
    let green_lane = green_lane();
    let ctx = Context::new(vn(NOW), &calendar, &green_lane);
    let mut state = DossierState::new();
    for command in given {
        let events =
            decide(&state, &command, &ctx).unwrap_or_else(|err| panic!("given {command:?} was rejected: {err}"));
        state = events.iter().fold(state, crate::evolve);
    }
    let actual = match decide(&state, &when.into(), &ctx) {
        Ok(events) => events
            .iter()
            .map(|event| {
                format!(
                    "{} v{} {}\n",
                    event.event_type(),
                    event.schema_version(),
                    event.to_json()
                )
            })
            .collect::<String>(),
        Err(err) => format!("rejected [{}]: {err}\n", err.rule()),
    };
    expect.assert_eq(&actual);
}

// Receipt.

#[test]
fn receiving_computes_the_due_date() {
    check(
        [],
        receive(),
        expect![[r#"
            DossierReceived v2 {"applicant":"00000000-0000-0000-0000-000000005eed","calendars":[{"provisional":false,"version":1,"year":2026}],"catalogue":null,"channel":2,"due_at":"2026-06-11T10:00:00Z","effective_time":{"amount":3,"unit":"working_days"},"green_lane":false,"handling_agency":"000.00.20.H28","occurred_at":"2026-06-08T02:00:00Z","procedure":{"code":"1.001234","fee_vnd":50000,"full_online_eligible":true,"name":"Đăng ký khai sinh","paper_result":true,"statutory_time":{"amount":3,"unit":"working_days"}},"procedure_source":"declared","receipt_code":"G09.20-20260608-0092637","receiving_desk":"000.00.04.G18"}
        "#]],
    );
}

#[test]
fn green_lane_procedures_use_their_shortened_time() {
    let mut command = receive_at("2026-06-08 10:00");
    command.procedure.code = "2.000815".into();
    check(
        [],
        command,
        expect![[r#"
            DossierReceived v2 {"applicant":"00000000-0000-0000-0000-000000005eed","calendars":[{"provisional":false,"version":1,"year":2026}],"catalogue":null,"channel":2,"due_at":"2026-06-08T08:00:00Z","effective_time":{"amount":4,"unit":"working_hours"},"green_lane":true,"handling_agency":"000.00.20.H28","occurred_at":"2026-06-08T03:00:00Z","procedure":{"code":"2.000815","fee_vnd":50000,"full_online_eligible":true,"name":"Đăng ký khai sinh","paper_result":true,"statutory_time":{"amount":3,"unit":"working_days"}},"procedure_source":"declared","receipt_code":"G09.20-20260608-0092637","receiving_desk":"000.00.04.G18"}
        "#]],
    );
}

#[test]
fn a_dossier_is_received_once() {
    check(
        [receive()],
        receive(),
        expect![[r#"
        rejected [dossier-already-received]: the dossier has already been received
    "#]],
    );
}

#[test]
fn nothing_happens_before_receipt() {
    check(
        [],
        digitize("2026-06-08 10:00", false),
        expect![[r#"
        rejected [dossier-not-received]: the dossier has not been received yet; receive it first
    "#]],
    );
    check(
        [],
        sync("2026-06-08 10:00"),
        expect![[r#"
        rejected [dossier-not-received]: the dossier has not been received yet; receive it first
    "#]],
    );
}

#[test]
fn receipt_fields_are_checked_in_the_officers_words() {
    let bad = |edit: fn(&mut ReceiveDossier)| {
        let mut command = receive_at("2026-06-08 09:00");
        edit(&mut command);
        command
    };
    check(
        [],
        bad(|c| c.receipt_code = "G09.20-2026068-0092637".into()),
        expect![[r#"
        rejected [invalid-field]: receipt_code: "G09.20-2026068-0092637" is not a receipt code like G09.20-20260609-0092637 (unit, date YYYYMMDD, 7-digit sequence)
    "#]],
    );
    check(
        [],
        bad(|c| c.procedure.code = "1.00123".into()),
        expect![[r#"
        rejected [invalid-field]: procedure.code: "1.00123" is not a procedure code like 1.001234 (a digit, a dot, six digits)
    "#]],
    );
    check(
        [],
        bad(|c| c.procedure.name = Some("  ".into())),
        expect![[r#"
        rejected [invalid-field]: procedure.name: is required
    "#]],
    );
    check(
        [],
        bad(|c| c.procedure.statutory_time = Some(StatutoryTime::working_days(0))),
        expect![[r#"
        rejected [invalid-field]: procedure.statutory_time: 0 is not a processing time; give between 1 and 3650
    "#]],
    );
    check(
        [],
        bad(|c| c.procedure.fee_vnd = Some(-1)),
        expect![[r#"
        rejected [invalid-field]: procedure.fee_vnd: -1 VND is negative; give the fee in whole VND, 0 when free
    "#]],
    );
    check(
        [],
        bad(|c| c.receiving_desk = "000.00.04.g18".into()),
        expect![[r#"
        rejected [invalid-field]: receiving_desk: "000.00.04.g18" is not an agency code like 000.00.04.G18 (2 to 6 dot-separated groups of upper-case letters or digits)
    "#]],
    );
    check(
        [],
        bad(|c| c.handling_agency = "UBND".into()),
        expect![[r#"
        rejected [invalid-field]: handling_agency: "UBND" is not an agency code like 000.00.04.G18 (2 to 6 dot-separated groups of upper-case letters or digits)
    "#]],
    );
    check(
        [],
        bad(|c| c.receipt_code = "G09.20-20260609-0092637".into()),
        expect![[r#"
        rejected [receipt-code-date-is-receipt-date]: receipt_code: its date 2026-06-09 differs from the date of receipt 2026-06-08
    "#]],
    );
}

#[test]
fn the_receipt_date_is_the_local_date() {
    // 23:30 in Hà Nội is 16:30 UTC the same day; 06:30 is 23:30 UTC the day before.
    let late = receive_at("2026-06-08 23:30");
    let early = receive_at("2026-06-09 06:30");
    for command in [late, early] {
        let calendar = BusinessCalendar::vietnam();
        let green_lane = GreenLane::new();
        let events = decide(
            &DossierState::new(),
            &command.clone().into(),
            &Context::new(vn(NOW), &calendar, &green_lane),
        );
        assert!(events.is_ok(), "{command:?}: {events:?}");
    }
}

#[test]
fn due_dates_need_a_loaded_calendar() {
    // 2027 has no notice: the due date is computed on its provisional table.
    let mut command = receive_at("2026-12-30 09:00");
    command.procedure.statutory_time = Some(StatutoryTime::working_days(5));
    check(
        [],
        command,
        expect![[r#"
            DossierReceived v2 {"applicant":"00000000-0000-0000-0000-000000005eed","calendars":[{"provisional":false,"version":1,"year":2026},{"provisional":true,"version":0,"year":2027}],"catalogue":null,"channel":2,"due_at":"2027-01-07T10:00:00Z","effective_time":{"amount":5,"unit":"working_days"},"green_lane":false,"handling_agency":"000.00.20.H28","occurred_at":"2026-12-30T02:00:00Z","procedure":{"code":"1.001234","fee_vnd":50000,"full_online_eligible":true,"name":"Đăng ký khai sinh","paper_result":true,"statutory_time":{"amount":5,"unit":"working_days"}},"procedure_source":"declared","receipt_code":"G09.20-20261230-0092637","receiving_desk":"000.00.04.G18"}
        "#]],
    );
    // A year outside the provisional range (1900-2199) needs a notice.
    let mut command = receive_at("1899-12-31 09:00");
    command.procedure.statutory_time = Some(StatutoryTime::working_hours(4));
    check(
        [],
        command,
        expect![[r#"
        rejected [calendar-loaded]: no working-day calendar for 1899: provisional calendars cover only 1900 to 2199; check the date, or have an administrator load that year's holiday notice
    "#]],
    );
}

// Time of the fact.

#[test]
fn occurred_at_is_never_in_the_future_beyond_the_skew() {
    check(
        [],
        receive_at("2026-12-31 20:06"),
        expect![[r#"
        rejected [occurred-at-not-in-future]: occurred_at 2026-12-31 20:06 (UTC+7) is in the future (now 2026-12-31 20:00 (UTC+7))
    "#]],
    );
    check(
        [receive()],
        sync("2026-12-31 20:04"),
        expect![[r#"
        SyncedToNationalPortal v1 {"occurred_at":"2026-12-31T13:04:00Z","status":10}
    "#]],
    );
}

#[test]
fn occurred_at_is_never_before_the_previous_event() {
    check(
        [receive(), step("2026-06-09 10:00", ProcessingStep::Appraised)],
        approve("2026-06-09 09:59"),
        expect![[r#"
        rejected [occurred-at-not-before-previous]: occurred_at 2026-06-09 09:59 (UTC+7) is before the dossier's previous event at 2026-06-09 10:00 (UTC+7)
    "#]],
    );
    // Keyed in later, at the same instant as the previous event: accepted.
    check(
        [receive(), step("2026-06-09 10:00", ProcessingStep::Appraised)],
        approve("2026-06-09 10:00"),
        expect![[r#"
        DossierProcessed v1 {"occurred_at":"2026-06-09T03:00:00Z","officer":"cb.nguyen","reason":null,"step":"approved","to_unit":null}
    "#]],
    );
}

// Processing.

#[test]
fn processing_steps_are_recorded_with_their_required_fields() {
    check(
        [receive()],
        step("2026-06-08 10:00", ProcessingStep::Transferred),
        expect![[r#"
        DossierProcessed v1 {"occurred_at":"2026-06-08T03:00:00Z","officer":"cb.nguyen","reason":null,"step":"transferred","to_unit":"000.00.20.H28"}
    "#]],
    );
    let transfer_nowhere = ProcessDossier {
        occurred_at: vn("2026-06-08 10:00"),
        step: ProcessingStep::Transferred,
        officer: "cb.nguyen".into(),
        to_unit: None,
        reason: None,
    };
    check(
        [receive()],
        transfer_nowhere.clone(),
        expect![[r#"
        rejected [invalid-field]: to_unit: a transfer needs the unit the dossier goes to
    "#]],
    );
    let stop_without_reason = ProcessDossier {
        step: ProcessingStep::Stopped,
        ..transfer_nowhere.clone()
    };
    check(
        [receive()],
        stop_without_reason,
        expect![[r#"
        rejected [invalid-field]: reason: stopping processing needs a reason
    "#]],
    );
    let nobody = ProcessDossier {
        step: ProcessingStep::Appraised,
        officer: "".into(),
        ..transfer_nowhere
    };
    check(
        [receive()],
        nobody,
        expect![[r#"
        rejected [invalid-field]: officer: is required
    "#]],
    );
}

#[test]
fn nothing_is_processed_after_processing_finished() {
    check(
        [receive(), approve("2026-06-09 10:00")],
        step("2026-06-09 11:00", ProcessingStep::Appraised),
        expect![[r#"
        rejected [processing-finished]: processing has already finished (approved or stopped)
    "#]],
    );
    check(
        [receive(), step("2026-06-09 10:00", ProcessingStep::Stopped)],
        approve("2026-06-09 11:00"),
        expect![[r#"
        rejected [processing-finished]: processing has already finished (approved or stopped)
    "#]],
    );
    check(
        [receive(), approve("2026-06-09 10:00")],
        request_supplement("2026-06-09 11:00"),
        expect![[r#"
        rejected [processing-finished]: processing has already finished (approved or stopped)
    "#]],
    );
    check(
        [receive(), approve("2026-06-09 10:00")],
        apology("2026-06-09 11:00", "2026-06-20 17:00"),
        expect![[r#"
        rejected [processing-finished]: processing has already finished (approved or stopped)
    "#]],
    );
}

// Supplements.

#[test]
fn a_supplement_request_pauses_processing() {
    check(
        [receive()],
        request_supplement("2026-06-09 10:00"),
        expect![[r#"
        SupplementRequested v1 {"missing_components":["Giấy chứng sinh"],"occurred_at":"2026-06-09T03:00:00Z","officer":"cb.nguyen"}
    "#]],
    );
    check(
        [receive(), request_supplement("2026-06-09 10:00")],
        approve("2026-06-10 10:00"),
        expect![[r#"
        rejected [paused-for-supplement]: processing is paused: a supplement request is waiting for the applicant
    "#]],
    );
    check(
        [receive(), request_supplement("2026-06-09 10:00")],
        request_supplement("2026-06-10 10:00"),
        expect![[r#"
        rejected [one-open-supplement-request]: a supplement request is already open; record the supplement received first
    "#]],
    );
    let nothing_missing = RequestSupplement {
        occurred_at: vn("2026-06-09 10:00"),
        missing_components: vec![],
        officer: "cb.nguyen".into(),
    };
    check(
        [receive()],
        nothing_missing,
        expect![[r#"
        rejected [invalid-field]: missing_components: list every missing component, all at once
    "#]],
    );
}

#[test]
fn the_supplement_moves_the_due_date_by_the_working_days_waited() {
    // Due Thu 11/6 17:00; waited Tue 9/6 and Wed 10/6: due Mon 15/6 17:00 (10:00 UTC).
    check(
        [receive(), request_supplement("2026-06-09 10:00")],
        receive_supplement("2026-06-11 09:00"),
        expect![[r#"
            SupplementReceived v2 {"calendars":[{"provisional":false,"version":1,"year":2026}],"due_at":"2026-06-15T10:00:00Z","occurred_at":"2026-06-11T02:00:00Z"}
        "#]],
    );
    check(
        [receive()],
        receive_supplement("2026-06-11 09:00"),
        expect![[r#"
        rejected [supplement-needs-request]: no supplement request is open for this dossier
    "#]],
    );
}

#[test]
fn a_second_supplement_request_is_recorded() {
    // It happens, so it is recorded; it makes the dossier overdue (see the deadline tests).
    check(
        [
            receive(),
            request_supplement("2026-06-09 10:00"),
            receive_supplement("2026-06-10 10:00"),
        ],
        request_supplement("2026-06-11 10:00"),
        expect![[r#"
            SupplementRequested v1 {"missing_components":["Giấy chứng sinh"],"occurred_at":"2026-06-11T03:00:00Z","officer":"cb.nguyen"}
        "#]],
    );
}

// Results.

#[test]
fn an_e_result_needs_approval_and_is_issued_once() {
    check(
        [receive()],
        e_result("2026-06-09 10:00"),
        expect![[r#"
        rejected [e-result-needs-approval]: the dossier has not been approved; an e-result or a digitized result needs approval
    "#]],
    );
    check(
        [receive(), step("2026-06-09 09:00", ProcessingStep::Stopped)],
        e_result("2026-06-09 10:00"),
        expect![[r#"
        rejected [e-result-needs-approval]: the dossier has not been approved; an e-result or a digitized result needs approval
    "#]],
    );
    check(
        [receive(), approve("2026-06-09 09:00")],
        e_result("2026-06-09 10:00"),
        expect![[r#"
        EResultIssued v1 {"content_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","occurred_at":"2026-06-09T03:00:00Z","result_id":"KQ-2026-000123","signer":"ubnd.phuong.a"}
    "#]],
    );
    check(
        [receive(), approve("2026-06-09 09:00"), e_result("2026-06-09 10:00")],
        e_result("2026-06-09 11:00"),
        expect![[r#"
        rejected [one-e-result]: an e-result has already been issued for this dossier
    "#]],
    );
    let unhashed = IssueEResult {
        occurred_at: vn("2026-06-09 10:00"),
        result_id: "KQ-1".into(),
        content_hash: HASH.to_uppercase(),
        signer: "ubnd.phuong.a".into(),
    };
    check(
        [receive(), approve("2026-06-09 09:00")],
        unhashed,
        expect![[r#"
        rejected [invalid-field]: content_hash: "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08" is not a SHA-256 hash (64 lower-case hexadecimal digits)
    "#]],
    );
}

#[test]
fn the_result_is_returned_once_processing_finished() {
    check(
        [receive()],
        return_result("2026-06-09 10:00"),
        expect![[r#"
        rejected [return-needs-finished-processing]: the result can be returned only after processing has finished (approved or stopped)
    "#]],
    );
    check(
        [receive(), approve("2026-06-09 09:00")],
        return_result("2026-06-09 10:00"),
        expect![[r#"
        ResultReturned v1 {"method":"at_desk","occurred_at":"2026-06-09T03:00:00Z"}
    "#]],
    );
    // A stop ends processing too; its written answer is returned.
    check(
        [receive(), step("2026-06-09 09:00", ProcessingStep::Stopped)],
        return_result("2026-06-09 10:00"),
        expect![[r#"
        ResultReturned v1 {"method":"at_desk","occurred_at":"2026-06-09T03:00:00Z"}
    "#]],
    );
}

// Digitization.

#[test]
fn digitization_records_files_and_reuse() {
    check(
        [receive()],
        digitize("2026-06-08 10:00", false),
        expect![[r#"
        DossierDigitized v1 {"files":[{"component":"Tờ khai","content_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}],"occurred_at":"2026-06-08T03:00:00Z","result_digitized":false,"reused":[{"component":"CCCD","source":"CSDL quốc gia về dân cư"}]}
    "#]],
    );
    check(
        [receive()],
        digitize("2026-06-08 10:00", true),
        expect![[r#"
        rejected [e-result-needs-approval]: the dossier has not been approved; an e-result or a digitized result needs approval
    "#]],
    );
    let empty = DigitizeDossier {
        occurred_at: vn("2026-06-08 10:00"),
        files: vec![],
        reused: vec![],
        result_digitized: false,
    };
    check(
        [receive()],
        empty,
        expect![[r#"
        rejected [invalid-field]: files: nothing to record; give at least one file, one reused component or the digitized result
    "#]],
    );
}

// Payment.

#[test]
fn online_payments_are_whole_vnd_within_the_fee() {
    check(
        [receive()],
        pay("2026-06-08 10:00", 50_000),
        expect![[r#"
        PaidOnline v2 {"amount_vnd":50000,"gateway":"national_portal","occurred_at":"2026-06-08T03:00:00Z","transaction_ref":"PAY-778899"}
    "#]],
    );
    check(
        [receive()],
        pay("2026-06-08 10:00", 0),
        expect![[r#"
        rejected [invalid-field]: amount_vnd: 0 VND is not a payment; give a positive whole number of VND
    "#]],
    );
    check(
        [receive(), pay("2026-06-08 10:00", 30_000)],
        pay("2026-06-08 10:05", 30_000),
        expect![[r#"
        rejected [payment-within-fee]: amount_vnd: paying 30000 VND would bring the total paid online to more than the fee of 50000 VND (already paid 30000 VND)
    "#]],
    );
    let mut free = receive_at("2026-06-08 09:00");
    free.procedure.fee_vnd = Some(0);
    check(
        [free.into()],
        pay("2026-06-08 10:00", 1),
        expect![[r#"
        rejected [payment-needs-fee]: the procedure has no fee; there is nothing to pay online
    "#]],
    );
}

// Apology letters.

#[test]
fn an_apology_sets_a_new_appointment_after_the_due_date() {
    check(
        [receive()],
        apology("2026-06-10 10:00", "2026-06-16 17:00"),
        expect![[r#"
        ApologySent v1 {"letter_number":"12/PXL","new_appointment_at":"2026-06-16T10:00:00Z","occurred_at":"2026-06-10T03:00:00Z","reason":"chờ xác minh"}
    "#]],
    );
    check(
        [receive()],
        apology("2026-06-10 10:00", "2026-06-11 17:00"),
        expect![[r#"
        rejected [apology-date-after-due-date]: new_appointment_at: 2026-06-11 17:00 (UTC+7) must be after 2026-06-11 17:00 (UTC+7)
    "#]],
    );
    // More than one letter is allowed and counted, each promising later than the last.
    check(
        [receive(), apology("2026-06-10 10:00", "2026-06-16 17:00")],
        apology("2026-06-16 10:00", "2026-06-15 17:00"),
        expect![[r#"
        rejected [apology-date-after-due-date]: new_appointment_at: 2026-06-15 17:00 (UTC+7) must be after 2026-06-16 17:00 (UTC+7)
    "#]],
    );
    check(
        [receive(), apology("2026-06-10 10:00", "2026-06-16 17:00")],
        apology("2026-06-16 10:00", "2026-06-19 17:00"),
        expect![[r#"
        ApologySent v1 {"letter_number":"12/PXL","new_appointment_at":"2026-06-19T10:00:00Z","occurred_at":"2026-06-16T03:00:00Z","reason":"chờ xác minh"}
    "#]],
    );
}

// Closure.

#[test]
fn nothing_after_close_but_a_rating_after_return_or_a_sync() {
    let returned = || {
        [
            receive(),
            approve("2026-06-09 09:00"),
            return_result("2026-06-09 10:00"),
        ]
    };
    check(
        returned(),
        digitize("2026-06-09 11:00", true),
        expect![[r#"
        rejected [nothing-after-close]: the dossier is closed (10 result returned); only a satisfaction rating after return or a national portal sync may be recorded
    "#]],
    );
    check(
        returned(),
        rate("2026-06-09 11:00"),
        expect![[r#"
        SatisfactionRated v1 {"occurred_at":"2026-06-09T04:00:00Z","rating":"satisfied"}
    "#]],
    );
    check(
        returned(),
        sync("2026-06-09 11:00"),
        expect![[r#"
        SyncedToNationalPortal v1 {"occurred_at":"2026-06-09T04:00:00Z","status":10}
    "#]],
    );
    check(
        [receive(), withdraw("2026-06-09 10:00")],
        rate("2026-06-09 11:00"),
        expect![[r#"
        rejected [nothing-after-close]: the dossier is closed (7 withdrawn); only a satisfaction rating after return or a national portal sync may be recorded
    "#]],
    );
    check(
        [receive(), refuse("2026-06-08 09:30")],
        pay("2026-06-08 10:00", 50_000),
        expect![[r#"
        rejected [nothing-after-close]: the dossier is closed (3 refused at intake); only a satisfaction rating after return or a national portal sync may be recorded
    "#]],
    );
    check(
        [receive(), withdraw("2026-06-09 10:00")],
        withdraw("2026-06-09 11:00"),
        expect![[r#"
        rejected [nothing-after-close]: the dossier is closed (7 withdrawn); only a satisfaction rating after return or a national portal sync may be recorded
    "#]],
    );
}

#[test]
fn a_rating_follows_the_return_once() {
    check(
        [receive(), approve("2026-06-09 09:00")],
        rate("2026-06-09 11:00"),
        expect![[r#"
        rejected [rating-after-return]: satisfaction can be rated only after the result has been returned
    "#]],
    );
    check(
        [
            receive(),
            approve("2026-06-09 09:00"),
            return_result("2026-06-09 10:00"),
            rate("2026-06-09 11:00"),
        ],
        rate("2026-06-09 12:00"),
        expect![[r#"
            rejected [one-rating]: the dossier has already been rated
        "#]],
    );
}

#[test]
fn withdrawal_is_possible_until_closed_even_while_waiting() {
    check(
        [receive(), request_supplement("2026-06-09 10:00")],
        withdraw("2026-06-20 10:00"),
        expect![[r#"
        Withdrawn v1 {"occurred_at":"2026-06-20T03:00:00Z","reason":"không có nhu cầu"}
    "#]],
    );
    check(
        [receive()],
        Withdraw {
            occurred_at: vn("2026-06-09 10:00"),
            reason: "x".repeat(1001),
        },
        expect![[r#"
        rejected [invalid-field]: reason: is 1001 characters long; at most 1000
    "#]],
    );
}

#[test]
fn refusal_is_only_at_intake() {
    check(
        [receive()],
        refuse("2026-06-08 09:30"),
        expect![[r#"
        RefusedAtIntake v1 {"occurred_at":"2026-06-08T02:30:00Z","officer":"cb.tran","reason":"sai thủ tục"}
    "#]],
    );
    check(
        [receive(), step("2026-06-08 10:00", ProcessingStep::Transferred)],
        refuse("2026-06-08 11:00"),
        expect![[r#"
        rejected [refusal-only-at-intake]: the dossier can no longer be refused at intake: processing has started
    "#]],
    );
}

// Receipt from the catalogue.

/// A catalogue of two decisions: 1.001234 at 20 working days from 1/1/2026, amended to 15 from
/// 1/7/2026; 2.000815 in the green lane, handled by one agency.
fn catalogue() -> crate::Catalogue {
    use crate::catalogue::{Decision, ProcedureEntry};
    use crate::codes::AgencyCode;
    let entry = |code: &str, days: u32| ProcedureEntry {
        code: ProcedureCode::parse("code", code).unwrap(),
        name: "Cấp giấy phép xây dựng".into(),
        statutory_time: StatutoryTime::working_days(days),
        fee_vnd: 50_000,
        full_online_eligible: true,
        paper_result: true,
        handling_agencies: vec![
            AgencyCode::parse("a", "000.00.20.H28").unwrap(),
            AgencyCode::parse("a", "000.00.21.H28").unwrap(),
        ],
        green_lane_time: None,
    };
    let mut catalogue = crate::Catalogue::new();
    catalogue
        .publish(Decision {
            number: "100/QĐ-UBND".into(),
            effective_from: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            entries: vec![
                entry("1.001234", 20),
                ProcedureEntry {
                    handling_agencies: vec![AgencyCode::parse("a", "000.00.20.H28").unwrap()],
                    green_lane_time: Some(StatutoryTime::working_days(2)),
                    ..entry("2.000815", 10)
                },
            ],
            abolished: vec![],
        })
        .unwrap();
    catalogue
        .publish(Decision {
            number: "200/QĐ-UBND".into(),
            effective_from: chrono::NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(),
            entries: vec![entry("1.001234", 15)],
            abolished: vec![],
        })
        .unwrap();
    catalogue
}

/// Renders the decision on a receipt taken from [`catalogue`].
fn check_catalogue(allow_outside: bool, when: ReceiveDossier, expect: Expect) {
    let calendar = BusinessCalendar::vietnam();
    let green_lane = GreenLane::new();
    let catalogue = catalogue();
    let ctx = Context {
        catalogue: &catalogue,
        procedures: crate::ProcedurePolicy::Catalogue { allow_outside },
        ..Context::new(vn("2026-12-31 12:00"), &calendar, &green_lane)
    };
    let actual = match decide(&DossierState::new(), &when.into(), &ctx) {
        Ok(events) => events.iter().map(|event| format!("{}\n", event.to_json())).collect(),
        Err(err) => format!("rejected [{}]: {err}\n", err.rule()),
    };
    expect.assert_eq(&actual);
}

fn by_code(at: &str, code: &str) -> ReceiveDossier {
    ReceiveDossier {
        procedure: ProcedureInput::code(code),
        ..receive_at(at)
    }
}

#[test]
fn a_receipt_by_code_alone_takes_the_entry_in_force_and_names_it() {
    check_catalogue(
        false,
        by_code("2026-06-08 09:00", "1.001234"),
        expect![[r#"
            {"applicant":"00000000-0000-0000-0000-000000005eed","calendars":[{"provisional":false,"version":1,"year":2026}],"catalogue":{"decision":"100/QĐ-UBND","effective_from":"2026-01-01","version":1},"channel":2,"due_at":"2026-07-06T10:00:00Z","effective_time":{"amount":20,"unit":"working_days"},"green_lane":false,"handling_agency":"000.00.20.H28","occurred_at":"2026-06-08T02:00:00Z","procedure":{"code":"1.001234","fee_vnd":50000,"full_online_eligible":true,"name":"Cấp giấy phép xây dựng","paper_result":true,"statutory_time":{"amount":20,"unit":"working_days"}},"procedure_source":"catalogue","receipt_code":"G09.20-20260608-0092637","receiving_desk":"000.00.04.G18"}
        "#]],
    );
    // The amendment in force from 1/7 applies to receipts from that day only.
    check_catalogue(
        false,
        by_code("2026-07-01 09:00", "1.001234"),
        expect![[r#"
            {"applicant":"00000000-0000-0000-0000-000000005eed","calendars":[{"provisional":false,"version":1,"year":2026}],"catalogue":{"decision":"200/QĐ-UBND","effective_from":"2026-07-01","version":2},"channel":2,"due_at":"2026-07-22T10:00:00Z","effective_time":{"amount":15,"unit":"working_days"},"green_lane":false,"handling_agency":"000.00.20.H28","occurred_at":"2026-07-01T02:00:00Z","procedure":{"code":"1.001234","fee_vnd":50000,"full_online_eligible":true,"name":"Cấp giấy phép xây dựng","paper_result":true,"statutory_time":{"amount":15,"unit":"working_days"}},"procedure_source":"catalogue","receipt_code":"G09.20-20260701-0092637","receiving_desk":"000.00.04.G18"}
        "#]],
    );
}

#[test]
fn a_green_lane_entry_uses_its_shortened_time_and_its_only_agency() {
    let mut command = by_code("2026-06-08 09:00", "2.000815");
    command.handling_agency = String::new();
    check_catalogue(
        false,
        command,
        expect![[r#"
        {"applicant":"00000000-0000-0000-0000-000000005eed","calendars":[{"provisional":false,"version":1,"year":2026}],"catalogue":{"decision":"100/QĐ-UBND","effective_from":"2026-01-01","version":1},"channel":2,"due_at":"2026-06-10T10:00:00Z","effective_time":{"amount":2,"unit":"working_days"},"green_lane":true,"handling_agency":"000.00.20.H28","occurred_at":"2026-06-08T02:00:00Z","procedure":{"code":"2.000815","fee_vnd":50000,"full_online_eligible":true,"name":"Cấp giấy phép xây dựng","paper_result":true,"statutory_time":{"amount":10,"unit":"working_days"}},"procedure_source":"catalogue","receipt_code":"G09.20-20260608-0092637","receiving_desk":"000.00.04.G18"}
    "#]],
    );
}

#[test]
fn a_declared_value_that_differs_from_the_catalogue_is_refused_naming_it() {
    let mut command = by_code("2026-06-08 09:00", "1.001234");
    command.procedure.fee_vnd = Some(50_000);
    command.procedure.statutory_time = Some(StatutoryTime::working_days(3));
    check_catalogue(
        false,
        command,
        expect![[r#"
        rejected [procedure-values-from-catalogue]: procedure.statutory_time: 3 working days differs from the catalogue's 20 working days (decision 100/QĐ-UBND, catalogue version 1); send only the procedure code, or correct the value
    "#]],
    );
    let mut command = by_code("2026-06-08 09:00", "1.001234");
    command.handling_agency = "000.00.99.H28".into();
    check_catalogue(
        false,
        command,
        expect![[r#"
        rejected [handling-agency-in-catalogue]: handling_agency: 000.00.99.H28 does not handle 1.001234 in the catalogue; it lists 000.00.20.H28, 000.00.21.H28 (decision 100/QĐ-UBND, catalogue version 1)
    "#]],
    );
}

#[test]
fn an_unknown_code_is_refused_unless_the_province_allows_it() {
    check_catalogue(
        false,
        by_code("2026-06-08 09:00", "1.009999"),
        expect![[r#"
        rejected [procedure-in-catalogue]: procedure.code: 1.009999 is not in the procedure catalogue (version 2) in force on 2026-06-08; check the code, or ask an administrator to load the decision that publishes it
    "#]],
    );
    // Allowed, it needs the values and is flagged.
    check_catalogue(
        true,
        by_code("2026-06-08 09:00", "1.009999"),
        expect![[r#"
        rejected [invalid-field]: procedure.name: is required for a procedure taken as declared (an imported history, or a code outside the catalogue)
    "#]],
    );
    let mut command = receive_at("2026-06-08 09:00");
    command.procedure.code = "1.009999".into();
    check_catalogue(
        true,
        command,
        expect![[r#"
        {"applicant":"00000000-0000-0000-0000-000000005eed","calendars":[{"provisional":false,"version":1,"year":2026}],"catalogue":null,"channel":2,"due_at":"2026-06-11T10:00:00Z","effective_time":{"amount":3,"unit":"working_days"},"green_lane":false,"handling_agency":"000.00.20.H28","occurred_at":"2026-06-08T02:00:00Z","procedure":{"code":"1.009999","fee_vnd":50000,"full_online_eligible":true,"name":"Đăng ký khai sinh","paper_result":true,"statutory_time":{"amount":3,"unit":"working_days"}},"procedure_source":"outside_catalogue","receipt_code":"G09.20-20260608-0092637","receiving_desk":"000.00.04.G18"}
    "#]],
    );
}

#[test]
fn a_due_date_in_a_year_without_a_notice_is_computed_on_the_provisional_calendar() {
    // Received Monday 21/12/2026 with 15 working days: due in January 2027.
    check_catalogue(
        false,
        by_code("2026-12-21 09:00", "1.001234"),
        expect![[r#"
            {"applicant":"00000000-0000-0000-0000-000000005eed","calendars":[{"provisional":false,"version":1,"year":2026},{"provisional":true,"version":0,"year":2027}],"catalogue":{"decision":"200/QĐ-UBND","effective_from":"2026-07-01","version":2},"channel":2,"due_at":"2027-01-12T10:00:00Z","effective_time":{"amount":15,"unit":"working_days"},"green_lane":false,"handling_agency":"000.00.20.H28","occurred_at":"2026-12-21T02:00:00Z","procedure":{"code":"1.001234","fee_vnd":50000,"full_online_eligible":true,"name":"Cấp giấy phép xây dựng","paper_result":true,"statutory_time":{"amount":15,"unit":"working_days"}},"procedure_source":"catalogue","receipt_code":"G09.20-20261221-0092637","receiving_desk":"000.00.04.G18"}
        "#]],
    );
}

#[test]
fn an_imported_history_keeps_its_values_and_takes_the_catalogues_green_lane() {
    let calendar = BusinessCalendar::vietnam();
    let green_lane = GreenLane::new();
    let catalogue = catalogue();
    let ctx = Context {
        catalogue: &catalogue,
        ..Context::new(vn("2026-12-31 12:00"), &calendar, &green_lane)
    };
    // Declared 3 working days where the catalogue says 10 with a green lane of 2.
    let mut history = receive_at("2026-06-08 09:00");
    history.procedure.code = "2.000815".into();
    let events = decide(&DossierState::new(), &history.into(), &ctx).unwrap();
    expect![[r#"
        {"applicant":"00000000-0000-0000-0000-000000005eed","calendars":[{"provisional":false,"version":1,"year":2026}],"catalogue":null,"channel":2,"due_at":"2026-06-10T10:00:00Z","effective_time":{"amount":2,"unit":"working_days"},"green_lane":true,"handling_agency":"000.00.20.H28","occurred_at":"2026-06-08T02:00:00Z","procedure":{"code":"2.000815","fee_vnd":50000,"full_online_eligible":true,"name":"Đăng ký khai sinh","paper_result":true,"statutory_time":{"amount":3,"unit":"working_days"}},"procedure_source":"declared","receipt_code":"G09.20-20260608-0092637","receiving_desk":"000.00.04.G18"}
    "#]]
    .assert_eq(&format!("{}\n", events[0].to_json()));
}

//! The dossier list and the green-lane board: dossiers as they stand now, filtered and ordered.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use hoso_domain::calendar::to_local;
use hoso_domain::{BusinessCalendar, CalendarError, Channel, DeadlineState, PortalStatus, ProcedureSource};

use crate::model::Dossiers;

/// How the list is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Most recently received first (then by receipt code).
    #[default]
    NewestFirst,
    /// Earliest due date first (then by receipt code).
    DueFirst,
}

/// Which dossiers to list; `None` matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Handling agency code.
    pub handling_agency: Option<String>,
    /// Receiving desk code.
    pub receiving_desk: Option<String>,
    /// Procedure code.
    pub procedure: Option<String>,
    /// Portal status.
    pub status: Option<PortalStatus>,
    /// Channel.
    pub channel: Option<Channel>,
    /// Green lane or not.
    pub green_lane: Option<bool>,
    /// Where the procedure's values came from.
    pub procedure_source: Option<ProcedureSource>,
    /// Deadline state now.
    pub deadline: Option<DeadlineState>,
    /// Received on or after this local date.
    pub received_from: Option<NaiveDate>,
    /// Received before this local date.
    pub received_until: Option<NaiveDate>,
}

/// One dossier in a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Receipt code.
    pub receipt_code: String,
    /// Handling agency.
    pub handling_agency: String,
    /// Receiving desk.
    pub receiving_desk: String,
    /// Procedure code.
    pub procedure: String,
    /// Status.
    pub status: PortalStatus,
    /// Channel.
    pub channel: Channel,
    /// Green lane.
    pub green_lane: bool,
    /// Where the procedure's values came from.
    pub procedure_source: ProcedureSource,
    /// When received.
    pub received_at: DateTime<Utc>,
    /// Due date in force.
    pub due_at: DateTime<Utc>,
    /// Deadline state now.
    pub deadline: DeadlineState,
    /// Office time left (negative when overdue); `None` once finished.
    pub remaining_working_time: Option<TimeDelta>,
    /// The dossier's version.
    pub version: u64,
}

/// The dossiers matching `filter` as they stand at `now`, ordered; refused dossiers are listed
/// too (filter by status to leave them out), since officers look for them.
pub fn list(
    dossiers: &Dossiers,
    filter: &Filter,
    order: Order,
    now: DateTime<Utc>,
    calendar: &BusinessCalendar,
) -> Result<Vec<Row>, CalendarError> {
    let mut rows = Vec::new();
    for history in dossiers.histories() {
        let state = dossiers.state(history);
        let (Some(received), Some(status)) = (state.received.clone(), state.status) else {
            continue;
        };
        let received_on = to_local(received.occurred_at).date();
        let keep = filter
            .handling_agency
            .as_deref()
            .is_none_or(|a| a == received.handling_agency.as_str())
            && filter
                .receiving_desk
                .as_deref()
                .is_none_or(|d| d == received.receiving_desk.as_str())
            && filter
                .procedure
                .as_deref()
                .is_none_or(|p| p == received.procedure.code.as_str())
            && filter.status.is_none_or(|s| s == status)
            && filter.channel.is_none_or(|c| c == received.channel)
            && filter.green_lane.is_none_or(|g| g == received.green_lane)
            && filter
                .procedure_source
                .is_none_or(|source| source == received.procedure_source)
            && filter.received_from.is_none_or(|d| received_on >= d)
            && filter.received_until.is_none_or(|d| received_on < d);
        if !keep {
            continue;
        }
        let view = state.deadline_at(now, calendar)?;
        let (deadline, remaining, due_at) = match view {
            Some(view) => (view.state, view.remaining_working_time, view.due_at),
            // Refused at intake: no deadline; shown as finished on time so it is never "overdue".
            None => (
                DeadlineState::FinishedOnTime,
                None,
                state.due_at.unwrap_or(received.due_at),
            ),
        };
        if filter.deadline.is_some_and(|d| d != deadline) {
            continue;
        }
        rows.push(Row {
            receipt_code: history.receipt_code().to_owned(),
            handling_agency: received.handling_agency.as_str().to_owned(),
            receiving_desk: received.receiving_desk.as_str().to_owned(),
            procedure: received.procedure.code.as_str().to_owned(),
            status,
            channel: received.channel,
            green_lane: received.green_lane,
            procedure_source: received.procedure_source,
            received_at: received.occurred_at,
            due_at,
            deadline,
            remaining_working_time: remaining,
            version: history.version(),
        });
    }
    match order {
        Order::NewestFirst => rows.sort_by(|a, b| {
            b.received_at
                .cmp(&a.received_at)
                .then_with(|| a.receipt_code.cmp(&b.receipt_code))
        }),
        Order::DueFirst => rows.sort_by(|a, b| {
            a.due_at
                .cmp(&b.due_at)
                .then_with(|| a.receipt_code.cmp(&b.receipt_code))
        }),
    }
    Ok(rows)
}

/// The green-lane board: every open green-lane dossier with its deadline state and remaining
/// working time, due first; group by `handling_agency` to show it per agency.
pub fn green_lane_board(
    dossiers: &Dossiers,
    now: DateTime<Utc>,
    calendar: &BusinessCalendar,
) -> Result<Vec<Row>, CalendarError> {
    let filter = Filter {
        green_lane: Some(true),
        ..Filter::default()
    };
    let rows = list(dossiers, &filter, Order::DueFirst, now, calendar)?;
    Ok(rows
        .into_iter()
        .filter(|r| !matches!(r.deadline, DeadlineState::FinishedOnTime | DeadlineState::FinishedLate))
        .collect())
}

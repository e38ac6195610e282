//! The `hoso.v1.ReportsService`: figures from the live projection.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use hoso_api::convert::{deadline_state_to_pb, duration_to_pb, timestamp_to_utc, utc_to_timestamp};
use hoso_api::pb;
use hoso_domain::{Channel, DeadlineState, PortalStatus, ProcedureSource};
use hoso_projections::figures::{self, Figures, OnTime, Ratio, hundredths_text};
use hoso_projections::list;
use hoso_projections::{Period, PeriodError};
use hoso_store::EventStore;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::auth::{Action, authorize};
use crate::error::{ServiceError, to_status};
use crate::grpc::caller;
use crate::projection::Projection;

/// How long a query waits for the projection to apply what was durable when it arrived.
const PATIENCE: Duration = Duration::from_secs(10);

/// The reports service.
pub struct ReportsApi<S> {
    app: Arc<App<S>>,
    projection: Arc<Projection>,
    province_name: String,
    agency_names: std::collections::BTreeMap<String, String>,
    letter: hoso_disclosure::Letter,
    sealer: Arc<crate::seal::Sealer>,
}

impl<S> ReportsApi<S> {
    /// The service over `app` and its live projection; the names head the disclosure.
    pub fn new(
        app: Arc<App<S>>,
        projection: Arc<Projection>,
        province_name: String,
        agency_names: std::collections::BTreeMap<String, String>,
    ) -> Self {
        ReportsApi {
            app,
            projection,
            province_name,
            agency_names,
            letter: hoso_disclosure::Letter::default(),
            sealer: Arc::new(crate::seal::Sealer::new(None)),
        }
    }

    /// The key and head hashes that seal each disclosure.
    pub fn with_sealer(mut self, sealer: crate::seal::Sealer) -> Self {
        self.sealer = Arc::new(sealer);
        self
    }

    /// The disclosure's issuing body, number, place and signer (the configuration's
    /// `[disclosure]`).
    pub fn with_letter(mut self, letter: &crate::config::DisclosureConfig) -> Self {
        self.letter = hoso_disclosure::Letter {
            issuing_body: letter.issuing_body.clone(),
            number_format: letter.number_format.clone(),
            place: letter.place.clone(),
            signer_title: letter.signer_title.clone(),
            signer_name: letter.signer_name.clone(),
        };
        self
    }
}

fn invalid(field: &str, description: String) -> Status {
    to_status(ServiceError::invalid(field, description))
}

/// The period and cut-off of a request.
pub fn scope(scope: Option<pb::ReportScope>) -> Result<(Period, chrono::DateTime<Utc>), Status> {
    let scope = scope.unwrap_or_default();
    let period = if !scope.month.is_empty() {
        Period::month(&scope.month).map_err(|err| invalid("scope.month", err.to_string()))?
    } else {
        let date = |field: &str, text: &str| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
                invalid(
                    field,
                    format!("{text:?} is not a date like 2025-09-01; or give scope.month"),
                )
            })
        };
        let start = date("scope.start_date", &scope.start_date)?;
        let end = date("scope.end_date", &scope.end_date)?;
        Period::new(start, end).map_err(|err: PeriodError| invalid("scope.end_date", err.to_string()))?
    };
    let cutoff = match &scope.cutoff {
        None => Utc::now(),
        Some(ts) => timestamp_to_utc(ts).ok_or_else(|| invalid("scope.cutoff", "not a valid timestamp".to_owned()))?,
    };
    Ok((period, cutoff))
}

fn ratio(r: Ratio) -> pb::Ratio {
    pb::Ratio {
        numerator: r.numerator,
        denominator: r.denominator,
        rate_percent: r.percent_hundredths().map(hundredths_text).unwrap_or_default(),
    }
}

fn on_time(o: &OnTime) -> pb::OnTimeFigures {
    pb::OnTimeFigures {
        on_time: Some(ratio(o.ratio)),
        overdue: o.overdue_count(),
        overdue_receipt_codes: o.overdue.clone(),
    }
}

fn group(name: &str, f: &Figures) -> pb::GroupFigures {
    pb::GroupFigures {
        group: name.to_owned(),
        on_time: Some(on_time(&f.on_time)),
        green_lane_on_time: Some(on_time(&f.green_lane_on_time)),
        received: f.received,
        finished: f.finished,
        approved: f.approved,
        indicators: f
            .indicators()
            .into_iter()
            .map(|i| pb::Indicator {
                code: i.code.to_owned(),
                name_vi: i.name_vi.to_owned(),
                name_en: i.name_en.to_owned(),
                measured: i.ratio.is_some(),
                ratio: i.ratio.map(ratio),
                rate_percent: i.rate_hundredths.map(hundredths_text).unwrap_or_default(),
                points: i.points_hundredths.map(hundredths_text).unwrap_or_default(),
                max_points: i.max_points_hundredths.map(hundredths_text).unwrap_or_default(),
                factors: i
                    .factors
                    .iter()
                    .map(|f| pb::IndicatorFactor {
                        name_vi: f.name_vi.to_owned(),
                        name_en: f.name_en.to_owned(),
                        ratio: Some(ratio(f.ratio)),
                    })
                    .collect(),
            })
            .collect(),
        apologies: Some(pb::ApologyFigures {
            sent: f.apologies.sent,
            overdue_without_letter: f.apologies.overdue_without_letter,
            promises_kept: Some(ratio(f.apologies.promises_kept)),
        }),
    }
}

/// The report as a message.
pub fn report_to_pb(report: &figures::Report, position: u64) -> pb::GetIndexFiguresResponse {
    pb::GetIndexFiguresResponse {
        start_date: report.period.start.to_string(),
        end_date: report.period.end.to_string(),
        cutoff: Some(utc_to_timestamp(report.cutoff)),
        province: Some(group("province", &report.province)),
        agencies: report.agencies.iter().map(|(code, f)| group(code, f)).collect(),
        procedures: report
            .procedures
            .iter()
            .map(|(code, o)| pb::ProcedureFigures {
                procedure: code.clone(),
                on_time: Some(on_time(o)),
            })
            .collect(),
        projection_position: position,
    }
}

impl<S: EventStore> ReportsApi<S> {
    /// The model once it has applied every event that was durable when the query arrived.
    async fn caught_up(&self) -> Result<tokio::sync::RwLockReadGuard<'_, hoso_projections::Dossiers>, Status> {
        self.wait_caught_up().await.map_err(to_status)
    }

    async fn wait_caught_up(
        &self,
    ) -> Result<tokio::sync::RwLockReadGuard<'_, hoso_projections::Dossiers>, ServiceError> {
        let head = self.app.store.head();
        // An event the projection cannot get past will not be got past by waiting.
        if self.projection.applied() < head
            && let Some(stopped) = self.projection.stopped()
        {
            return Err(ServiceError::ProjectionStopped(stopped));
        }
        self.projection
            .read_at(head, PATIENCE)
            .await
            .map_err(|applied| match self.projection.stopped() {
                Some(stopped) => ServiceError::ProjectionStopped(stopped),
                None => ServiceError::Unavailable(format!(
                    "the projection is catching up ({applied} of {head} events applied); retry shortly"
                )),
            })
    }
}

/// A rebuild's progress messages.
pub type RebuildStream = Pin<Box<dyn Stream<Item = Result<pb::RebuildProjectionsResponse, Status>> + Send + 'static>>;

fn row_to_pb(row: list::Row) -> pb::DossierRow {
    pb::DossierRow {
        receipt_code: row.receipt_code,
        handling_agency: row.handling_agency,
        receiving_desk: row.receiving_desk,
        procedure: row.procedure,
        status: i32::from(row.status.code()),
        channel: i32::from(row.channel.code()),
        green_lane: row.green_lane,
        received_at: Some(utc_to_timestamp(row.received_at)),
        due_at: Some(utc_to_timestamp(row.due_at)),
        deadline: deadline_state_to_pb(row.deadline).into(),
        remaining_working_time: row.remaining_working_time.map(duration_to_pb),
        version: row.version,
        procedure_source: hoso_api::convert::procedure_source_to_pb(row.procedure_source).into(),
    }
}

fn filter(request: &pb::ListDossiersRequest) -> Result<list::Filter, Status> {
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let date = |field: &str, s: &str| -> Result<Option<NaiveDate>, Status> {
        if s.is_empty() {
            return Ok(None);
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| invalid(field, format!("{s:?} is not a date like 2025-09-01")))
    };
    let code = |field: &str, value: i32, parse: fn(u8) -> bool| -> Result<Option<u8>, Status> {
        if value == 0 {
            return Ok(None);
        }
        u8::try_from(value)
            .ok()
            .filter(|c| parse(*c))
            .map(Some)
            .ok_or_else(|| invalid(field, format!("{value} is not a known value")))
    };
    let deadline = match pb::DeadlineState::try_from(request.deadline) {
        Ok(pb::DeadlineState::Unspecified) => None,
        Ok(pb::DeadlineState::OnTime) => Some(DeadlineState::OnTime),
        Ok(pb::DeadlineState::DueSoon) => Some(DeadlineState::DueSoon),
        Ok(pb::DeadlineState::Overdue) => Some(DeadlineState::Overdue),
        Ok(pb::DeadlineState::FinishedOnTime) => Some(DeadlineState::FinishedOnTime),
        Ok(pb::DeadlineState::FinishedLate) => Some(DeadlineState::FinishedLate),
        Err(_) => {
            return Err(invalid(
                "deadline",
                format!("{} is not a deadline state", request.deadline),
            ));
        }
    };
    Ok(list::Filter {
        handling_agency: text(&request.handling_agency),
        receiving_desk: text(&request.receiving_desk),
        procedure: text(&request.procedure),
        status: code("status", request.status, |c| PortalStatus::from_code(c).is_some())?
            .and_then(PortalStatus::from_code),
        channel: code("channel", request.channel, |c| Channel::from_code(c).is_some())?.and_then(Channel::from_code),
        green_lane: request.green_lane,
        procedure_source: match pb::ProcedureSource::try_from(request.procedure_source) {
            Ok(pb::ProcedureSource::Unspecified) => None,
            Ok(pb::ProcedureSource::Catalogue) => Some(ProcedureSource::Catalogue),
            Ok(pb::ProcedureSource::Declared) => Some(ProcedureSource::Declared),
            Ok(pb::ProcedureSource::OutsideCatalogue) => Some(ProcedureSource::OutsideCatalogue),
            Err(_) => {
                return Err(invalid(
                    "procedure_source",
                    format!("{} is not a procedure source", request.procedure_source),
                ));
            }
        },
        deadline,
        received_from: date("received_from", &request.received_from)?,
        received_until: date("received_until", &request.received_until)?,
    })
}

#[tonic::async_trait]
impl<S: EventStore> pb::reports_service_server::ReportsService for ReportsApi<S> {
    type RebuildProjectionsStream = RebuildStream;

    async fn list_dossiers(
        &self,
        request: Request<pb::ListDossiersRequest>,
    ) -> Result<Response<pb::ListDossiersResponse>, Status> {
        authorize(&caller(&request)?, Action::ReadReports).map_err(to_status)?;
        let request = request.into_inner();
        let filter = filter(&request)?;
        let order = match pb::DossierOrder::try_from(request.order) {
            Ok(pb::DossierOrder::DueFirst) => list::Order::DueFirst,
            Ok(_) => list::Order::NewestFirst,
            Err(_) => return Err(invalid("order", format!("{} is not an order", request.order))),
        };
        let page_size = match request.page_size {
            0 => 50,
            n => n.min(1000),
        } as usize;
        let offset: usize = if request.page_token.is_empty() {
            0
        } else {
            request
                .page_token
                .parse()
                .map_err(|_| invalid("page_token", "not a token from a previous page".to_owned()))?
        };
        let model = self.caught_up().await?;
        let rows = list::list(
            &model,
            &filter,
            order,
            Utc::now(),
            &self.app.reference.current().calendar,
        )
        .map_err(|err| to_status(ServiceError::Refused(err.to_string())))?;
        drop(model);
        let total = rows.len();
        let next = offset.saturating_add(page_size);
        Ok(Response::new(pb::ListDossiersResponse {
            dossiers: rows.into_iter().skip(offset).take(page_size).map(row_to_pb).collect(),
            next_page_token: if next < total { next.to_string() } else { String::new() },
            total: total as u64,
        }))
    }

    async fn get_disclosure(
        &self,
        request: Request<pb::GetDisclosureRequest>,
    ) -> Result<Response<pb::GetDisclosureResponse>, Status> {
        use hoso_disclosure::{Format, Language, Options};
        authorize(&caller(&request)?, Action::ReadReports).map_err(to_status)?;
        let request = request.into_inner();
        let (format, content_type, extension) = match pb::DisclosureFormat::try_from(request.format) {
            Ok(pb::DisclosureFormat::Json) => (Format::Json, "application/json", "json"),
            Ok(pb::DisclosureFormat::Csv) => (Format::Csv, "text/csv; charset=utf-8", "csv"),
            Ok(pb::DisclosureFormat::Html | pb::DisclosureFormat::Unspecified) => {
                (Format::Html, "text/html; charset=utf-8", "html")
            }
            Ok(pb::DisclosureFormat::Xlsx) => (
                Format::Xlsx,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "xlsx",
            ),
            Err(_) => return Err(invalid("format", format!("{} is not a format", request.format))),
        };
        let language = match request.language.as_str() {
            "" | "vi" => Language::Vi,
            "en" => Language::En,
            other => {
                return Err(invalid(
                    "language",
                    format!("{other:?} is not a language; use vi or en"),
                ));
            }
        };
        if self.province_name.trim().is_empty() {
            return Err(to_status(ServiceError::Refused(
                "the server has no province_name in its configuration; the disclosure's heading needs it".to_owned(),
            )));
        }
        let (period, cutoff) = scope(request.scope)?;
        let model = self.caught_up().await?;
        let current = figures::report(&model, period, cutoff);
        let previous = figures::report(&model, period.previous(), cutoff);
        let counted = model.checkpoint();
        drop(model);
        // The seal names the events the figures counted: those recorded by the cut-off.
        let head = self
            .sealer
            .head_at(&self.app.store, cutoff, counted)
            .await
            .map_err(|err| crate::error::to_status(err.into()))?;
        let options = Options {
            format,
            language,
            province_name: self.province_name.clone(),
            agency_names: self.agency_names.clone(),
            letter: self.letter.clone(),
        };
        // Every render error is the server's (the reports it computed, its writer): INTERNAL.
        let document =
            hoso_disclosure::render_sealed(&current, &previous, &options, head, self.sealer.key()).map_err(|err| {
                to_status(ServiceError::Render {
                    what: "disclosure",
                    cause: err.to_string(),
                })
            })?;
        let stem = if period.previous().end == period.start && period.start + chrono::Months::new(1) == period.end {
            period.start.format("%Y-%m").to_string()
        } else {
            format!("{}_{}", period.start, period.end)
        };
        // One name per language, so that both versions can sit in one folder.
        let file_name = match language {
            Language::Vi => format!("cong-khai-{stem}.{extension}"),
            Language::En => format!("disclosure-{stem}-en.{extension}"),
        };
        Ok(Response::new(pb::GetDisclosureResponse {
            document,
            content_type: content_type.to_owned(),
            file_name,
            cutoff: Some(utc_to_timestamp(cutoff)),
            empty: hoso_disclosure::is_empty(&current),
        }))
    }

    async fn get_green_lane_board(
        &self,
        request: Request<pb::GetGreenLaneBoardRequest>,
    ) -> Result<Response<pb::GetGreenLaneBoardResponse>, Status> {
        authorize(&caller(&request)?, Action::ReadReports).map_err(to_status)?;
        let agency = request.into_inner().handling_agency;
        let now = Utc::now();
        let model = self.caught_up().await?;
        let rows = list::green_lane_board(&model, now, &self.app.reference.current().calendar)
            .map_err(|err| to_status(ServiceError::Refused(err.to_string())))?;
        drop(model);
        Ok(Response::new(pb::GetGreenLaneBoardResponse {
            dossiers: rows
                .into_iter()
                .filter(|r| agency.is_empty() || r.handling_agency == agency)
                .map(row_to_pb)
                .collect(),
            at: Some(utc_to_timestamp(now)),
        }))
    }

    async fn get_index_figures(
        &self,
        request: Request<pb::GetIndexFiguresRequest>,
    ) -> Result<Response<pb::GetIndexFiguresResponse>, Status> {
        authorize(&caller(&request)?, Action::ReadReports).map_err(to_status)?;
        let (period, cutoff) = scope(request.into_inner().scope)?;
        let model = self.caught_up().await?;
        let position = model.checkpoint();
        let report = figures::report(&model, period, cutoff);
        drop(model);
        Ok(Response::new(report_to_pb(&report, position)))
    }

    async fn get_projection_status(
        &self,
        request: Request<pb::GetProjectionStatusRequest>,
    ) -> Result<Response<pb::GetProjectionStatusResponse>, Status> {
        authorize(&caller(&request)?, Action::ReadReports).map_err(to_status)?;
        let head = self.app.store.head();
        let applied = self.projection.applied();
        Ok(Response::new(pb::GetProjectionStatusResponse {
            applied_position: applied,
            head_position: head,
            lag_events: head.saturating_sub(applied),
            dossiers: self.projection.dossiers().await as u64,
            rebuilding: self.projection.is_rebuilding(),
            stopped: self.projection.stopped().map(|s| s.to_string()).unwrap_or_default(),
        }))
    }

    async fn rebuild_projections(
        &self,
        request: Request<pb::RebuildProjectionsRequest>,
    ) -> Result<Response<RebuildStream>, Status> {
        let caller = caller(&request)?;
        authorize(&caller, Action::Rebuild).map_err(to_status)?;
        if self.projection.is_rebuilding() {
            return Err(to_status(ServiceError::Refused(
                "a rebuild is already running".to_owned(),
            )));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let projection = Arc::clone(&self.projection);
        let store = self.app.store.clone();
        tokio::spawn(async move {
            let to_pb = |p: crate::projection::RebuildProgress| pb::RebuildProjectionsResponse {
                events_done: p.done,
                events_total: p.total,
                events_per_second: p.events_per_second,
                seconds_left: p.seconds_left,
                swapped: p.swapped,
            };
            let progress_tx = tx.clone();
            let mut last = None;
            let result = projection
                .rebuild(&store, |p| {
                    if p.swapped {
                        last = Some(p);
                    } else {
                        // A slow or gone client must not stall the rebuild: drop what it cannot take.
                        let _ = progress_tx.try_send(Ok(to_pb(p)));
                    }
                })
                .await;
            let end = match (result, last) {
                (Ok(()), Some(last)) => Ok(to_pb(last)),
                (Ok(()), None) => Err(to_status(ServiceError::Internal(
                    "the rebuild ended without swapping".to_owned(),
                ))),
                (Err(stopped), _) => Err(to_status(ServiceError::ProjectionStopped(stopped))),
            };
            let _ = tx.send(end).await;
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

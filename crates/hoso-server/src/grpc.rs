//! The tonic services: thin adapters from `hoso.v1` requests to [`App`] and back.

use std::pin::Pin;
use std::sync::Arc;

use chrono::{Datelike, Utc};
use hoso_api::convert::{self, IntoDeskCommand, dossier_key, timestamp_to_utc, utc_to_timestamp};
use hoso_api::pb;
use hoso_domain::{CommandKind, HolidayTable};
use hoso_store::{EventStore, VerifyScope};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::app::{App, Outcome, decode};
use crate::auth::{Action, Caller, Role, authorize};
use crate::error::{ServiceError, to_status};
use crate::metadata::EventMetadata;

/// The authenticated caller the interceptor put in the request's extensions.
pub(crate) fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request.extensions().get::<Caller>().cloned().ok_or_else(|| {
        to_status(ServiceError::Unauthenticated(
            "missing bearer token; send `authorization: Bearer <token>`".to_owned(),
        ))
    })
}

fn outcome_to_pb(outcome: Outcome) -> pb::CommandOutcome {
    pb::CommandOutcome {
        dossier_id: outcome.dossier_id.to_string(),
        receipt_code: outcome.receipt_code,
        version: outcome.version,
        position: outcome.position,
        due_at: outcome.due_at.map(utc_to_timestamp),
        status: i32::from(outcome.status),
        replayed: outcome.replayed,
        due_at_calendars: outcome
            .due_at_calendars
            .iter()
            .map(convert::calendar_ref_to_pb)
            .collect(),
    }
}

/// The desk commands.
pub struct DeskApi<S> {
    app: Arc<App<S>>,
}

impl<S> DeskApi<S> {
    /// The service over `app`.
    pub fn new(app: Arc<App<S>>) -> Self {
        DeskApi { app }
    }
}

impl<S: EventStore> DeskApi<S> {
    async fn run(
        &self,
        kind: CommandKind,
        caller: Caller,
        request: impl IntoDeskCommand,
    ) -> Result<pb::CommandOutcome, Status> {
        let started = std::time::Instant::now();
        authorize(&caller, Action::Record(kind)).map_err(to_status)?;
        // The command's ids, for its log line and its trace (the call's `rpc` span).
        let mut ids = None;
        let result = match request.into_desk_command() {
            Ok(command) => {
                let (command_id, correlation_id) = (command.header.command_id, command.header.correlation_id.clone());
                tracing::Span::current()
                    .record("command_id", tracing::field::display(command_id))
                    .record("correlation_id", correlation_id.as_str());
                ids = Some((command_id, correlation_id));
                self.app.execute(&caller, command).await
            }
            Err(invalid) => Err(ServiceError::Invalid(invalid)),
        };
        let elapsed_us = started.elapsed().as_micros() as u64;
        let command_id = ids.as_ref().map(|(id, _)| tracing::field::display(id));
        let correlation_id = ids.as_ref().map(|(_, id)| id.as_str());
        match result {
            // A desk command is routine: its line is for debugging (HOSO_LOG=debug); INFO is kept
            // for what an operator reads.
            Ok(outcome) => {
                tracing::debug!(
                    method = kind.name(),
                    actor = %caller.subject,
                    command_id,
                    correlation_id,
                    receipt_code = %outcome.receipt_code,
                    version = outcome.version,
                    replayed = outcome.replayed,
                    elapsed_us,
                    "command recorded"
                );
                Ok(outcome_to_pb(outcome))
            }
            Err(err) => {
                let status = to_status(err);
                // While the store refuses writes, every command is refused alike: the error line
                // of to_status, rate-limited, says it.
                if status.code() != tonic::Code::Unavailable {
                    tracing::debug!(
                        method = kind.name(),
                        actor = %caller.subject,
                        command_id,
                        correlation_id,
                        code = ?status.code(),
                        elapsed_us,
                        "command refused"
                    );
                }
                Err(status)
            }
        }
    }
}

macro_rules! desk_methods {
    ($($method:ident($request:ident) -> $response:ident = $kind:ident;)*) => {
        #[tonic::async_trait]
        impl<S: EventStore> pb::desk_service_server::DeskService for DeskApi<S> {
            async fn receive_dossier(
                &self,
                request: Request<pb::ReceiveDossierRequest>,
            ) -> Result<Response<pb::ReceiveDossierResponse>, Status> {
                let caller = caller(&request)?;
                let mut request = request.into_inner();
                // A desk receives at its own unit unless it says otherwise.
                if request.receiving_desk.is_empty() && caller.role == Role::DeskOfficer {
                    request.receiving_desk.clone_from(&caller.agency);
                }
                let outcome = self.run(CommandKind::ReceiveDossier, caller, request).await?;
                Ok(Response::new(pb::ReceiveDossierResponse { outcome: Some(outcome) }))
            }
            $(
                async fn $method(&self, request: Request<pb::$request>) -> Result<Response<pb::$response>, Status> {
                    let caller = caller(&request)?;
                    let outcome = self.run(CommandKind::$kind, caller, request.into_inner()).await?;
                    Ok(Response::new(pb::$response { outcome: Some(outcome) }))
                }
            )*
        }
    };
}

desk_methods! {
    digitize_dossier(DigitizeDossierRequest) -> DigitizeDossierResponse = DigitizeDossier;
    process_dossier(ProcessDossierRequest) -> ProcessDossierResponse = ProcessDossier;
    request_supplement(RequestSupplementRequest) -> RequestSupplementResponse = RequestSupplement;
    receive_supplement(ReceiveSupplementRequest) -> ReceiveSupplementResponse = ReceiveSupplement;
    issue_e_result(IssueEResultRequest) -> IssueEResultResponse = IssueEResult;
    record_online_payment(RecordOnlinePaymentRequest) -> RecordOnlinePaymentResponse = PayOnline;
    send_apology(SendApologyRequest) -> SendApologyResponse = SendApology;
    return_result(ReturnResultRequest) -> ReturnResultResponse = ReturnResult;
    record_rating(RecordRatingRequest) -> RecordRatingResponse = RateSatisfaction;
    withdraw_dossier(WithdrawDossierRequest) -> WithdrawDossierResponse = Withdraw;
    refuse_at_intake(RefuseAtIntakeRequest) -> RefuseAtIntakeResponse = RefuseAtIntake;
    mark_synced(MarkSyncedRequest) -> MarkSyncedResponse = RecordNationalPortalSync;
}

/// Dossier queries.
pub struct QueryApi<S> {
    app: Arc<App<S>>,
}

impl<S> QueryApi<S> {
    /// The service over `app`.
    pub fn new(app: Arc<App<S>>) -> Self {
        QueryApi { app }
    }
}

#[tonic::async_trait]
impl<S: EventStore> pb::dossier_query_service_server::DossierQueryService for QueryApi<S> {
    async fn get_dossier(
        &self,
        request: Request<pb::GetDossierRequest>,
    ) -> Result<Response<pb::GetDossierResponse>, Status> {
        let caller = caller(&request)?;
        authorize(&caller, Action::ReadDossier).map_err(to_status)?;
        let result: Result<pb::Dossier, ServiceError> = async {
            let key = dossier_key("dossier", request.into_inner().dossier)?;
            let stream_id = self.app.resolve(&key).await?;
            let loaded = self.app.load(&stream_id, None).await?;
            let now = Utc::now();
            let deadline = loaded
                .state
                .deadline_at(now, &self.app.reference.current().calendar)
                .map_err(hoso_domain::DomainError::from)?
                .map(|view| convert::deadline_to_pb(&view, now));
            let dossier_id = loaded.dossier_id.unwrap_or_default();
            Ok(convert::dossier_to_pb(
                dossier_id,
                loaded.version().unwrap_or(0),
                &loaded.state,
                deadline,
            ))
        }
        .await;
        let dossier = result.map_err(to_status)?;
        Ok(Response::new(pb::GetDossierResponse { dossier: Some(dossier) }))
    }
}

/// A stored event with its whole envelope, as replays and the change feed send it.
pub(crate) fn recorded_event_to_pb(record: &hoso_store::RecordedEvent) -> pb::RecordedEvent {
    let metadata = EventMetadata::read(&record.metadata).unwrap_or_default();
    pb::RecordedEvent {
        stream_id: record.stream_id.clone(),
        version: record.version,
        position: record.position,
        event_id: record.event_id.to_string(),
        event_type: record.event_type.clone(),
        schema_version: record.schema_version,
        data_json: String::from_utf8_lossy(&record.data).into_owned(),
        metadata_json: String::from_utf8_lossy(&record.metadata).into_owned(),
        occurred_at: Some(utc_to_timestamp(record.occurred_at)),
        recorded_at: Some(utc_to_timestamp(record.recorded_at)),
        hash: record.hash_hex(),
        actor: metadata.actor,
        desk: metadata.agency,
    }
}

/// Audit: replay and verify.
pub struct AuditApi<S> {
    app: Arc<App<S>>,
}

impl<S> AuditApi<S> {
    /// The service over `app`.
    pub fn new(app: Arc<App<S>>) -> Self {
        AuditApi { app }
    }
}

/// A replay's stream of events.
pub type ReplayStream = Pin<Box<dyn Stream<Item = Result<pb::ReplayDossierResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl<S: EventStore> pb::audit_service_server::AuditService for AuditApi<S> {
    type ReplayDossierStream = ReplayStream;

    async fn replay_dossier(
        &self,
        request: Request<pb::ReplayDossierRequest>,
    ) -> Result<Response<ReplayStream>, Status> {
        let caller = caller(&request)?;
        authorize(&caller, Action::Audit).map_err(to_status)?;
        let request = request.into_inner();
        let result: Result<Vec<Result<pb::ReplayDossierResponse, Status>>, ServiceError> = async {
            let as_of = match request.as_of.as_ref() {
                None => None,
                Some(ts) => Some(
                    timestamp_to_utc(ts)
                        .ok_or_else(|| ServiceError::invalid("as_of".to_owned(), "not a valid timestamp".to_owned()))?,
                ),
            };
            let key = dossier_key("dossier", request.dossier)?;
            let stream_id = self.app.resolve(&key).await?;
            let loaded = self.app.load(&stream_id, as_of).await?;
            let dossier_id = loaded.dossier_id.unwrap_or_default();
            let mut state = hoso_domain::DossierState::new();
            let mut out = Vec::with_capacity(loaded.records.len());
            for record in &loaded.records {
                state = hoso_domain::evolve(state, &decode(record)?);
                out.push(Ok(pb::ReplayDossierResponse {
                    event: Some(recorded_event_to_pb(record)),
                    dossier_after: Some(convert::dossier_to_pb(dossier_id, record.version, &state, None)),
                }));
            }
            Ok(out)
        }
        .await;
        let items = result.map_err(to_status)?;
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }

    async fn verify_chain(
        &self,
        request: Request<pb::VerifyChainRequest>,
    ) -> Result<Response<pb::VerifyChainResponse>, Status> {
        let caller = caller(&request)?;
        authorize(&caller, Action::Audit).map_err(to_status)?;
        let request = request.into_inner();
        let result: Result<pb::VerifyChainResponse, ServiceError> = async {
            let scope = match request.dossier {
                None => VerifyScope::All,
                Some(dossier) => {
                    let key = dossier_key("dossier", Some(dossier))?;
                    VerifyScope::Stream(self.app.resolve(&key).await?)
                }
            };
            let report = self.app.store.verify(scope).await?;
            Ok(pb::VerifyChainResponse {
                ok: report.first_problem.is_none(),
                records_checked: report.records_checked,
                streams_checked: report.streams_checked,
                first_problem: report.first_problem.map(|p| pb::ChainProblem {
                    position: p.position,
                    stream_id: p.stream_id.unwrap_or_default(),
                    version: p.version,
                    reason: p.reason,
                }),
                quarantined: self.app.store.quarantined().iter().map(ToString::to_string).collect(),
            })
        }
        .await;
        Ok(Response::new(result.map_err(to_status)?))
    }
}

/// The status line of one quarantine file: what was cut, and what the operator does about it.
fn quarantine_warning(q: &hoso_store::Quarantined) -> String {
    let action = if q.may_have_been_acknowledged {
        "an acknowledged command may be lost: see docs/operations.md (damaged last record)"
    } else {
        "never acknowledged, nothing lost: remove the file once noted (docs/operations.md)"
    };
    format!("recovery cut {q}; {action}")
}

/// Operators' status.
pub struct AdminApi<S> {
    app: Arc<App<S>>,
    credentials: Option<Arc<crate::credentials::Credentials>>,
}

impl<S> AdminApi<S> {
    /// The service over `app`.
    pub fn new(app: Arc<App<S>>) -> Self {
        AdminApi { app, credentials: None }
    }

    /// With the credentials `ReloadCredentials` reloads.
    pub fn with_credentials(self, credentials: Arc<crate::credentials::Credentials>) -> Self {
        AdminApi {
            credentials: Some(credentials),
            ..self
        }
    }
}

#[tonic::async_trait]
impl<S: EventStore> pb::admin_service_server::AdminService for AdminApi<S> {
    async fn get_status(
        &self,
        request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        let caller = caller(&request)?;
        authorize(&caller, Action::Status).map_err(to_status)?;
        let reference = self.app.reference.current();
        Ok(Response::new(pb::GetStatusResponse {
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
            store_backend: self.app.backend.to_owned(),
            head_position: self.app.store.head(),
            started_at: Some(utc_to_timestamp(self.app.started_at)),
            accepting_writes: self.app.store.write_refusal().is_none(),
            calendar_years: reference.calendar.years().collect(),
            caller: caller.subject,
            caller_role: caller.role.as_str().to_owned(),
            warnings: reference
                .warnings(Utc::now())
                .into_iter()
                .chain(self.app.store.quarantined().iter().map(quarantine_warning))
                .chain(self.app.store.write_refusal().map(|failure| {
                    format!(
                        "the store refuses writes after a disk failure ({failure}); reads go on (docs/operations.md: the disk filled up)"
                    )
                }))
                .collect(),
            catalogue_version: reference.catalogue.version(),
            procedures_outside_catalogue_allowed: self.app.allow_procedures_outside_catalogue,
        }))
    }

    async fn reload_credentials(
        &self,
        request: Request<pb::ReloadCredentialsRequest>,
    ) -> Result<Response<pb::ReloadCredentialsResponse>, Status> {
        let caller = caller(&request)?;
        authorize(&caller, Action::ReloadCredentials).map_err(to_status)?;
        let Some(credentials) = &self.credentials else {
            return Err(to_status(ServiceError::Refused(
                "this server's credentials are fixed; it cannot reload them".to_owned(),
            )));
        };
        match credentials.reload().await {
            Ok(reloaded) => {
                tracing::info!(
                    actor = %caller.subject,
                    tokens = reloaded.tokens,
                    tokens_source = %reloaded.tokens_source,
                    signing_keys = reloaded.signing_keys,
                    signing_keys_source = %reloaded.signing_keys_source,
                    "credentials reloaded"
                );
                Ok(Response::new(pb::ReloadCredentialsResponse {
                    tokens: u32::try_from(reloaded.tokens).unwrap_or(u32::MAX),
                    tokens_source: reloaded.tokens_source,
                    signing_keys: u32::try_from(reloaded.signing_keys).unwrap_or(u32::MAX),
                    signing_keys_source: reloaded.signing_keys_source,
                }))
            }
            Err(err) => {
                let why = format!("{err:#}");
                tracing::error!(actor = %caller.subject, error = %why, "credentials not reloaded: those in force stay");
                Err(to_status(ServiceError::Precondition {
                    reason: "credentials-not-reloaded",
                    message: format!("the credentials were not reloaded, those in force stay: {why}"),
                }))
            }
        }
    }

    async fn import_dossier(
        &self,
        request: Request<pb::ImportDossierRequest>,
    ) -> Result<Response<pb::ImportDossierResponse>, Status> {
        let caller = caller(&request)?;
        // Who may import is said before what is wrong with the history.
        authorize(&caller, Action::Import).map_err(to_status)?;
        let history = crate::import::history_from_pb(request.into_inner()).map_err(to_status)?;
        let outcome = self.app.import(&caller, history).await.map_err(to_status)?;
        if !outcome.already_imported {
            tracing::debug!(actor = %caller.subject, receipt_code = %outcome.receipt_code, events = outcome.events, "dossier imported");
        }
        Ok(Response::new(pb::ImportDossierResponse {
            receipt_code: outcome.receipt_code,
            dossier_id: outcome.dossier_id.to_string(),
            events: outcome.events,
            already_imported: outcome.already_imported,
            catalogue_differences: outcome.catalogue_differences,
        }))
    }

    async fn load_calendar(
        &self,
        request: Request<pb::LoadCalendarRequest>,
    ) -> Result<Response<pb::LoadCalendarResponse>, Status> {
        let caller = caller(&request)?;
        authorize(&caller, Action::LoadReference).map_err(to_status)?;
        let table = HolidayTable::from_json(&request.into_inner().table_json)
            .map_err(|err| to_status(ServiceError::invalid("table_json".to_owned(), err.to_string())))?;
        let loaded = self
            .app
            .reference
            .load_calendar(&self.app.store, &caller, table)
            .await
            .map_err(to_status)?;
        if !loaded.replayed {
            tracing::info!(
                actor = %caller.subject,
                year = loaded.year,
                version = loaded.version,
                replaced_version = loaded.replaced_version,
                position = loaded.position,
                "holiday notice loaded"
            );
        }
        Ok(Response::new(pb::LoadCalendarResponse {
            year: loaded.year,
            version: loaded.version,
            replaced_version: loaded.replaced_version,
            position: loaded.position,
        }))
    }

    async fn load_catalogue(
        &self,
        request: Request<pb::LoadCatalogueRequest>,
    ) -> Result<Response<pb::LoadCatalogueResponse>, Status> {
        let caller = caller(&request)?;
        authorize(&caller, Action::LoadReference).map_err(to_status)?;
        let request = request.into_inner();
        let load_id = uuid::Uuid::parse_str(&request.load_id).map_err(|_| {
            to_status(ServiceError::invalid(
                "load_id".to_owned(),
                "must be a UUID chosen by the client; reuse it, and only it, when retrying".to_owned(),
            ))
        })?;
        let decision = convert::decision_from_pb(request).map_err(|e| to_status(ServiceError::Invalid(e)))?;
        let loaded = self
            .app
            .reference
            .load_catalogue(&self.app.store, &caller, load_id, decision)
            .await
            .map_err(to_status)?;
        if !loaded.replayed {
            tracing::info!(
                actor = %caller.subject,
                decision = %loaded.catalogue.decision,
                effective_from = %loaded.catalogue.effective_from,
                version = loaded.catalogue.version,
                entries = loaded.entries,
                abolished = loaded.abolished,
                "catalogue decision loaded"
            );
        }
        Ok(Response::new(pb::LoadCatalogueResponse {
            catalogue: Some(convert::catalogue_ref_to_pb(&loaded.catalogue)),
            entries: loaded.entries,
            abolished: loaded.abolished,
            replayed: loaded.replayed,
            position: loaded.position,
        }))
    }
}

/// The reference data: the catalogue and the calendar, for every role.
pub struct ReferenceApi<S> {
    app: Arc<App<S>>,
}

impl<S> ReferenceApi<S> {
    /// The service over `app`.
    pub fn new(app: Arc<App<S>>) -> Self {
        ReferenceApi { app }
    }
}

/// The most catalogue entries in one answer.
const MAX_PROCEDURES_PAGE: usize = 5_000;

#[tonic::async_trait]
impl<S: EventStore> pb::reference_service_server::ReferenceService for ReferenceApi<S> {
    async fn list_procedures(
        &self,
        request: Request<pb::ListProceduresRequest>,
    ) -> Result<Response<pb::ListProceduresResponse>, Status> {
        let caller = caller(&request)?;
        authorize(&caller, Action::ReadReference).map_err(to_status)?;
        let request = request.into_inner();
        let at = match request.at {
            None => Utc::now(),
            Some(ts) => timestamp_to_utc(&ts)
                .ok_or_else(|| to_status(ServiceError::invalid("at", "is not a valid timestamp")))?,
        };
        let page_size = match request.page_size as usize {
            0 => MAX_PROCEDURES_PAGE,
            n => n.min(MAX_PROCEDURES_PAGE),
        };
        let reference = self.app.reference.current();
        let agency = request.agency.trim();
        let code = request.code.trim();
        let after = request.page_token.trim();
        let mut matching = reference
            .catalogue
            .all_in_force(at)
            .filter(|f| code.is_empty() || f.entry.code.as_str() == code)
            .filter(|f| agency.is_empty() || f.entry.handled_by(agency))
            .filter(|f| after.is_empty() || f.entry.code.as_str() > after);
        let page: Vec<_> = matching.by_ref().take(page_size).collect();
        let next_page_token = match (matching.next(), page.last()) {
            (Some(_), Some(last)) => last.entry.code.as_str().to_owned(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListProceduresResponse {
            procedures: page
                .into_iter()
                .map(|f| pb::ProcedureInForce {
                    entry: Some(convert::catalogue_entry_to_pb(f.entry)),
                    catalogue: Some(convert::catalogue_ref_to_pb(&f.published.reference())),
                })
                .collect(),
            catalogue_version: reference.catalogue.version(),
            next_page_token,
        }))
    }

    async fn get_calendar(
        &self,
        request: Request<pb::GetCalendarRequest>,
    ) -> Result<Response<pb::GetCalendarResponse>, Status> {
        let caller = caller(&request)?;
        authorize(&caller, Action::ReadReference).map_err(to_status)?;
        let year = request.into_inner().year;
        let reference = self.app.reference.current();
        let table = reference
            .calendar
            .table_in_force(year)
            .map_err(|err| to_status(ServiceError::invalid("year", err.to_string())))?;
        let date = |d: &chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
        let loaded = reference.notices.get(&year);
        Ok(Response::new(pb::GetCalendarResponse {
            calendar: Some(pb::Calendar {
                year,
                version: table.version,
                source: table.source.clone(),
                provisional: table.is_provisional(),
                days_off: table
                    .days_off
                    .iter()
                    .filter(|d| !matches!(d.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun))
                    .map(date)
                    .collect(),
                working_saturdays: table.working_saturdays.iter().map(date).collect(),
                notes: table.notes.clone(),
                loaded_by: loaded.map(|l| l.actor.clone()).unwrap_or_default(),
                loaded_at: loaded.map(|l| utc_to_timestamp(l.at)),
            }),
        }))
    }
}

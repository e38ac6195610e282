//! `hoso tail`: the change feed, one line per event as the log records it.

use std::time::Duration;

use crate::out::outln;

use anyhow::Result;
use hoso_api::pb;

use super::{ConnectArgs, connect, local, local_rfc3339, status_error};

/// How often, at most, `--consumer` records its checkpoint: each one is an event kept in the
/// log for good, so at most 8,640 a day, and none while the log is idle.
const ACKNOWLEDGE_EVERY: Duration = Duration::from_secs(10);

/// `hoso tail`.
#[derive(clap::Args)]
pub(crate) struct TailArgs {
    /// Start at this position of the log (0: its start); with --consumer, only when the consumer
    /// has no checkpoint yet.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Follow as this named consumer: resume from its checkpoint, and record what has been
    /// printed as its checkpoint, at most once every 10 seconds and when stopping at
    /// --no-follow (integration or operator token). After Ctrl-C, up to 10 seconds' events print
    /// again.
    #[arg(long)]
    consumer: Option<String>,
    /// Only events of this type, e.g. DossierReceived (repeat the flag for several).
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    event_types: Vec<String>,
    /// Only events of dossiers handled by this agency, e.g. 000.00.04.G18 (repeat the flag for
    /// several).
    #[arg(long = "agency", value_name = "CODE")]
    agencies: Vec<String>,
    /// Stop once every event recorded so far is printed, instead of following the log.
    #[arg(long)]
    no_follow: bool,
    /// Print each event as one JSON line (envelope, data, metadata, handling agency).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

pub(crate) async fn tail(args: TailArgs) -> Result<()> {
    let mut client = pb::feed_service_client::FeedServiceClient::new(connect(&args.connect).await?);
    let request = pb::SubscribeRequest {
        from_position: args.from,
        consumer: args.consumer.clone().unwrap_or_default(),
        event_types: args.event_types.clone(),
        handling_agencies: args.agencies.clone(),
    };
    let mut feed = client.subscribe(request).await.map_err(status_error)?.into_inner();
    if !args.json {
        outln!(
            "{:>9}  {:<19}  {:<24} {:<32} {:<14} actor (times in UTC+7)",
            "position",
            "recorded at",
            "event",
            "stream",
            "agency"
        );
    }
    let mut ticks = tokio::time::interval(ACKNOWLEDGE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Where the feed resumes once what is printed is handled, and what the server has recorded.
    let mut handled = None;
    let mut recorded = None;
    let mut told_caught_up = false;
    loop {
        let message = tokio::select! {
            message = feed.message() => message.map_err(status_error)?,
            _ = ticks.tick() => {
                acknowledge(&mut client, args.consumer.as_deref(), handled, &mut recorded).await?;
                continue;
            }
        };
        let Some(message) = message else {
            anyhow::bail!("the server ended the feed without saying why");
        };
        if let Some(event) = &message.event {
            print(event, &message.handling_agency, message.next_position, args.json)?;
        }
        handled = Some(message.next_position);
        if message.caught_up && !told_caught_up && !args.no_follow {
            eprintln!(
                "hoso: caught up with the log at position {}; following it (Ctrl-C to stop)",
                message.next_position
            );
            told_caught_up = true;
        }
        if args.no_follow && message.caught_up {
            acknowledge(&mut client, args.consumer.as_deref(), handled, &mut recorded).await?;
            return Ok(());
        }
    }
}

/// Records `handled` as `consumer`'s checkpoint if it moved since `recorded`.
async fn acknowledge(
    client: &mut pb::feed_service_client::FeedServiceClient<hoso::connect::Authorized>,
    consumer: Option<&str>,
    handled: Option<u64>,
    recorded: &mut Option<u64>,
) -> Result<()> {
    let (Some(consumer), Some(next_position)) = (consumer, handled) else {
        return Ok(());
    };
    if *recorded == Some(next_position) {
        return Ok(());
    }
    let request = pb::AcknowledgeRequest {
        consumer: consumer.to_owned(),
        next_position,
    };
    let answer = client.acknowledge(request).await.map_err(status_error)?.into_inner();
    *recorded = Some(answer.next_position.max(next_position));
    Ok(())
}

fn print(event: &pb::RecordedEvent, agency: &str, next_position: u64, json: bool) -> Result<()> {
    if json {
        let line = serde_json::json!({
            "stream_id": event.stream_id,
            "version": event.version,
            "position": event.position,
            "next_position": next_position,
            "event_id": event.event_id,
            "event_type": event.event_type,
            "schema_version": event.schema_version,
            "occurred_at": local_rfc3339(event.occurred_at.as_ref()),
            "recorded_at": local_rfc3339(event.recorded_at.as_ref()),
            "hash": event.hash,
            "handling_agency": agency,
            "data": serde_json::from_str::<serde_json::Value>(&event.data_json).unwrap_or_default(),
            "metadata": serde_json::from_str::<serde_json::Value>(&event.metadata_json).unwrap_or_default(),
        });
        outln!("{line}");
        return Ok(());
    }
    outln!(
        "{:>9}  {:<19}  {:<24} {:<32} {:<14} {}",
        event.position,
        local(event.recorded_at.as_ref()),
        event.event_type,
        event.stream_id,
        if agency.is_empty() { "-" } else { agency },
        event.actor,
    );
    Ok(())
}

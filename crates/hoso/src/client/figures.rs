//! `hoso figures`: a period's index 766 figures as tables.

use crate::out::outln;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use hoso_api::pb;

use super::{ConnectArgs, connect, descriptors, local_rfc3339, status_error};

/// `hoso figures`.
#[derive(clap::Args)]
pub(crate) struct FiguresArgs {
    /// The month, `YYYY-MM`.
    #[arg(long)]
    month: String,
    /// Only events recorded at or before this instant count (RFC 3339); default: now. The
    /// figures printed name the cut-off used: give it again to get the same figures.
    #[arg(long)]
    cutoff: Option<DateTime<Utc>>,
    /// Print the answer as JSON instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

pub(crate) async fn figures(args: FiguresArgs) -> Result<()> {
    let mut client = pb::reports_service_client::ReportsServiceClient::new(connect(&args.connect).await?);
    let request = pb::GetIndexFiguresRequest {
        scope: Some(pb::ReportScope {
            month: args.month.clone(),
            cutoff: args.cutoff.map(hoso_api::convert::utc_to_timestamp),
            ..Default::default()
        }),
    };
    let figures = client
        .get_index_figures(request)
        .await
        .map_err(status_error)?
        .into_inner();
    if args.json {
        let mut out = serde_json::Serializer::pretty(std::io::stdout());
        let message = prost_reflect::DynamicMessage::decode(
            descriptors()?
                .get_message_by_name("hoso.v1.GetIndexFiguresResponse")
                .context("the built-in API description lacks GetIndexFiguresResponse")?,
            prost::Message::encode_to_vec(&figures).as_slice(),
        )?;
        message.serialize_with_options(
            &mut out,
            &prost_reflect::SerializeOptions::new().skip_default_fields(false),
        )?;
        outln!();
        return Ok(());
    }
    let cutoff = local_rfc3339(figures.cutoff.as_ref());
    outln!(
        "index 766 figures, {} to {} (excluded), as of {cutoff}",
        figures.start_date,
        figures.end_date
    );
    let in_scope = figures
        .province
        .as_ref()
        .and_then(|p| p.on_time.as_ref())
        .and_then(|o| o.on_time.as_ref())
        .map_or(0, |r| r.denominator);
    if in_scope == 0 {
        outln!(
            "no dossier of this period had been recorded by the cut-off: the cut-off is about when events were recorded in the log, not when they occurred"
        );
    }
    let rate = |r: Option<&pb::Ratio>| match r {
        Some(r) if r.denominator > 0 => format!("{:>7}% {:>7}/{:<7}", r.rate_percent, r.numerator, r.denominator),
        Some(_) => format!("{:>25}", "no dossiers"),
        None => format!("{:>25}", "absent"),
    };
    let province = figures.province.unwrap_or_default();
    outln!();
    outln!(
        "{:<6} {:<40} {:>25} {:>12}",
        "code",
        "indicator",
        "rate  numerator/denominator",
        "points"
    );
    for indicator in &province.indicators {
        // The indicator's own rate (for 13 the product of its factors), beside the numerator and
        // denominator that make it; never a factor's rate.
        let ratio = if indicator.measured {
            indicator.ratio.as_ref().map(|r| pb::Ratio {
                rate_percent: indicator.rate_percent.clone(),
                ..r.clone()
            })
        } else {
            None
        };
        let points = if indicator.points.is_empty() {
            "-".to_owned()
        } else {
            format!("{}/{}", indicator.points, indicator.max_points)
        };
        outln!(
            "{:<6} {:<40} {} {:>12}",
            indicator.code,
            indicator.name_en,
            rate(ratio.as_ref()),
            points
        );
        for factor in &indicator.factors {
            outln!(
                "{:<6} {:<40} {}",
                "",
                format!("  × {}", factor.name_en),
                rate(factor.ratio.as_ref())
            );
        }
    }
    outln!();
    outln!(
        "{:<16} {:>25} {:>8}",
        "handling agency",
        "on time (on time/in scope)",
        "overdue"
    );
    for agency in &figures.agencies {
        let on_time = agency.on_time.clone().unwrap_or_default();
        outln!(
            "{:<16} {} {:>8}",
            agency.group,
            rate(on_time.on_time.as_ref()),
            on_time.overdue
        );
    }
    Ok(())
}

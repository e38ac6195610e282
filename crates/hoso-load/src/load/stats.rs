//! What `hoso-load` measures: latency histograms (HdrHistogram, microseconds), counts, errors by
//! gRPC status code and the projection's lag, and the summary printed at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// The largest latency recorded exactly: an hour (longer ones are recorded as an hour).
const MAX_MICROS: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("the bounds are valid")
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Everything measured so far.
pub(crate) struct Stats {
    /// Every acknowledged command's latency.
    latency: Histogram<u64>,
    /// The latencies since the last progress line.
    interval: Histogram<u64>,
    /// From a command's acknowledgement to the live projection having applied it.
    lag: Histogram<u64>,
    /// The projection's lag in events, at each sample.
    lag_events: Histogram<u64>,
    /// Commands acknowledged.
    pub(crate) commands: u64,
    /// Of those, retries of commands recorded before (nothing written).
    pub(crate) replayed: u64,
    /// Events written by the acknowledged commands.
    pub(crate) events: u64,
    /// Failed attempts by gRPC status code (retried ones included).
    pub(crate) errors: BTreeMap<String, u64>,
    /// Commands refused for good (their dossier was left unfinished).
    pub(crate) refused: u64,
    /// Dossiers whose first command was sent.
    pub(crate) dossiers_started: u64,
    /// Dossiers whose last command was acknowledged.
    pub(crate) dossiers_finished: u64,
}

impl Stats {
    pub(crate) fn new() -> Stats {
        Stats {
            latency: histogram(),
            interval: histogram(),
            lag: histogram(),
            lag_events: Histogram::new(3).expect("3 significant digits are valid"),
            commands: 0,
            replayed: 0,
            events: 0,
            errors: BTreeMap::new(),
            refused: 0,
            dossiers_started: 0,
            dossiers_finished: 0,
        }
    }

    /// An acknowledged command: its latency (from when it was due), and the events it wrote.
    pub(crate) fn acknowledged(&mut self, latency: Duration, events: u64, replayed: bool) {
        let us = micros(latency);
        self.latency.saturating_record(us);
        self.interval.saturating_record(us);
        self.commands += 1;
        if replayed {
            self.replayed += 1;
        } else {
            self.events += events;
        }
    }

    /// A failed attempt.
    pub(crate) fn error(&mut self, code: tonic::Code) {
        *self.errors.entry(code_name(code)).or_default() += 1;
    }

    /// A projection lag sample: how long an acknowledged command took to be applied.
    pub(crate) fn lag(&mut self, lag: Duration) {
        self.lag.saturating_record(micros(lag));
    }

    /// A projection lag sample in events.
    pub(crate) fn lag_events(&mut self, events: u64) {
        self.lag_events.saturating_record(events);
    }

    /// The p50 and p99 of the latencies since the last call, and resets them.
    pub(crate) fn take_interval(&mut self) -> Option<(Duration, Duration)> {
        if self.interval.is_empty() {
            return None;
        }
        let quantiles = (
            Duration::from_micros(self.interval.value_at_quantile(0.5)),
            Duration::from_micros(self.interval.value_at_quantile(0.99)),
        );
        self.interval.reset();
        Some(quantiles)
    }

    /// The p99 of the projection lag so far, if sampled.
    pub(crate) fn lag_p99(&self) -> Option<Duration> {
        (!self.lag.is_empty()).then(|| Duration::from_micros(self.lag.value_at_quantile(0.99)))
    }

    /// The summary over `elapsed`.
    pub(crate) fn summary(&self, elapsed: Duration) -> Summary {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let quantiles = |h: &Histogram<u64>| {
            (!h.is_empty()).then(|| Quantiles {
                p50: Duration::from_micros(h.value_at_quantile(0.5)),
                p99: Duration::from_micros(h.value_at_quantile(0.99)),
                p999: Duration::from_micros(h.value_at_quantile(0.999)),
                max: Duration::from_micros(h.max()),
                count: h.len(),
            })
        };
        Summary {
            seconds,
            commands: self.commands,
            replayed: self.replayed,
            events: self.events,
            commands_per_second: self.commands as f64 / seconds,
            events_per_second: self.events as f64 / seconds,
            latency: quantiles(&self.latency),
            lag: quantiles(&self.lag),
            lag_events_p99: (!self.lag_events.is_empty()).then(|| self.lag_events.value_at_quantile(0.99)),
            lag_events_max: (!self.lag_events.is_empty()).then(|| self.lag_events.max()),
            errors: self.errors.clone(),
            refused: self.refused,
            dossiers_started: self.dossiers_started,
            dossiers_finished: self.dossiers_finished,
            lag_sample_ms: 0,
        }
    }
}

/// A gRPC status code as its canonical name (UNAVAILABLE, FAILED_PRECONDITION, ...).
pub(crate) fn code_name(code: tonic::Code) -> String {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
    .to_owned()
}

/// Quantiles of a histogram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quantiles {
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) p999: Duration,
    pub(crate) max: Duration,
    pub(crate) count: u64,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub(crate) seconds: f64,
    pub(crate) commands: u64,
    pub(crate) replayed: u64,
    pub(crate) events: u64,
    pub(crate) commands_per_second: f64,
    pub(crate) events_per_second: f64,
    pub(crate) latency: Option<Quantiles>,
    pub(crate) lag: Option<Quantiles>,
    pub(crate) lag_events_p99: Option<u64>,
    pub(crate) lag_events_max: Option<u64>,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) refused: u64,
    pub(crate) dossiers_started: u64,
    pub(crate) dossiers_finished: u64,
    /// How often the projection's lag was sampled (0: never).
    pub(crate) lag_sample_ms: u64,
}

/// Milliseconds with up to three decimals.
pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}

impl Summary {
    /// The summary as JSON, for scripts.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let quantiles = |q: &Option<Quantiles>| match q {
            None => serde_json::Value::Null,
            Some(q) => serde_json::json!({
                "p50_ms": ms(q.p50),
                "p99_ms": ms(q.p99),
                "p99_9_ms": ms(q.p999),
                "max_ms": ms(q.max),
                "count": q.count,
            }),
        };
        serde_json::json!({
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
            "commands": self.commands,
            "replayed": self.replayed,
            "events": self.events,
            "commands_per_second": self.commands_per_second.round(),
            "events_per_second": self.events_per_second.round(),
            "latency": quantiles(&self.latency),
            "projection_lag": quantiles(&self.lag),
            "projection_lag_events_p99": self.lag_events_p99,
            "projection_lag_events_max": self.lag_events_max,
            "projection_lag_sample_ms": self.lag_sample_ms,
            "errors": self.errors,
            "refused": self.refused,
            "dossiers_started": self.dossiers_started,
            "dossiers_finished": self.dossiers_finished,
        })
    }

    /// The summary in words.
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "commands   {} acknowledged in {:.1} s ({:.0}/s){}\n",
            self.commands,
            self.seconds,
            self.commands_per_second,
            if self.replayed > 0 {
                format!(", {} of them retries of commands recorded before", self.replayed)
            } else {
                String::new()
            }
        ));
        out.push_str(&format!(
            "events     {} written ({:.0}/s)\n",
            self.events, self.events_per_second
        ));
        out.push_str(&format!(
            "dossiers   {} started, {} finished\n",
            self.dossiers_started, self.dossiers_finished
        ));
        match &self.latency {
            Some(q) => out.push_str(&format!(
                "latency    p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms (from when each command was due)\n",
                ms(q.p50),
                ms(q.p99),
                ms(q.p999),
                ms(q.max)
            )),
            None => out.push_str("latency    no command was acknowledged\n"),
        }
        if self.errors.is_empty() {
            out.push_str("errors     none\n");
        } else {
            let list: Vec<String> = self.errors.iter().map(|(code, n)| format!("{code} {n}")).collect();
            out.push_str(&format!(
                "errors     {} (attempts; {} commands refused for good)\n",
                list.join(", "),
                self.refused
            ));
        }
        if let Some(q) = &self.lag {
            out.push_str(&format!(
                "projection lag  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms over {} commands, p99 {} events behind (from the acknowledgement to the first status sample, every {} ms, that shows it applied: at most that much over)\n",
                ms(q.p50),
                ms(q.p99),
                ms(q.max),
                q.count,
                self.lag_events_p99.unwrap_or(0),
                self.lag_sample_ms
            ));
        }
        out
    }
}

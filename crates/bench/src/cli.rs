//! Command-line arguments of every subcommand, and the small value parsers
//! they need (durations such as `10s`, tags such as `broker=mosquitto`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `thingport-bench`: MQTT load generator.
#[derive(Debug, Parser)]
#[command(name = "thingport-bench", version, about = "MQTT load generator for Thingport, Mosquitto or any MQTT broker")]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publishers and subscribers: throughput, losses, latency, broker CPU.
    Pubsub(PubsubArgs),
    /// Many idle connections: broker memory per connection.
    Connections(ConnectionsArgs),
    /// Broker CPU per full TLS handshake (drives `openssl s_time`).
    Handshake(HandshakeArgs),
    /// Render JSON lines written with `--json` as markdown tables.
    Report(ReportArgs),
}

/// Where the broker is and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Broker host name or IP address.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port.
    #[arg(long, default_value_t = 8883)]
    pub port: u16,
    /// Use TLS (needs --ca; --cert and --key for a client certificate).
    #[arg(long)]
    pub tls: bool,
    /// CA certificate(s) (PEM) that signed the broker's certificate.
    #[arg(long, requires = "tls")]
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM).
    #[arg(long, requires = "tls", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM: PKCS#8, SEC1 or PKCS#1).
    #[arg(long, requires = "tls", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Name to verify the broker certificate against (default: --host).
    #[arg(long)]
    pub server_name: Option<String>,
    /// MQTT protocol level: 4 (3.1.1) or 5.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(4..=5))]
    pub mqtt_version: u8,
    /// Keep-alive announced in CONNECT, seconds.
    #[arg(long, default_value_t = 60)]
    pub keep_alive: u16,
    /// Prefix of every client id (a per-run suffix keeps runs apart).
    #[arg(long, default_value = "bench")]
    pub client_id_prefix: String,
}

/// Options every measuring subcommand shares.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Broker process id: sample its RSS and CPU time from /proc.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Print one JSON object (one line) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Free-form KEY=VALUE labels copied into the JSON (repeatable), e.g.
    /// `--tag broker=mosquitto --tag scenario="QoS 0 fan-in"`.
    #[arg(long = "tag", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
}

/// How publishers' topics map to subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopicMode {
    /// Every publisher publishes to one topic every subscriber subscribes to
    /// (N→1 with one subscriber).
    FanIn,
    /// Same topology as fan-in, named for 1→M use: one topic, every
    /// subscriber receives every message.
    FanOut,
    /// Publisher i publishes to its own topic, read by subscriber i
    /// (needs as many publishers as subscribers).
    Pairs,
}

/// `pubsub` arguments.
#[derive(Debug, Clone, Args)]
pub struct PubsubArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Publishing connections.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Subscribing connections.
    #[arg(long, default_value_t = 1)]
    pub subscribers: usize,
    /// Topic layout.
    #[arg(long, value_enum, default_value_t = TopicMode::Pairs)]
    pub topic_mode: TopicMode,
    /// QoS of publications and subscriptions (0 or 1).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,
    /// Payload size in bytes (at least 20: timestamp, publisher, sequence).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Total publish rate over all publishers, messages per second (0 = as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Measured window.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Publishing before the measured window starts (not counted).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Unacknowledged QoS 1 publishes allowed per publisher.
    #[arg(long, default_value_t = 100)]
    pub inflight: usize,
    /// Most publishes written per flush at the unlimited rate.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// After publishing stops, how long to wait for outstanding deliveries.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Connections opened at once while setting up.
    #[arg(long, default_value_t = 32)]
    pub connect_concurrency: usize,
    /// First topic level; every topic is `PREFIX/<run id>/…` (a broker with
    /// per-device policies may need the thing name here).
    #[arg(long, default_value = "bench")]
    pub topic_prefix: String,
}

/// `connections` arguments.
#[derive(Debug, Clone, Args)]
pub struct ConnectionsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// New connections per second.
    #[arg(long, default_value_t = 500.0)]
    pub connect_rate: f64,
    /// How long to keep them all open once connected.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub hold: Duration,
    /// Give up on one connection attempt after this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
}

/// `handshake` arguments.
#[derive(Debug, Clone, Args)]
pub struct HandshakeArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// Broker host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker TLS port.
    #[arg(long, default_value_t = 8883)]
    pub port: u16,
    /// CA certificate (PEM).
    #[arg(long)]
    pub ca: PathBuf,
    /// Client certificate (PEM).
    #[arg(long)]
    pub cert: PathBuf,
    /// Client private key (PEM).
    #[arg(long)]
    pub key: PathBuf,
    /// Seconds `openssl s_time` runs for.
    #[arg(long, default_value_t = 10)]
    pub time: u32,
    /// The openssl binary.
    #[arg(long, default_value = "openssl")]
    pub openssl: String,
}

/// Output format of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown tables.
    Markdown,
    /// One JSON array of every result.
    Json,
}

/// `report` arguments.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Files of JSON lines, as printed by the other subcommands with --json.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,
}

/// Parse `250ms`, `10s`, `1.5s`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("not a duration: {s:?} (try 10s, 500ms, 2m)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("not a duration: {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// Parse `KEY=VALUE`.
pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn tags() {
        assert_eq!(parse_tag("broker=mosquitto"), Ok(("broker".into(), "mosquitto".into())));
        assert_eq!(parse_tag("s=a=b"), Ok(("s".into(), "a=b".into())));
        assert!(parse_tag("=x").is_err());
        assert!(parse_tag("x").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

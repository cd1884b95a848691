//! Device shadow benchmark against a running Thingport, over MQTT with mutual TLS.
//!
//! ```sh
//! cargo build --release -p thingport --examples
//! target/release/thingport serve --data-dir /tmp/tp &          # or any running server
//! target/release/examples/shadow_bench --data-dir /tmp/tp --clients 8 --seconds 10
//! ```
//!
//! For each of N things it opens two MQTT 3.1.1 connections with the thing's
//! certificate: the *updater* (client id `THING`, subscribed to
//! `$aws/things/THING/shadow/update/accepted|rejected`) and the *listener*
//! (client id `THING-delta`, subscribed to `…/update/delta`). Then two
//! phases, each `--seconds` long, every updater keeping `--inflight` requests
//! outstanding (closed loop):
//!
//! * `reported`: `{"state":{"reported":{"r":SEQ}},"clientToken":…}` — measures
//!   update → `/update/accepted` round trips and their rate;
//! * `desired`: `{"state":{"desired":{"d":SEQ}},…}` — the same, plus the time
//!   from sending the update to the listener receiving `/update/delta` with
//!   `d == SEQ` (a second client, as an app → device command would travel).
//!
//! Devices are provisioned through the `thingport` CLI against `--data-dir`
//! (with the default device policy: a device may use its own shadow), or
//! given with `--device-dir DIR` (repeatable; DIR holds
//! `certificate.pem.crt`, `private.pem.key`, `root-ca.pem`, and its file
//! name is the thing name). The MQTT address comes from
//! `DATA_DIR/endpoints.json` unless `--port` is given.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use serde_json::Value;
use tokio::sync::mpsc;

#[derive(Parser, Debug, Clone)]
#[command(about = "Device shadow benchmark: update→accepted round trips and update→delta latency over mTLS MQTT")]
struct Args {
    /// Data directory of the running server (endpoints.json; the CLI provisions devices there).
    #[arg(long, default_value = "./thingport-data")]
    data_dir: PathBuf,
    /// Things (each with an updater and a delta listener connection).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Outstanding updates per updater.
    #[arg(long, default_value_t = 1)]
    inflight: usize,
    /// Existing device directories to use instead of provisioning (repeatable).
    #[arg(long)]
    device_dir: Vec<PathBuf>,
    /// The thingport binary used to provision (default: next to this example's directory).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Host name to connect to (must match the server certificate).
    #[arg(long, default_value = "localhost")]
    host: String,
    /// MQTT port (default: from endpoints.json).
    #[arg(long)]
    port: Option<u16>,
    /// Leave Nagle's algorithm on in the clients (shows the ~40 ms delayed-ACK stall).
    #[arg(long)]
    nagle: bool,
    /// Only run this phase: reported or desired.
    #[arg(long)]
    only: Option<String>,
}

struct Device {
    thing: String,
    dir: PathBuf,
}

fn thingport_bin(args: &Args) -> Result<PathBuf> {
    if let Some(b) = &args.bin {
        return Ok(b.clone());
    }
    // target/<profile>/examples/shadow_bench -> target/<profile>/thingport (or a copy beside it)
    let exe = std::env::current_exe()?;
    let candidates: Vec<PathBuf> =
        exe.ancestors().skip(1).take(2).map(|d| d.join(format!("thingport{}", std::env::consts::EXE_SUFFIX))).collect();
    match candidates.iter().find(|c| c.is_file()) {
        Some(b) => Ok(b.clone()),
        None => {
            bail!("thingport not found at {candidates:?}: build it (cargo build --release -p thingport) or pass --bin")
        }
    }
}

fn provision(args: &Args) -> Result<(Vec<Device>, Option<PathBuf>)> {
    if !args.device_dir.is_empty() {
        let devs = args
            .device_dir
            .iter()
            .map(|d| Device {
                thing: d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                dir: d.clone(),
            })
            .collect();
        return Ok((devs, None));
    }
    let bin = thingport_bin(args)?;
    let pid = std::process::id();
    let base = std::env::temp_dir().join(format!("shadow-bench-{pid}"));
    std::fs::create_dir_all(&base)?;
    let mut devs = Vec::new();
    for i in 0..args.clients {
        let thing = format!("shadow-bench-{pid}-{i}");
        let dir = base.join(&thing);
        let out = std::process::Command::new(&bin)
            .args(["provision", &thing, "--out"])
            .arg(&dir)
            .args(["--policy", "ThingportDefaultDevicePolicy", "--data-dir"])
            .arg(&args.data_dir)
            .output()
            .with_context(|| format!("run {}", bin.display()))?;
        if !out.status.success() {
            bail!(
                "thingport provision {thing} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        devs.push(Device { thing, dir });
    }
    Ok((devs, Some(base)))
}

fn tls(dir: &Path) -> Result<Arc<rustls::ClientConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let read = |f: &str| std::fs::read(dir.join(f)).with_context(|| format!("read {}", dir.join(f).display()));
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&read("root-ca.pem")?) {
        roots.add(c?)?;
    }
    let chain = CertificateDer::pem_slice_iter(&read("certificate.pem.crt")?).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(&read("private.pem.key")?)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?,
    ))
}

/// A connected client: publishes come out of `rx` with their arrival time.
struct Conn {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<(String, Value, Instant)>,
}

async fn connect(args: &Args, port: u16, dev: &Device, client_id: &str, filters: &[String]) -> Result<Conn> {
    let mut o = MqttOptions::new(client_id, args.host.clone(), port);
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls(&dev.dir)?)));
    o.set_keep_alive(Duration::from_secs(60));
    o.set_inflight(100);
    let (client, mut ev) = AsyncClient::new(o, 1000);
    if !args.nagle {
        // Without it the client's PUBACK for /accepted and its next update
        // wait for the server's delayed ACK (~40 ms per round trip).
        let mut net = ev.network_options();
        net.set_tcp_nodelay(true);
        ev.set_network_options(net);
    }
    for f in filters {
        client.subscribe(f.clone(), QoS::AtLeastOnce).await?;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
    let want = filters.len();
    let id = client_id.to_string();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut acks = 0;
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::SubAck(a))) => {
                    if a.return_codes.iter().any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)) {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Err(format!("{id}: subscription refused")));
                        }
                    }
                    acks += 1;
                    if acks == want {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Ok(()));
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let now = Instant::now();
                    let v = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    if tx.send((p.topic, v, now)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(Err(format!("{id}: {e}")));
                    } else if !tx.is_closed() {
                        eprintln!("{id}: connection ended: {e}");
                    }
                    return;
                }
            }
        }
    });
    match tokio::time::timeout(Duration::from_secs(15), ready_rx).await {
        Ok(Ok(Ok(()))) => Ok(Conn { client, rx }),
        Ok(Ok(Err(e))) => bail!(e),
        Ok(Err(_)) => bail!("{client_id}: event loop ended before SUBACK"),
        Err(_) => bail!("{client_id}: no SUBACK within 15 s"),
    }
}

#[derive(Default)]
struct PhaseResult {
    accepted: Vec<Duration>,
    delta: Vec<Duration>,
    rejected: usize,
    timeouts: usize,
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// One updater (and, in the desired phase, its delta listener) for one phase.
async fn drive(
    thing: String,
    updater: &mut Conn,
    listener: Option<&mut Conn>,
    desired: bool,
    until: Instant,
    inflight: usize,
    start_seq: u64,
) -> PhaseResult {
    let prefix = format!("$aws/things/{thing}/shadow");
    let (accepted_t, rejected_t, delta_t) =
        (format!("{prefix}/update/accepted"), format!("{prefix}/update/rejected"), format!("{prefix}/update/delta"));
    let mut res = PhaseResult::default();
    let mut seq = start_seq;
    // seq -> (sent at, accepted yet, delta yet)
    let mut pending: HashMap<u64, (Instant, bool, bool)> = HashMap::new();
    let mut listener = listener;
    loop {
        while pending.len() < inflight && Instant::now() < until {
            seq += 1;
            let (key, section) = if desired { ("d", "desired") } else { ("r", "reported") };
            let body = format!(r#"{{"state":{{"{section}":{{"{key}":{seq}}}}},"clientToken":"{seq}"}}"#);
            let t0 = Instant::now();
            if updater.client.publish(format!("{prefix}/update"), QoS::AtLeastOnce, false, body).await.is_err() {
                res.timeouts += 1;
                return res;
            }
            pending.insert(seq, (t0, false, !desired));
        }
        if pending.is_empty() {
            return res;
        }
        let oldest = pending.values().map(|p| p.0).min().unwrap();
        let deadline = tokio::time::Instant::from_std(oldest + TIMEOUT);
        let next = async {
            match listener.as_deref_mut() {
                Some(l) => tokio::select! {
                    m = updater.rx.recv() => m,
                    m = l.rx.recv() => m,
                },
                None => updater.rx.recv().await,
            }
        };
        let msg = tokio::select! {
            m = next => m,
            _ = tokio::time::sleep_until(deadline) => {
                // Give up on everything older than the timeout.
                let now = Instant::now();
                let before = pending.len();
                pending.retain(|_, p| now.duration_since(p.0) < TIMEOUT);
                res.timeouts += before - pending.len();
                continue;
            }
        };
        let Some((topic, v, at)) = msg else {
            res.timeouts += pending.len();
            return res;
        };
        let token = v.get("clientToken").and_then(Value::as_str).and_then(|t| t.parse::<u64>().ok());
        if topic == accepted_t {
            if let Some(p) = token.and_then(|t| pending.get_mut(&t)) {
                res.accepted.push(at.duration_since(p.0));
                p.1 = true;
            }
        } else if topic == rejected_t {
            if let Some(t) = token {
                if pending.remove(&t).is_some() {
                    res.rejected += 1;
                }
            }
        } else if topic == delta_t {
            if let Some(d) = v["state"]["d"].as_u64() {
                if let Some(p) = pending.get_mut(&d) {
                    if !p.2 {
                        res.delta.push(at.duration_since(p.0));
                        p.2 = true;
                    }
                }
            }
        }
        pending.retain(|_, p| !(p.1 && p.2));
    }
}

fn pct(sorted: &[Duration], q: f64) -> String {
    if sorted.is_empty() {
        return "-".into();
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    ms(sorted[i])
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn mqtt_port(args: &Args) -> Result<u16> {
    if let Some(p) = args.port {
        return Ok(p);
    }
    let path = args.data_dir.join("endpoints.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("read {} (is the server running? or pass --port)", path.display()))?;
    let v: Value = serde_json::from_str(&text)?;
    let mqtt = v["mqtt"].as_str().context("endpoints.json has no mqtt")?;
    Ok(mqtt.rsplit_once(':').context("bad mqtt address")?.1.parse()?)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let port = mqtt_port(&args)?;
    let (devices, tmp) = provision(&args)?;
    if devices.is_empty() {
        bail!("no devices");
    }

    let mut pairs = Vec::new();
    for d in &devices {
        let p = format!("$aws/things/{}/shadow", d.thing);
        let updater =
            connect(&args, port, d, &d.thing, &[format!("{p}/update/accepted"), format!("{p}/update/rejected")])
                .await?;
        let listener = connect(&args, port, d, &format!("{}-delta", d.thing), &[format!("{p}/update/delta")]).await?;
        pairs.push((d.thing.clone(), updater, listener));
    }

    println!(
        "shadow_bench: {} things ({} mTLS MQTT 3.1.1 connections) to {}:{port}, {} s per phase, {} in flight per updater",
        pairs.len(),
        pairs.len() * 2,
        args.host,
        args.seconds,
        args.inflight
    );
    println!();
    println!(
        "{:<10} {:>8} {:>9} | {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8} | {:>5}",
        "phase", "updates", "updates/s", "acc p50", "p90", "p99", "max", "delta p50", "p90", "p99", "max", "errors"
    );
    println!(
        "{:<10} {:>8} {:>9} | {:>35} | {:>36} | {:>5}",
        "", "", "", "update → accepted (ms)", "update → delta at 2nd client (ms)", ""
    );

    let mut seq_base = 0u64;
    for (name, desired) in [("reported", false), ("desired", true)] {
        if args.only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let started = Instant::now();
        let until = started + Duration::from_secs_f64(args.seconds);
        let mut tasks = Vec::new();
        for (thing, mut updater, mut listener) in pairs.drain(..) {
            let inflight = args.inflight.max(1);
            let base = seq_base;
            tasks.push(tokio::spawn(async move {
                let r = drive(thing.clone(), &mut updater, Some(&mut listener), desired, until, inflight, base).await;
                (thing, updater, listener, r)
            }));
        }
        let mut all = PhaseResult::default();
        for t in tasks {
            let (thing, u, l, r) = t.await?;
            all.accepted.extend(r.accepted);
            all.delta.extend(r.delta);
            all.rejected += r.rejected;
            all.timeouts += r.timeouts;
            pairs.push((thing, u, l));
        }
        let elapsed = started.elapsed().as_secs_f64();
        seq_base += 10_000_000;
        all.accepted.sort();
        all.delta.sort();
        let (a, d) = (&all.accepted, &all.delta);
        println!(
            "{:<10} {:>8} {:>9.0} | {:>8} {:>8} {:>8} {:>8} | {:>9} {:>8} {:>8} {:>8} | {:>5}",
            name,
            a.len(),
            a.len() as f64 / elapsed,
            pct(a, 0.5),
            pct(a, 0.9),
            pct(a, 0.99),
            a.last().map(|x| ms(*x)).unwrap_or("-".into()),
            if desired { pct(d, 0.5) } else { "-".into() },
            if desired { pct(d, 0.9) } else { "-".into() },
            if desired { pct(d, 0.99) } else { "-".into() },
            if desired { d.last().map(|x| ms(*x)).unwrap_or("-".into()) } else { "-".into() },
            all.rejected + all.timeouts
        );
        if all.rejected + all.timeouts > 0 {
            println!(
                "           ({} rejected, {} timed out after {} s)",
                all.rejected,
                all.timeouts,
                TIMEOUT.as_secs()
            );
        }
    }

    for (_, u, l) in pairs {
        let (Conn { client: uc, rx: urx }, Conn { client: lc, rx: lrx }) = (u, l);
        drop((urx, lrx)); // the event loops end quietly from here on
        let _ = uc.disconnect().await;
        let _ = lc.disconnect().await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    if let Some(dir) = tmp {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

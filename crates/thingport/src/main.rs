//! `thingport`: the server and its command line.

mod api;
mod cli;
mod client;
mod config;
mod datadir;
mod dataplane;
mod device_https;
mod file_transfer;
mod groups;
mod payload_keys;
mod policies;
mod registry;
mod rules_engine;
mod server;
mod shadows;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "thingport", version, about = "A self-hosted IoT core with the AWS IoT security model")]
struct Cli {
    /// Data directory (keys, certificates, database).
    #[arg(long, global = true, env = "THINGPORT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Make a device identity: thing, key pair, certificate, files.
    Provision {
        /// Thing name.
        name: String,
        /// Directory for certificate.pem.crt, private.pem.key and root-ca.pem.
        #[arg(long)]
        out: PathBuf,
        /// Key type: ec (P-256, default), ec-p384, rsa (2048), rsa3072, rsa4096.
        #[arg(long, default_value = "ec")]
        key_type: pki::KeyType,
        /// Policy to attach to the certificate.
        #[arg(long, default_value = "ThingportDefaultDevicePolicy")]
        policy: String,
        /// Attach no policy (the device can do nothing until one is attached).
        #[arg(long)]
        no_policy: bool,
    },
    /// The device side of payload keys: unwrap a data key, encrypt and decrypt files.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Topic rules (SQL over every message, with actions).
    #[command(subcommand)]
    Rules(RulesCmd),
    /// The embedded table store the dynamoDB-style rule action writes to.
    #[command(subcommand)]
    Tables(TablesCmd),
    /// Authorization policies (AWS IoT policy documents).
    #[command(subcommand)]
    Policies(PoliciesCmd),
    /// Things in the registry.
    #[command(subcommand)]
    Things(ThingsCmd),
    /// Device certificates.
    #[command(subcommand)]
    Certs(CertsCmd),
    /// Your own certificate authorities (bring your own CA).
    #[command(subcommand)]
    Ca(CaCmd),
    /// The server's own TLS certificate.
    #[command(subcommand, name = "server-cert")]
    ServerCert(ServerCertCmd),
    /// Thing types.
    #[command(subcommand)]
    Types(cli::groups::TypesCmd),
    /// Static thing groups and their things.
    #[command(subcommand)]
    Groups(cli::groups::GroupsCmd),
    /// Registry events ($aws/events/thing…), off by default.
    #[command(subcommand)]
    Events(cli::groups::EventsCmd),
}

#[derive(Subcommand)]
enum RulesCmd {
    /// Create a rule from a topicRulePayload JSON file, or from --sql with --republish/--http.
    Create {
        name: String,
        /// JSON file with a topicRulePayload (sql, actions, errorAction, …).
        file: Option<PathBuf>,
        #[arg(long)]
        sql: Option<String>,
        /// Republish the selected message to this topic (template).
        #[arg(long)]
        republish: Option<String>,
        /// POST the selected message to this URL (template).
        #[arg(long)]
        http: Option<String>,
    },
    /// List rules with their counters.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a rule.
    Get { name: String },
    /// Enable a rule.
    Enable { name: String },
    /// Disable a rule.
    Disable { name: String },
    /// Delete a rule.
    Delete { name: String },
}

#[derive(Subcommand)]
enum TablesCmd {
    /// Print a table's items (one JSON object a line).
    Query {
        table: String,
        #[arg(long)]
        hash_key: Option<String>,
    },
}

#[derive(Subcommand)]
enum PoliciesCmd {
    /// Create a policy from a JSON document file ('-' for stdin).
    Create { name: String, document: PathBuf },
    /// Replace a policy's document (a new default version; live connections follow at once).
    Update { name: String, document: PathBuf },
    /// List policies.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a policy's default document.
    Get { name: String },
    /// Attach to a certificate (id or ARN) or a thing group (group:NAME).
    Attach { name: String, target: String },
    /// Detach from a certificate or thing group.
    Detach { name: String, target: String },
    /// Delete a detached policy.
    Delete { name: String },
    /// Evaluate an action for a certificate (TestAuthorization).
    Test {
        /// Certificate id or ARN.
        cert: String,
        #[arg(long)]
        client_id: String,
        /// connect, publish, subscribe or receive.
        #[arg(long)]
        action: String,
        /// e.g. topic/sensors/1 or a full ARN (repeatable).
        #[arg(long, required = true)]
        resource: Vec<String>,
    },
}

#[derive(Subcommand)]
enum CaCmd {
    /// Print the registration code (the verification certificate's CN).
    RegistrationCode,
    /// Register a CA certificate (proof of possession: a verification certificate).
    Register {
        #[arg(long)]
        ca_cert: PathBuf,
        /// Certificate with CN = the registration code, signed by the CA key. Without it: SNI_ONLY mode.
        #[arg(long)]
        verification_cert: Option<PathBuf>,
        /// Trust the CA right away.
        #[arg(long)]
        active: bool,
        /// Register unknown certificates it signed on their first connect (as PENDING_ACTIVATION).
        #[arg(long)]
        auto_register: bool,
    },
    /// List registered CAs.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Trust the CA again.
    Activate { id: String },
    /// Stop trusting the CA (its devices are disconnected).
    Deactivate { id: String },
    /// Turn just-in-time registration on or off.
    AutoRegister {
        id: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Delete an inactive CA.
    Delete { id: String },
}

#[derive(Subcommand)]
enum ServerCertCmd {
    /// Serve a new server certificate to new connections (existing ones stay).
    Rotate,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file (TOML).
    #[arg(long, env = "THINGPORT_CONFIG")]
    config: Option<PathBuf>,
    /// MQTT over TLS listen address.
    #[arg(long, env = "THINGPORT_MQTT_LISTEN")]
    mqtt_listen: Option<SocketAddr>,
    /// Device HTTPS listen address.
    #[arg(long, env = "THINGPORT_HTTPS_LISTEN")]
    https_listen: Option<SocketAddr>,
    /// Management API listen address.
    #[arg(long, env = "THINGPORT_API_LISTEN")]
    api_listen: Option<SocketAddr>,
    /// S3-compatible endpoint listen address.
    #[arg(long, env = "THINGPORT_S3_LISTEN")]
    s3_listen: Option<SocketAddr>,
    /// INSECURE plain-TCP MQTT listen address (development only; off by default).
    #[arg(long, env = "THINGPORT_MQTT_PLAIN_LISTEN")]
    mqtt_plain_listen: Option<SocketAddr>,
    /// Extra host name or IP for the server certificate (repeatable).
    #[arg(long = "hostname", env = "THINGPORT_HOSTNAMES", value_delimiter = ',')]
    hostnames: Vec<String>,
}

#[derive(Subcommand)]
enum DeviceCmd {
    /// Print the data key of an issuer answer (base64), unwrapped with the device's private key.
    Unwrap {
        /// The JSON answer of the data-key issuer (keyId, wrappedKey, ciphertextBlob).
        #[arg(long)]
        answer: PathBuf,
        /// The device's private key (PEM).
        #[arg(long)]
        key: PathBuf,
    },
    /// Encrypt a file (or - for stdin) into an envelope (or - for stdout).
    Encrypt {
        #[arg(long)]
        answer: PathBuf,
        #[arg(long)]
        key: PathBuf,
        /// Thing name bound into the envelope's authenticated data.
        #[arg(long)]
        thing: Option<String>,
        /// Object key bound into the envelope's authenticated data.
        #[arg(long)]
        object: Option<String>,
        /// Sign the envelope with the device's private key.
        #[arg(long)]
        sign: bool,
        input: PathBuf,
        output: PathBuf,
    },
    /// Decrypt an envelope made with this device's data key.
    Decrypt {
        #[arg(long)]
        answer: PathBuf,
        #[arg(long)]
        key: PathBuf,
        /// Verify the envelope's signature against this certificate (PEM).
        #[arg(long)]
        signer_cert: Option<PathBuf>,
        input: PathBuf,
        output: PathBuf,
    },
}

#[derive(Subcommand)]
enum ThingsCmd {
    /// List things.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create a thing.
    Create {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Show a thing and its certificates.
    Describe { name: String },
    /// Delete a thing (detach its certificates first).
    Delete { name: String },
    /// Change a thing's attributes or type.
    Update(cli::groups::ThingUpdateArgs),
}

#[derive(Subcommand)]
enum CertsCmd {
    /// List certificates.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a certificate.
    Describe { id: String },
    /// Allow the certificate to connect again.
    Activate { id: String },
    /// Refuse new connections and close current ones.
    Deactivate { id: String },
    /// Revoke for good (cannot be undone).
    Revoke { id: String },
    /// Delete an inactive, detached certificate.
    Delete { id: String },
    /// One-click: a new key pair and certificate from the CA.
    Create {
        /// Attach the certificate to this thing.
        #[arg(long)]
        thing: Option<String>,
        /// Write certificate.pem.crt, private.pem.key and root-ca.pem here.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "rsa")]
        key_type: pki::KeyType,
        #[arg(long)]
        json: bool,
    },
    /// Register a certificate made elsewhere (signed by a registered CA, or --without-ca).
    Register {
        #[arg(long)]
        cert: PathBuf,
        /// The CA that signed it (must be registered); found automatically when omitted.
        #[arg(long)]
        ca_cert: Option<PathBuf>,
        /// The issuer is not registered: trust this certificate on its own.
        #[arg(long)]
        without_ca: bool,
        #[arg(long)]
        active: bool,
    },
    /// Attach a certificate to a thing.
    Attach { id: String, thing: String },
    /// Detach a certificate from a thing.
    Detach { id: String, thing: String },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("THINGPORT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let default_dir = PathBuf::from("./thingport-data");
    match cli.command {
        Command::Serve(a) => {
            init_logging();
            let mut config = config::Config::load(a.config.as_deref())?;
            if let Some(d) = cli.data_dir {
                config.data_dir = d;
            }
            if let Some(x) = a.mqtt_listen {
                config.listeners.mqtt = x;
            }
            if let Some(x) = a.https_listen {
                config.listeners.https = x;
            }
            if let Some(x) = a.api_listen {
                config.listeners.api = x;
            }
            if let Some(x) = a.s3_listen {
                config.listeners.s3 = x;
            }
            if let Some(x) = a.mqtt_plain_listen {
                config.listeners.mqtt_plain = Some(x);
            }
            config.hostnames.extend(a.hostnames.into_iter().filter(|h| !h.is_empty()));
            server::run(config).await
        }
        Command::Provision { name, out, key_type, policy, no_policy } => {
            let c = client::ApiClient::discover(cli.data_dir.as_deref().unwrap_or(&default_dir))?;
            let policy = (!no_policy).then_some(policy.as_str());
            cli::provision::run(&c, &name, &out, key_type, policy).await
        }
        Command::Device(cmd) => match cmd {
            DeviceCmd::Unwrap { answer, key } => cli::device::unwrap(&answer, &key),
            DeviceCmd::Encrypt { answer, key, thing, object, sign, input, output } => {
                cli::device::encrypt(&answer, &key, &input, &output, thing.as_deref(), object.as_deref(), sign)
            }
            DeviceCmd::Decrypt { answer, key, signer_cert, input, output } => {
                cli::device::decrypt(&answer, &key, &input, &output, signer_cert.as_deref())
            }
        },
        Command::Rules(cmd) => {
            let c = client::ApiClient::discover(cli.data_dir.as_deref().unwrap_or(&default_dir))?;
            match cmd {
                RulesCmd::Create { name, file, sql, republish, http } => {
                    cli::rules::create(
                        &c,
                        &name,
                        file.as_deref(),
                        sql.as_deref(),
                        republish.as_deref(),
                        http.as_deref(),
                    )
                    .await
                }
                RulesCmd::List { json } => cli::rules::list(&c, json).await,
                RulesCmd::Get { name } => cli::rules::get(&c, &name).await,
                RulesCmd::Enable { name } => {
                    cli::rules::simple(&c, "POST", &format!("/rules/{name}/enable"), &format!("enabled rule {name}"))
                        .await
                }
                RulesCmd::Disable { name } => {
                    cli::rules::simple(&c, "POST", &format!("/rules/{name}/disable"), &format!("disabled rule {name}"))
                        .await
                }
                RulesCmd::Delete { name } => {
                    cli::rules::simple(&c, "DELETE", &format!("/rules/{name}"), &format!("deleted rule {name}")).await
                }
            }
        }
        Command::Tables(TablesCmd::Query { table, hash_key }) => {
            let c = client::ApiClient::discover(cli.data_dir.as_deref().unwrap_or(&default_dir))?;
            cli::rules::query_table(&c, &table, hash_key.as_deref()).await
        }
        Command::Policies(cmd) => {
            let c = client::ApiClient::discover(cli.data_dir.as_deref().unwrap_or(&default_dir))?;
            match cmd {
                PoliciesCmd::Create { name, document } => cli::policies::create(&c, &name, &document).await,
                PoliciesCmd::Update { name, document } => cli::policies::update(&c, &name, &document).await,
                PoliciesCmd::List { json } => cli::policies::list(&c, json).await,
                PoliciesCmd::Get { name } => cli::policies::get(&c, &name).await,
                PoliciesCmd::Attach { name, target } => cli::policies::attach(&c, &name, &target, false).await,
                PoliciesCmd::Detach { name, target } => cli::policies::attach(&c, &name, &target, true).await,
                PoliciesCmd::Delete { name } => cli::policies::delete(&c, &name).await,
                PoliciesCmd::Test { cert, client_id, action, resource } => {
                    cli::policies::test(&c, &cert, &client_id, &action, &resource).await
                }
            }
        }
        Command::Things(cmd) => {
            let c = client::ApiClient::discover(cli.data_dir.as_deref().unwrap_or(&default_dir))?;
            match cmd {
                ThingsCmd::List { json } => cli::things::list(&c, json).await,
                ThingsCmd::Create { name, json } => cli::things::create(&c, &name, json).await,
                ThingsCmd::Describe { name } => cli::things::describe(&c, &name).await,
                ThingsCmd::Delete { name } => cli::things::delete(&c, &name).await,
                ThingsCmd::Update(a) => cli::groups::update_thing(&c, &a).await,
            }
        }
        Command::Certs(cmd) => {
            let c = client::ApiClient::discover(cli.data_dir.as_deref().unwrap_or(&default_dir))?;
            match cmd {
                CertsCmd::List { json } => cli::certs::list(&c, json).await,
                CertsCmd::Describe { id } => cli::certs::describe(&c, &id).await,
                CertsCmd::Activate { id } => cli::certs::set_status(&c, &id, "ACTIVE").await,
                CertsCmd::Deactivate { id } => cli::certs::set_status(&c, &id, "INACTIVE").await,
                CertsCmd::Revoke { id } => cli::certs::set_status(&c, &id, "REVOKED").await,
                CertsCmd::Delete { id } => cli::certs::delete(&c, &id).await,
                CertsCmd::Create { thing, out, key_type, json } => {
                    cli::certs::create(&c, thing.as_deref(), out.as_deref(), key_type, json).await
                }
                CertsCmd::Register { cert, ca_cert, without_ca, active } => {
                    cli::ca::register_certificate(&c, &cert, ca_cert.as_deref(), without_ca, active).await.map(|_| ())
                }
                CertsCmd::Attach { id, thing } => cli::certs::attach(&c, &id, &thing, false).await,
                CertsCmd::Detach { id, thing } => cli::certs::attach(&c, &id, &thing, true).await,
            }
        }
        Command::Ca(cmd) => {
            let c = client::ApiClient::discover(cli.data_dir.as_deref().unwrap_or(&default_dir))?;
            match cmd {
                CaCmd::RegistrationCode => cli::ca::registration_code(&c).await,
                CaCmd::Register { ca_cert, verification_cert, active, auto_register } => {
                    cli::ca::register(&c, &ca_cert, verification_cert.as_deref(), active, auto_register).await
                }
                CaCmd::List { json } => cli::ca::list(&c, json).await,
                CaCmd::Activate { id } => cli::ca::update(&c, &id, Some("ACTIVE"), None).await,
                CaCmd::Deactivate { id } => cli::ca::update(&c, &id, Some("INACTIVE"), None).await,
                CaCmd::AutoRegister { id, state } => {
                    cli::ca::update(&c, &id, None, Some(if state == "on" { "ENABLE" } else { "DISABLE" })).await
                }
                CaCmd::Delete { id } => cli::ca::delete(&c, &id).await,
            }
        }
        Command::ServerCert(ServerCertCmd::Rotate) => {
            let c = client::ApiClient::discover(cli.data_dir.as_deref().unwrap_or(&default_dir))?;
            cli::ca::rotate_server_certificate(&c).await
        }
        Command::Types(cmd) => {
            let c = client::ApiClient::discover(cli.data_dir.as_deref().unwrap_or(&default_dir))?;
            cli::groups::types(&c, cmd).await
        }
        Command::Groups(cmd) => {
            let c = client::ApiClient::discover(cli.data_dir.as_deref().unwrap_or(&default_dir))?;
            cli::groups::groups(&c, cmd).await
        }
        Command::Events(cmd) => {
            let c = client::ApiClient::discover(cli.data_dir.as_deref().unwrap_or(&default_dir))?;
            cli::groups::events(&c, cmd).await
        }
    }
}

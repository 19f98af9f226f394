//! `server`: run the BayLens central server, and manage it from the shell.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use baylens_server::auth::{Role, new_token};
use baylens_server::routes::admin::{role_and_bay, valid_username};
use baylens_server::store::{AuditVerdict, Store};
use baylens_server::{AppState, Settings, run};
use clap::{Parser, Subcommand};

mod cli_bundles;
mod cli_dataset;
mod cli_declarations;
use cli_bundles::{BundleCommand, KeysCommand};
use cli_dataset::DatasetCommand;
use cli_declarations::DeclarationsCommand;

#[derive(Debug, Parser)]
#[command(version, about = "BayLens central server")]
struct Cli {
    /// Folder for the database (baylens.db) and images.
    #[arg(
        long,
        env = "BAYLENS_DATA_DIR",
        default_value = "var/server",
        global = true
    )]
    data_dir: PathBuf,
    /// Database URL: `postgres://…` for PostgreSQL; default SQLite at DATA_DIR/baylens.db.
    #[arg(long, env = "BAYLENS_DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// Where images go: `file:///absolute/path` or (built with `--features s3`)
    /// `s3://bucket/prefix`; default DATA_DIR/images.
    #[arg(long, env = "BAYLENS_IMAGES_URL", global = true)]
    images_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and the review UI.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "BAYLENS_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Demo mode: plain HTTP on a laptop, so session cookies are not marked Secure.
        #[arg(long)]
        demo: bool,
        /// Case risk from which a load goes to the yellow lane (documentary check).
        #[arg(long, env = "BAYLENS_LANE_YELLOW", default_value_t = 0.35)]
        lane_yellow: f32,
        /// Case risk from which a load goes to the red lane (physical examination).
        #[arg(long, env = "BAYLENS_LANE_RED", default_value_t = 0.7)]
        lane_red: f32,
        /// Failed logins allowed per source address in five minutes (behind a reverse proxy
        /// every login comes from the proxy's address: raise this there).
        #[arg(long, env = "BAYLENS_LOGIN_ATTEMPTS_PER_ADDRESS", default_value_t = 30)]
        login_attempts_per_address: u32,
        /// Serve HTTPS with this PEM certificate chain (leaf first), so a small site needs no
        /// separate TLS terminator. Needs --tls-key.
        #[arg(long, env = "BAYLENS_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, env = "BAYLENS_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Publish new cases and decisions to this MQTT broker, for barriers and lights
        /// (topics in protocol/MQTT.md).
        #[arg(long, env = "BAYLENS_MQTT_HOST")]
        mqtt_host: Option<String>,
        /// The broker's port.
        #[arg(long, env = "BAYLENS_MQTT_PORT", default_value_t = 1883)]
        mqtt_port: u16,
        /// First level of every topic.
        #[arg(long, env = "BAYLENS_MQTT_PREFIX", default_value = "baylens")]
        mqtt_prefix: String,
        /// User name at the broker.
        #[arg(long, env = "BAYLENS_MQTT_USERNAME")]
        mqtt_username: Option<String>,
        /// File holding the broker password.
        #[arg(long, env = "BAYLENS_MQTT_PASSWORD_FILE")]
        mqtt_password_file: Option<PathBuf>,
        /// The administration's key for signed case bundles (`server keys generate`); default
        /// DATA_DIR/bundle-signing.key when it exists. Replicas share one key file.
        #[arg(long, env = "BAYLENS_BUNDLE_KEY")]
        bundle_key: Option<PathBuf>,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage edge agents.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Signed model releases for the bays.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Keys for signed case bundles: this administration's, and the partners' it trusts.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Signed case bundles (protocol/CASE_BUNDLE.md).
    Bundle {
        #[command(subcommand)]
        command: BundleCommand,
    },
    /// Cleared scans and labelled cases for calibration and site adaptation
    /// (protocol/DATASET.md).
    Dataset {
        #[command(subcommand)]
        command: DatasetCommand,
    },
    /// Advance declarations in bulk (BayLens JSON, WCO DEC-DMS XML or UN/EDIFACT CUSCAR).
    Declarations {
        #[command(subcommand)]
        command: DeclarationsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Make a model-signing key: the secret goes to --secret-file (mode 0600; keep it offline,
    /// off the server), the public key is printed for the agents' `[model_updates] public_key`.
    Keygen {
        /// Where to write the secret key.
        #[arg(long)]
        secret_file: PathBuf,
    },
    /// Sign an ONNX file with the secret key and publish it as the model's current release.
    Publish {
        /// Model name, e.g. xray-concealment.
        #[arg(long)]
        name: String,
        /// The ONNX file.
        #[arg(long)]
        file: PathBuf,
        /// The secret key from `server model keygen`.
        #[arg(long)]
        secret_file: PathBuf,
        /// Release serial, above every earlier release of the model (bays refuse any other);
        /// default: one above the current release's.
        #[arg(long)]
        serial: Option<u64>,
        /// Time after which bays refuse to install the release, RFC 3339
        /// (e.g. 2027-06-30T00:00:00Z).
        #[arg(long)]
        expires_at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the hash chain; exit 1 if any row was edited or deleted.
    Verify,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user. Without --password-env a random password is generated and printed once.
    Add {
        /// Login name.
        #[arg(long)]
        username: String,
        /// officer, supervisor, admin, agency or metrics (Prometheus scrapers: /metrics only).
        #[arg(long)]
        role: String,
        /// The officer's bay.
        #[arg(long)]
        bay: Option<String>,
        /// Name of an environment variable holding the password.
        #[arg(long)]
        password_env: Option<String>,
    },
    /// Issue a long-lived API token for a user (scripts, the Prometheus scraper).
    Token {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Lifetime in days.
        #[arg(long, default_value_t = 90)]
        days: i64,
        /// Write the token to this file (mode 0600) instead of printing it.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// List live login sessions and API tokens (by id: the first 12 hex digits of their sha256).
    Tokens {
        /// Only this user's.
        #[arg(long)]
        username: Option<String>,
    },
    /// Revoke one session or API token at once, by the id `tokens` lists.
    RevokeToken {
        /// The token's id.
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Register an agent and print its token once. Only its hash is stored.
    Add {
        /// Agent name.
        #[arg(long)]
        name: String,
        /// The bay it serves.
        #[arg(long)]
        bay: String,
        /// Write the token to this file (mode 0600) instead of printing it.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// Revoke an agent's token at once.
    Revoke {
        /// Agent name.
        #[arg(long)]
        name: String,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        // Colours only on a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let cli = Cli::parse();
    // What needs no database runs before one is opened (or created).
    match &cli.command {
        Command::Bundle { command } => std::process::exit(cli_bundles::bundle(command)),
        Command::Keys { command } if cli_bundles::keys_offline(command, &cli.data_dir)? => {
            return Ok(());
        }
        _ => {}
    }
    let store = match &cli.database_url {
        Some(url) => Store::open_url(url, &cli.data_dir)
            .await
            .context("opening the database (check BAYLENS_DATABASE_URL)")?,
        None => Store::open(&cli.data_dir)
            .await
            .with_context(|| format!("opening the store in {}", cli.data_dir.display()))?,
    };
    let mut store = match &cli.images_url {
        Some(url) => store
            .with_images_url(url)
            .context("opening the image store")?,
        None => store,
    };
    match cli.command {
        Command::Serve {
            listen,
            demo,
            lane_yellow,
            lane_red,
            login_attempts_per_address,
            tls_cert,
            tls_key,
            mqtt_host,
            mqtt_port,
            mqtt_prefix,
            mqtt_username,
            mqtt_password_file,
            bundle_key,
        } => {
            let lanes = baylens_protocol::risk::LaneThresholds {
                yellow: lane_yellow,
                red: lane_red,
            };
            lanes.validate()?;
            store.lanes = lanes;
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some(
                    baylens_tls::server::server_config(cert, key)
                        .context("setting up TLS (--tls-cert/--tls-key)")?,
                ),
                _ => None,
            };
            if tls.is_none() && !demo {
                tracing::warn!(
                    "serving plain HTTP: put a TLS terminator in front, or give --tls-cert and --tls-key"
                );
            }
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            if store
                .list_users()
                .await?
                .iter()
                .all(|u| u.role != Role::Admin)
            {
                tracing::warn!(
                    "no admin user yet: create one with `server user add --role admin --username NAME`"
                );
            }
            let bundle_signer = match bundle_key {
                Some(path) => Some(baylens_server::bundle::BundleSigner::load(&path)?),
                None => {
                    let path = cli_bundles::default_key_file(&cli.data_dir);
                    if path.exists() {
                        Some(baylens_server::bundle::BundleSigner::load(&path)?)
                    } else {
                        tracing::info!(
                            "no bundle-signing key: cases cannot be exported as signed bundles until an admin runs `server keys generate`"
                        );
                        None
                    }
                }
            };
            // A single server's export jobs cannot outlive it (replicas share PostgreSQL, where
            // another server may still be running one).
            if store.backend == baylens_server::store::Backend::Sqlite {
                let stopped = store.fail_interrupted_exports().await?;
                if stopped > 0 {
                    tracing::warn!(
                        "{stopped} dataset export(s) stopped with the server; start them again"
                    );
                }
            }
            let settings = Settings {
                secure_cookies: !demo || tls.is_some(),
                login_attempts_per_address,
                bundle_signer: bundle_signer.map(std::sync::Arc::new),
                ..Settings::default()
            };
            tracing::info!(
                backend = ?store.backend,
                demo,
                "listening on {}://{}",
                if tls.is_some() { "https" } else { "http" },
                listener.local_addr()?
            );
            let mut state = AppState::with_settings(store, settings);
            if let Some(host) = mqtt_host {
                let config = baylens_mqtt::MqttConfig {
                    host,
                    port: mqtt_port,
                    prefix: mqtt_prefix,
                    client_id: None,
                    username: mqtt_username,
                    password_file: mqtt_password_file,
                };
                let id = format!("baylens-server-{}", std::process::id());
                state.mqtt = Some(baylens_mqtt::Publisher::start(&config, &id, None)?);
            }
            let mqtt = state.mqtt.clone();
            run(listener, tls, state, shutdown_signal()).await?;
            if let Some(mqtt) = mqtt {
                mqtt.stop(None).await;
            }
        }
        Command::Keys { command } => cli_bundles::keys_store(command, &store).await?,
        Command::Dataset { command } => cli_dataset::run(command, &store).await?,
        Command::Declarations { command } => cli_declarations::run(command, &store).await?,
        Command::Bundle { .. } => unreachable!("handled before the store is opened"),
        Command::Audit {
            command: AuditCommand::Verify,
        } => match store.verify_audit().await? {
            AuditVerdict::Intact { rows, head } => {
                println!("audit log intact: {rows} entries, head {head}");
            }
            AuditVerdict::Broken { seq, reason } => {
                eprintln!("audit log BROKEN at entry {seq}: {reason}");
                std::process::exit(1);
            }
        },
        Command::User {
            command:
                UserCommand::Token {
                    username,
                    days,
                    token_file,
                },
        } => {
            if !(1..=3650).contains(&days) {
                bail!("--days must be 1 to 3650");
            }
            let token = store
                .new_api_token("cli", &username, days)
                .await?
                .with_context(|| format!("no active user {username}"))?;
            match token_file {
                Some(path) => {
                    write_secret(&path, &token)?;
                    println!("API token for {username} written to {}", path.display());
                }
                None => println!("API token for {username} (shown once): {token}"),
            }
        }
        Command::User {
            command: UserCommand::Tokens { username },
        } => {
            for t in store.list_tokens(username.as_deref()).await? {
                println!(
                    "{}  {:<5}  {:<20}  issued {}  expires {}",
                    t.id, t.kind, t.username, t.created_at, t.expires_at
                );
            }
        }
        Command::User {
            command: UserCommand::RevokeToken { id },
        } => match store.revoke_token("cli", &id).await? {
            baylens_server::store::tokens::Revoked::Done { username, kind } => {
                println!("revoked {kind} token {id} of {username}");
            }
            baylens_server::store::tokens::Revoked::NotFound => {
                bail!("no live token has id {id} (see `server user tokens`)")
            }
            baylens_server::store::tokens::Revoked::Ambiguous => {
                bail!("several live tokens share id {id}: disable and re-enable the user instead")
            }
        },
        Command::Model {
            command: ModelCommand::Keygen { secret_file },
        } => {
            let (secret, public) = baylens_protocol::release::new_key(rand::random());
            write_secret(&secret_file, &secret)?;
            println!(
                "secret key written to {} (keep it offline)",
                secret_file.display()
            );
            println!("public key for the agents' [model_updates] public_key: {public}");
        }
        Command::Model {
            command:
                ModelCommand::Publish {
                    name,
                    file,
                    secret_file,
                    serial,
                    expires_at,
                },
        } => {
            let secret = std::fs::read_to_string(&secret_file)
                .with_context(|| format!("reading {}", secret_file.display()))?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let serial = match serial {
                Some(n) => n,
                None => {
                    let current = store.current_release(&name).await;
                    current.map_err(anyhow::Error::msg)?.map_or(0, |r| r.serial) + 1
                }
            };
            let terms = baylens_protocol::release::Terms { serial, expires_at };
            let release = baylens_protocol::release::sign(&name, &bytes, &terms, secret.trim())?;
            store
                .publish_model("cli", &release, bytes)
                .await
                .map_err(anyhow::Error::msg)?;
            println!(
                "published {name} release {} {} ({} bytes), signed",
                release.serial, release.sha256, release.size
            );
        }
        Command::Agent {
            command: AgentCommand::Revoke { name },
        } => {
            if !store.revoke_agent("cli", &name).await? {
                bail!("no active agent {name}");
            }
            println!("agent {name} revoked");
        }
        Command::User {
            command:
                UserCommand::Add {
                    username,
                    role,
                    bay,
                    password_env,
                },
        } => {
            valid_username(&username).map_err(|e| anyhow::anyhow!("{e}"))?;
            let role = role_and_bay(&role, bay.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let (password, generated) = match password_env {
                Some(var) => (
                    std::env::var(&var)
                        .with_context(|| format!("environment variable {var} is not set"))?,
                    false,
                ),
                None => (new_token("")[..20].to_owned(), true),
            };
            if password.len() < 12 {
                bail!("passwords must be at least 12 characters");
            }
            store
                .add_user("cli", &username, &password, role, bay.as_deref())
                .await
                .with_context(|| format!("adding user {username}"))?;
            if generated {
                println!(
                    "user {username} ({}) created; password (shown once): {password}",
                    role.as_str()
                );
            } else {
                println!("user {username} ({}) created", role.as_str());
            }
        }
        Command::Agent {
            command:
                AgentCommand::Add {
                    name,
                    bay,
                    token_file,
                },
        } => {
            baylens_protocol::BayId::parse(&bay)?;
            baylens_protocol::BayId::parse(&name)?;
            let (_, token) = store
                .add_agent("cli", &name, &bay)
                .await
                .with_context(|| format!("adding agent {name}"))?;
            match token_file {
                Some(path) => {
                    write_secret(&path, &token)?;
                    println!(
                        "agent {name} (bay {bay}) registered; token written to {}",
                        path.display()
                    );
                }
                None => {
                    println!("agent {name} (bay {bay}) registered; token (shown once): {token}")
                }
            }
        }
    }
    Ok(())
}

/// Ctrl-C or SIGTERM: in-flight requests finish, then the server exits.
async fn shutdown_signal() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn write_secret(path: &std::path::Path, secret: &str) -> Result<()> {
    baylens_server::auth::write_secret(path, secret)
        .with_context(|| format!("writing {}", path.display()))
}

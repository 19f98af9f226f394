//! `server`: run the BayLens central server, and manage it from the shell.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use baylens_server::auth::{Role, new_token};
use baylens_server::store::Store;
use baylens_server::{AppState, run};
use clap::{Parser, Subcommand};

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
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user. Without --password-env a random password is generated and printed once.
    Add {
        /// Login name.
        #[arg(long)]
        username: String,
        /// officer, supervisor, admin or agency.
        #[arg(long)]
        role: String,
        /// The officer's bay.
        #[arg(long)]
        bay: Option<String>,
        /// Name of an environment variable holding the password.
        #[arg(long)]
        password_env: Option<String>,
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
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let store = Store::open(&cli.data_dir)
        .await
        .with_context(|| format!("opening the store in {}", cli.data_dir.display()))?;
    match cli.command {
        Command::Serve { listen } => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            tracing::info!("listening on http://{}", listener.local_addr()?);
            run(listener, AppState { store }, shutdown_signal()).await?;
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
            let role = Role::parse(&role).with_context(|| {
                format!("unknown role {role:?}; use officer, supervisor, admin or agency")
            })?;
            if role == Role::Officer && bay.is_none() {
                bail!("an officer needs --bay");
            }
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
                .add_user(&username, &password, role, bay.as_deref())
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
            let token = store
                .add_agent(&name, &bay)
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
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(secret.as_bytes())?;
    Ok(())
}

//! `orchestra token`: make, list and revoke API tokens in a host's database while the
//! host is stopped (a running host manages its tokens over `/api/tokens`).

use anyhow::Context;
use orchestra::model::now_ms;
use orchestra::model::token::{self, Role, Secret};

use orchestra::store::{self, Durability, JobStore};
use std::path::PathBuf;

/// What to do with tokens.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a token; it is printed once, as the last line.
    Create {
        /// What it allows.
        #[arg(long, value_enum)]
        role: Role,
        /// Its name [default: the role and the start of its hash].
        #[arg(long)]
        name: Option<String>,
    },
    /// List the tokens: names, roles, when made and revoked (never the tokens).
    List,
    /// Revoke a token: it can no longer be used.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// `orchestra token …` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    /// SQLite database file [default: orchestra.db], or PostgreSQL URL.
    #[arg(
        long,
        env = "ORCHESTRA_DB",
        default_value = "orchestra.db",
        global = true
    )]
    db: PathBuf,
    #[command(subcommand)]
    command: TokenCommand,
}

/// Runs `orchestra token …`.
pub(crate) async fn run(args: TokenArgs) -> anyhow::Result<()> {
    let store = store::open(&args.db, Durability::Normal)
        .await
        .with_context(|| format!("opening {}", store::shown(&args.db)))?;
    let done = command(store.as_ref(), args.command).await;
    store.close().await;
    done
}

async fn command(store: &dyn JobStore, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { role, name } => {
            let secret = Secret::generate().context("no randomness for a token")?;
            let name = name.unwrap_or_else(|| token::default_name(role, &secret));
            token::validate_name(&name).map_err(anyhow::Error::msg)?;
            store
                .create_token(&name, role, secret.hash, now_ms())
                .await?;
            println!(
                "token `{name}` ({}) made; it is shown only now:",
                role.as_str()
            );
            println!("{}", secret.text);
        }
        TokenCommand::List => {
            for token in store.tokens().await? {
                let revoked = match token.revoked_at {
                    Some(at) => format!("revoked {}", orchestra::model::rfc3339::format(at)),
                    None => "active".to_owned(),
                };
                let made = orchestra::model::rfc3339::format(token.created_at);
                println!(
                    "{}\t{}\tmade {made}\t{revoked}",
                    token.name,
                    token.role.as_str()
                );
            }
        }
        TokenCommand::Revoke { name } => {
            store.revoke_token(&name, now_ms()).await?;
            println!("token `{name}` revoked");
        }
    }
    Ok(())
}

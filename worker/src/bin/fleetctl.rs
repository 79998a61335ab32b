//! `fleetctl`: operator commands for a running fleet. Reads AMQP_URL, PARTITIONS and
//! FLEET_NAMESPACE like every fleet binary (and TELEMETRY_HASH_KEY, so that customer
//! pseudonyms match the fleet's logs). Human-readable output by default, `--json` for
//! scripts; any error is one line on stderr and a non-zero exit.
//!
//! The logic lives in `worker::deadletters`; this file only parses and prints.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Parser, Subcommand};
use serde_json::json;
use shared::config::{CommonConfig, Env};
use worker::deadletters::{
    DeadLetters, ReplayOutcome, ReplayStatus, Selection, format_line, start_publisher,
};

#[derive(Parser, Debug)]
#[command(name = "fleetctl", about = "Operate a running booking fleet")]
struct Cli {
    /// Print JSON instead of text, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inspect and replay events in the dead-letter queue.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
    /// Hand a handed-off conversation back to the bot.
    Release {
        /// The business (WhatsApp phone_number_id).
        tenant: String,
        /// The customer (wa_id).
        customer: String,
        /// Identifies this release and makes repeating it a no-op (for example a ticket id);
        /// a fresh one is made up when omitted.
        #[arg(long)]
        reference: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum DeadLetterCommand {
    /// One line per dead letter, in queue order; the queue is left unchanged.
    List {
        /// Show at most this many, from the head of the queue.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// The full event and headers of one dead letter.
    Show {
        event_id: String,
        /// Print customer identifiers in clear instead of pseudonyms.
        #[arg(long)]
        reveal: bool,
    },
    /// Republish to the original partition, then remove from the dead-letter queue.
    Replay(ReplayArgs),
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("which").required(true).args(["event_id", "all"])))]
struct ReplayArgs {
    /// The event id to replay (every copy of it).
    event_id: Option<String>,
    /// Replay every dead letter.
    #[arg(long)]
    all: bool,
    /// Say what would be replayed, change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            // One line: the chain of causes joined, no backtrace.
            eprintln!("fleetctl: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    // Library logs (reconnects and the like) are noise on an operator's terminal.
    if !vars.iter().any(|(name, _)| name == "RUST_LOG") {
        // lapin logs a refused passive declare at ERROR; the one-line error says it better.
        vars.push(("RUST_LOG".into(), "warn,lapin=off".into()));
    }
    let env = Env::from_pairs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    // Installs the pseudonym key, so `customer=` values match the fleet's logs.
    let _telemetry = shared::telemetry::init("fleetctl", &env).context("telemetry")?;
    let config = CommonConfig::from_env(&env).context("configuration")?;
    match cli.command {
        Command::DeadLetters(command) => dead_letters(&config, command, cli.json).await,
        Command::Release {
            tenant,
            customer,
            reference,
        } => release(&config, &tenant, &customer, reference, cli.json).await,
    }
}

async fn dead_letters(
    config: &CommonConfig,
    command: DeadLetterCommand,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let queue = DeadLetters::connect(config).await?;
    let result = match command {
        DeadLetterCommand::List { limit } => list(&queue, limit, as_json).await,
        DeadLetterCommand::Show { event_id, reveal } => {
            show(&queue, &event_id, reveal, as_json).await
        }
        DeadLetterCommand::Replay(args) => replay(&queue, args, as_json).await,
    };
    queue.close().await;
    result
}

async fn list(
    queue: &DeadLetters,
    limit: Option<usize>,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let letters = queue.list(limit).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&letters)?);
    } else if letters.is_empty() {
        println!("{} is empty", queue.topology().dead_letter_queue());
    } else {
        for letter in &letters {
            println!("{}", format_line(letter));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(
    queue: &DeadLetters,
    event_id: &str,
    reveal: bool,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let letter = queue.show(event_id).await?;
    let detail = letter.detail(reveal);
    if as_json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
    } else {
        println!("{}", format_line(&letter));
        println!("body:");
        println!("{}", serde_json::to_string_pretty(&detail["body"])?);
        println!("headers:");
        println!("{}", serde_json::to_string_pretty(&detail["headers"])?);
    }
    Ok(ExitCode::SUCCESS)
}

async fn replay(queue: &DeadLetters, args: ReplayArgs, as_json: bool) -> anyhow::Result<ExitCode> {
    let selection = match (args.event_id, args.all) {
        (Some(id), false) => Selection::Id(id),
        (None, true) => Selection::All,
        // clap's group already refuses both and neither; kept total for safety.
        _ => bail!("give either an event id or --all"),
    };
    let outcomes = queue.replay(&selection, args.dry_run).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else if outcomes.is_empty() {
        println!("nothing to replay");
    } else {
        for outcome in &outcomes {
            println!("{}", replay_line(outcome));
        }
    }
    let clean = outcomes
        .iter()
        .all(|o| matches!(o.status, ReplayStatus::Replayed | ReplayStatus::WouldReplay));
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn replay_line(outcome: &ReplayOutcome) -> String {
    let status = match outcome.status {
        ReplayStatus::Replayed => "replayed",
        ReplayStatus::WouldReplay => "would replay",
        ReplayStatus::Skipped => "SKIPPED",
        ReplayStatus::Failed => "FAILED",
    };
    format!(
        "#{:<3} {} -> {}: {}{}",
        outcome.position,
        outcome.event_id,
        outcome.routing_key.as_deref().unwrap_or("?"),
        status,
        outcome
            .detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    )
}

async fn release(
    config: &CommonConfig,
    tenant: &str,
    customer: &str,
    reference: Option<String>,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let reference =
        reference.unwrap_or_else(|| format!("fleetctl-{}", chrono::Utc::now().timestamp_millis()));
    let publisher = start_publisher(config, "fleetctl-release").await?;
    let published =
        worker::control::release_conversation(&publisher, tenant, customer, &reference).await;
    publisher.close().await;
    published.context("release not confirmed by the broker")?;
    let customer = shared::telemetry::pseudonym(customer);
    if as_json {
        println!(
            "{}",
            json!({
                "released": true,
                "tenant": tenant,
                "customer_pseudonym": customer,
                "reference": reference,
                "event_id": format!("release:{reference}"),
            })
        );
    } else {
        println!("released tenant={tenant} customer={customer} (event release:{reference})");
    }
    Ok(ExitCode::SUCCESS)
}

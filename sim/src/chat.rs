//! `sim chat`: you are the customer. Bot buttons and list rows are numbered; type a number
//! to tap one, anything else is sent as a message.

use std::sync::{Arc, Mutex};

use fakes::whatsapp::{Customer, CustomerMessage, InboundContext, ListRow, Outbound};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;

use crate::sandbox::Sandbox;
use crate::transcript::{choices, render_bot};
use crate::world::Business;

/// The choices of the last interactive message, with its wamid (replies quote it).
#[derive(Default)]
struct Shown {
    wamid: Option<String>,
    message: Option<Outbound>,
}

pub async fn run(sandbox: &Sandbox, business: &Business, name: &str) -> anyhow::Result<()> {
    let wa_id = "15550009999";
    let customer = Customer::new(wa_id, name);
    let mut inbox = sandbox.router.register(&business.phone_number_id, wa_id);
    let shown = Arc::new(Mutex::new(Shown::default()));
    let last_sent = Arc::new(Mutex::new(None::<Instant>));
    println!(
        "You are {name}, writing to {} ({}). Type a message; a number taps a choice; /quit leaves.",
        business.name, business.display_phone_number
    );
    let printer = {
        let shown = shown.clone();
        let last_sent = last_sent.clone();
        tokio::spawn(async move {
            while let Some(received) = inbox.recv().await {
                let latency = last_sent
                    .lock()
                    .ok()
                    .and_then(|mut sent| sent.take())
                    .map(|sent| {
                        format!(
                            " ({:.0} ms)",
                            received.at.saturating_duration_since(sent).as_secs_f64() * 1000.0
                        )
                    })
                    .unwrap_or_default();
                let message = received.record.message;
                println!("bot{latency}: {}", render_bot(&message, "     "));
                if !choices(&message).is_empty()
                    && let Ok(mut shown) = shown.lock()
                {
                    shown.wamid = Some(received.record.wamid.clone());
                    shown.message = Some(message);
                }
            }
        })
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim().to_owned();
        if line.is_empty() {
            continue;
        }
        if line == "/quit" || line == "/exit" {
            break;
        }
        let (message, context) = match line.parse::<usize>().ok().and_then(|n| pick(&shown, n)) {
            Some(picked) => picked,
            None => (CustomerMessage::Text { body: line }, None),
        };
        if let Ok(mut sent) = last_sent.lock() {
            *sent = Some(Instant::now());
        }
        if let Err(error) = sandbox
            .fake()
            .customer_message(&business.phone_number_id, &customer, message, context)
            .await
        {
            println!("(not delivered: {error})");
        }
    }
    printer.abort();
    sandbox.router.unregister(&business.phone_number_id, wa_id);
    Ok(())
}

/// The reply for choice `n` (1-based) of the last interactive message.
fn pick(shown: &Mutex<Shown>, n: usize) -> Option<(CustomerMessage, Option<InboundContext>)> {
    let shown = shown.lock().ok()?;
    let message = shown.message.as_ref()?;
    let context = shown.wamid.clone().map(InboundContext::ReplyTo);
    let index = n.checked_sub(1)?;
    match message {
        Outbound::Buttons { buttons, .. } => {
            let button = buttons.get(index)?;
            Some((
                CustomerMessage::ButtonReply {
                    id: button.id.clone(),
                    title: button.title.clone(),
                },
                context,
            ))
        }
        Outbound::List { sections, .. } => {
            let row: &ListRow = sections.iter().flat_map(|s| s.rows.iter()).nth(index)?;
            Some((
                CustomerMessage::ListReply {
                    id: row.id.clone(),
                    title: row.title.clone(),
                    description: row.description.clone(),
                },
                context,
            ))
        }
        _ => None,
    }
}

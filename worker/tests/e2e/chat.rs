//! A customer talking to the fleet through the fake WhatsApp, reacting to what the bot sends.

use std::time::Duration;

use fakes::whatsapp::{Customer, ListRow, Outbound};

use crate::fleet::Fleet;

pub struct Chat<'a> {
    pub fleet: &'a Fleet,
    pub business: &'static str,
    pub customer: Customer,
    pub wa_id: String,
    /// Everything said, for failure messages.
    pub log: Vec<String>,
    /// How long this customer waits for each reply.
    pub patience: Duration,
    /// Which row of a list this customer picks (modulo its length): people do not all take
    /// the first time offered.
    pub row_choice: usize,
}

pub fn describe(message: &Outbound) -> String {
    match message {
        Outbound::Text { body, .. } => format!("bot: {body}"),
        Outbound::Buttons { body, buttons, .. } => format!(
            "bot: {body} [{}]",
            buttons
                .iter()
                .map(|b| b.id.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        ),
        Outbound::List { body, sections, .. } => format!(
            "bot: {body} ({} rows)",
            sections.iter().map(|s| s.rows.len()).sum::<usize>()
        ),
        Outbound::Template {
            name,
            body_parameters,
            ..
        } => {
            format!("bot template {name}: {}", body_parameters.join(" | "))
        }
    }
}

impl<'a> Chat<'a> {
    pub fn new(fleet: &'a Fleet, business: &'static str, wa_id: &str, name: &str) -> Self {
        Self {
            fleet,
            business,
            customer: Customer::new(wa_id, name),
            wa_id: wa_id.to_owned(),
            log: Vec::new(),
            row_choice: 0,
            patience: Duration::from_secs(20),
        }
    }

    pub async fn say(&mut self, text: &str) {
        self.log.push(format!("customer: {text}"));
        self.fleet
            .whatsapp
            .customer_text(self.business, &self.customer, text)
            .await
            .expect("webhook delivered to ingress");
    }

    pub async fn tap(&mut self, id: &str) {
        self.log.push(format!("customer taps {id}"));
        self.fleet
            .whatsapp
            .customer_button_reply(self.business, &self.customer, id, id, "wamid.context")
            .await
            .expect("webhook delivered to ingress");
    }

    pub async fn pick(&mut self, row: &ListRow) {
        self.log.push(format!("customer picks {}", row.title));
        self.fleet
            .whatsapp
            .customer_list_reply(self.business, &self.customer, row, "wamid.context")
            .await
            .expect("webhook delivered to ingress");
    }

    pub async fn reply(&mut self) -> Outbound {
        match self
            .fleet
            .whatsapp
            .next_message_to(self.business, &self.wa_id, self.patience)
            .await
        {
            Some(record) => {
                self.log.push(describe(&record.message));
                record.message
            }
            None => panic!(
                "no reply within {:?}; conversation so far:\n{}",
                self.patience,
                self.log.join("\n")
            ),
        }
    }

    /// Nothing arrives for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Some(record) = self
            .fleet
            .whatsapp
            .next_message_to(self.business, &self.wa_id, quiet)
            .await
        {
            panic!(
                "expected silence, got {}; conversation:\n{}",
                describe(&record.message),
                self.log.join("\n")
            );
        }
    }

    /// Follows lists (first slot or service offered) until the bot asks to confirm.
    pub async fn until_confirm(&mut self) {
        for _ in 0..12 {
            match self.reply().await {
                Outbound::Buttons { buttons, .. } if buttons.iter().any(|b| b.id == "confirm") => {
                    return;
                }
                Outbound::List { sections, .. } => {
                    let rows: Vec<_> = sections.iter().flat_map(|s| s.rows.iter()).collect();
                    let row = rows
                        .get(self.row_choice % rows.len().max(1))
                        .map(|row| (*row).clone())
                        .expect("a list has rows");
                    self.pick(&row).await;
                }
                _ => {}
            }
        }
        panic!("the bot never asked to confirm:\n{}", self.log.join("\n"));
    }

    /// Reads replies until a text containing one of `needles`.
    pub async fn expect_text(&mut self, needles: &[&str]) -> String {
        for _ in 0..6 {
            if let Outbound::Text { body, .. } = self.reply().await
                && needles.iter().any(|n| body.contains(n))
            {
                return body;
            }
        }
        panic!("no text containing {needles:?}:\n{}", self.log.join("\n"));
    }

    /// Reads replies until buttons, returning their ids.
    pub async fn expect_buttons(&mut self) -> Vec<String> {
        for _ in 0..6 {
            if let Outbound::Buttons { buttons, .. } = self.reply().await {
                return buttons.into_iter().map(|b| b.id).collect();
            }
        }
        panic!("no buttons:\n{}", self.log.join("\n"));
    }

    pub async fn book(&mut self, ask: &str, booked_word: &str) {
        self.say(ask).await;
        self.until_confirm().await;
        self.tap("confirm").await;
        self.expect_text(&[booked_word]).await;
    }
}

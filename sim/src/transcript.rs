//! Readable transcripts: who said what, when, with the bot's buttons and list rows shown as
//! the numbered choices a person would see.

use std::fmt::Write as _;
use std::time::Duration;

use fakes::whatsapp::Outbound;

use crate::persona::Act;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Customer,
    Bot,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Said {
    Customer(Act),
    Bot(Outbound),
    /// The customer chose to say nothing for up to this long.
    Silence(Duration),
}

/// One transcript line, timed from the start of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub at: Duration,
    pub speaker: Speaker,
    pub message: Said,
}

/// Choices of a bot message in the order they are numbered on screen: (id, title, detail).
pub fn choices(message: &Outbound) -> Vec<(String, String, Option<String>)> {
    match message {
        Outbound::Buttons { buttons, .. } => buttons
            .iter()
            .map(|b| (b.id.clone(), b.title.clone(), None))
            .collect(),
        Outbound::List { sections, .. } => sections
            .iter()
            .flat_map(|section| {
                section.rows.iter().map(move |row| {
                    (
                        row.id.clone(),
                        format!("{} {}", section.title, row.title),
                        row.description.clone(),
                    )
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A bot message as text, choices numbered from 1, indented under `indent`.
pub fn render_bot(message: &Outbound, indent: &str) -> String {
    let mut out = message.body_text().replace('\n', &format!("\n{indent}"));
    match message {
        Outbound::Buttons { footer, .. } => {
            let buttons: Vec<String> = choices(message)
                .iter()
                .enumerate()
                .map(|(i, (_, title, _))| format!("[{}] {title}", i + 1))
                .collect();
            let _ = write!(out, "\n{indent}{}", buttons.join("  "));
            if let Some(footer) = footer {
                let _ = write!(out, "   ({footer})");
            }
        }
        Outbound::List { button, .. } => {
            let _ = write!(out, "   [{button}]");
            for (i, (_, title, detail)) in choices(message).iter().enumerate() {
                let _ = write!(out, "\n{indent}{:>2}. {title}", i + 1);
                if let Some(detail) = detail {
                    let _ = write!(out, "  ({detail})");
                }
            }
        }
        Outbound::Template {
            quick_reply_payloads,
            ..
        } if !quick_reply_payloads.is_empty() => {
            let _ = write!(
                out,
                "\n{indent}[{} quick replies]",
                quick_reply_payloads.len()
            );
        }
        _ => {}
    }
    out
}

fn render_customer(act: &Act) -> String {
    match act {
        Act::Text(text) => text.clone(),
        Act::Button(button) => format!("(taps \"{}\")", button.title),
        Act::Row(row) => format!("(picks \"{}\")", row.title),
        Act::Wait(_) => "(says nothing)".to_owned(),
    }
}

/// The whole conversation, one line per message: `[+0.84s] customer: ...`.
pub fn render(lines: &[Line], customer_label: &str) -> String {
    let mut out = String::new();
    let width = customer_label.chars().count().max(3);
    let indent = " ".repeat(width + 13);
    for line in lines {
        let at = line.at.as_secs_f64();
        let (who, text) = match &line.message {
            Said::Customer(act) => (customer_label, render_customer(act)),
            Said::Bot(message) => ("bot", render_bot(message, &indent)),
            Said::Silence(longest) => (
                customer_label,
                format!(
                    "(goes silent; waits up to {}s for the bot)",
                    longest.as_secs()
                ),
            ),
        };
        let _ = writeln!(out, "[+{at:>6.2}s] {who:>width$}: {text}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fakes::whatsapp::{ListRow, ListSection, ReplyButton};

    #[test]
    fn buttons_and_rows_are_numbered_choices() {
        let buttons = Outbound::Buttons {
            header: None,
            body: "Confirm Haircut, Thu 15 Jan, 17:00 with Maria?".into(),
            footer: Some("Held for you for 1 min".into()),
            buttons: vec![
                ReplyButton {
                    id: "confirm".into(),
                    title: "Confirm".into(),
                },
                ReplyButton {
                    id: "other".into(),
                    title: "Other time".into(),
                },
            ],
        };
        let list = Outbound::List {
            header: None,
            body: "Free times for Haircut:".into(),
            footer: None,
            button: "See times".into(),
            sections: vec![ListSection {
                title: "Thu 15 Jan".into(),
                rows: vec![ListRow {
                    id: "slot:1:maria".into(),
                    title: "12:00".into(),
                    description: Some("Haircut · 30 min · Maria".into()),
                }],
            }],
        };
        let lines = vec![
            Line {
                at: Duration::from_millis(0),
                speaker: Speaker::Customer,
                message: Said::Customer(Act::Text("haircut tomorrow at 5pm".into())),
            },
            Line {
                at: Duration::from_millis(840),
                speaker: Speaker::Bot,
                message: Said::Bot(buttons),
            },
            Line {
                at: Duration::from_millis(1200),
                speaker: Speaker::Bot,
                message: Said::Bot(list),
            },
        ];
        let text = render(&lines, "Ana");
        assert!(
            text.contains("[+  0.00s] Ana: haircut tomorrow at 5pm"),
            "{text}"
        );
        assert!(text.contains("[+  0.84s] bot: Confirm Haircut"), "{text}");
        assert!(text.contains("[1] Confirm  [2] Other time   (Held for you for 1 min)"));
        assert!(
            text.contains(" 1. Thu 15 Jan 12:00  (Haircut · 30 min · Maria)"),
            "{text}"
        );
    }
}

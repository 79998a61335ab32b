//! `understand`: runs the language module on messages from stdin, one result per line.
//!
//! `--jsonl` reads `{"text", "now", "tz", "lang"?}` objects and writes
//! `{"lang", "intents", "when"}` objects, one per input line and in order; a line that
//! cannot be read yields `{"error": "..."}` instead. Without `--jsonl`, every stdin line is a
//! message read against `--now` and `--tz`, for trying the module by hand.
//!
//! Optional input fields beyond the contract: `date_order` ("day_first" | "month_first"),
//! `services`, `staff` (arrays of names). English numeric dates default to month first
//! ("2/15"), as in the public corpora the tool is evaluated on.

use std::io::{self, BufRead, BufWriter, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use clap::Parser;
use lang::{Context, DateOrder, Lang, Understanding, When, WhenKind, understand};
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(
    name = "understand",
    about = "Read booking messages and print what the language module understood"
)]
struct Args {
    /// Read JSON lines (`{"text", "now", "tz", "lang"?}`) instead of plain text.
    #[arg(long)]
    jsonl: bool,
    /// Reference time for plain-text mode (RFC 3339 with offset); defaults to the current time.
    #[arg(long)]
    now: Option<String>,
    /// Business time zone (IANA name) for plain-text mode.
    #[arg(long, default_value = "Europe/Madrid")]
    tz: String,
    /// Language assumed when a message carries no signal of its own ("en" or "es").
    #[arg(long, default_value = "en")]
    default_lang: String,
    /// Day/month order of English numeric dates: "month_first" or "day_first".
    #[arg(long, default_value = "month_first")]
    date_order: String,
}

fn parse_lang(s: &str) -> Result<Lang, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "en" | "eng" | "english" => Ok(Lang::En),
        "es" | "spa" | "spanish" | "español" | "espanol" => Ok(Lang::Es),
        other => Err(format!(
            "unknown language {other:?}; expected \"en\" or \"es\""
        )),
    }
}

fn parse_date_order(s: &str) -> Result<DateOrder, String> {
    match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "day_first" | "dmy" => Ok(DateOrder::DayFirst),
        "month_first" | "mdy" => Ok(DateOrder::MonthFirst),
        other => Err(format!(
            "unknown date order {other:?}; expected \"day_first\" or \"month_first\""
        )),
    }
}

fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("\"now\" is not an RFC 3339 time with offset ({e})"))
}

fn parse_tz(s: &str) -> Result<Tz, String> {
    s.trim()
        .parse::<Tz>()
        .map_err(|_| format!("unknown time zone {s:?}"))
}

fn rfc3339(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn when_json(w: &When, tz: Tz) -> Value {
    json!({
        "kind": match w.kind { WhenKind::Instant => "instant", WhenKind::Interval => "interval" },
        "start": rfc3339(w.start, tz),
        "end": w.end.map(|e| rfc3339(e, tz)),
        "grain": serde_json::to_value(w.grain).unwrap_or(Value::Null),
    })
}

fn output_json(u: &Understanding, tz: Tz) -> Value {
    json!({
        "lang": u.lang.code(),
        "intents": u.intents.iter().map(|i| json!({
            "name": i.name.as_str(),
            "confidence": (f64::from(i.confidence) * 100.0).round() / 100.0,
        })).collect::<Vec<_>>(),
        "when": u.when.iter().map(|w| when_json(w, tz)).collect::<Vec<_>>(),
    })
}

fn string_list(v: Option<&Value>, field: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("\"{field}\" must be an array of strings"))
            })
            .collect(),
        Some(_) => Err(format!("\"{field}\" must be an array of strings")),
    }
}

/// One JSON input line to one JSON output value; every failure becomes an error object.
fn process_json_line(line: &str, default_lang: Lang, default_order: DateOrder) -> Value {
    let result = (|| -> Result<Value, String> {
        let input: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
        let object = input.as_object().ok_or("expected a JSON object")?;
        let text = object
            .get("text")
            .and_then(Value::as_str)
            .ok_or("missing string field \"text\"")?;
        let now = parse_now(
            object
                .get("now")
                .and_then(Value::as_str)
                .ok_or("missing string field \"now\"")?,
        )?;
        let tz = parse_tz(
            object
                .get("tz")
                .and_then(Value::as_str)
                .ok_or("missing string field \"tz\"")?,
        )?;
        let lang_hint = match object.get("lang") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(parse_lang(s)?),
            Some(_) => return Err("\"lang\" must be a string".to_string()),
        };
        let date_order = match object.get("date_order").and_then(Value::as_str) {
            Some(s) => parse_date_order(s)?,
            None => default_order,
        };
        let services = string_list(object.get("services"), "services")?;
        let staff = string_list(object.get("staff"), "staff")?;
        let ctx = Context {
            now,
            tz,
            default_lang: lang_hint.unwrap_or(default_lang),
            lang_hint,
            date_order,
            services: &services,
            staff: &staff,
            options: &[],
        };
        Ok(output_json(&understand(text, &ctx), tz))
    })();
    result.unwrap_or_else(|error| json!({ "error": error }))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let setup = (|| -> Result<(Lang, DateOrder, Tz, DateTime<Utc>), String> {
        let lang = parse_lang(&args.default_lang)?;
        let order = parse_date_order(&args.date_order)?;
        let tz = parse_tz(&args.tz)?;
        let now = match &args.now {
            Some(s) => parse_now(s)?,
            None => Utc::now(),
        };
        Ok((lang, order, tz, now))
    })();
    let (default_lang, default_order, tz, now) = match setup {
        Ok(s) => s,
        Err(e) => {
            eprintln!("understand: {e}");
            return std::process::ExitCode::from(2);
        }
    };

    let stdin = io::stdin();
    let mut input = stdin.lock();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match input.read_until(b'\n', &mut buffer) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("understand: cannot read stdin: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
        // Invalid UTF-8 is replaced rather than rejected: one output line per input line.
        let line = String::from_utf8_lossy(&buffer);
        let line = line.trim_end_matches(['\n', '\r']);
        let value = if args.jsonl {
            process_json_line(line, default_lang, default_order)
        } else {
            let ctx = Context {
                now,
                tz,
                default_lang,
                lang_hint: None,
                date_order: default_order,
                services: &[],
                staff: &[],
                options: &[],
            };
            output_json(&understand(line, &ctx), tz)
        };
        // Flush per line so that a caller driving the tool interactively gets each answer.
        if writeln!(out, "{value}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    std::process::ExitCode::SUCCESS
}

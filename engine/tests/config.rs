//! The tenants file: the shipped example loads, and each kind of mistake is reported with the
//! tenant, the field and the line.

use engine::config::{CalendarBackend, TemplatePurpose};
use engine::{ConfigProblem, Tenants};
use lang::Lang;

const EXAMPLE: &str = include_str!("../../config/tenants.toml");

fn problems(text: &str) -> Vec<ConfigProblem> {
    match Tenants::from_toml_str(text) {
        Ok(_) => panic!("expected the file to be rejected"),
        Err(error) => error.problems,
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.contains(needle))
        .map(|index| index + 1)
        .expect("needle present")
}

#[test]
fn shipped_example_is_valid() {
    let tenants = Tenants::from_toml_str(EXAMPLE).expect("example must load");
    assert_eq!(tenants.len(), 2);
    let salon = tenants.get("106540352242922").expect("salon");
    assert_eq!(salon.time_zone, chrono_tz::America::New_York);
    assert_eq!(salon.default_language, Lang::En);
    assert_eq!(salon.services.len(), 3);
    assert_eq!(salon.hold_minutes, 15);
    assert_eq!(salon.reminder_minutes, vec![1440, 60]);
    assert_eq!(salon.calendar, CalendarBackend::Builtin);
    // Tuesday 10:00-19:00 with a 14:00-14:30 break is two periods.
    assert_eq!(salon.hours[1].len(), 2);
    assert!(salon.hours[0].is_empty(), "Monday is closed");
    let clinic = tenants.get("106540352242923").expect("clinic");
    assert_eq!(clinic.calendar, CalendarBackend::Calcom);
    assert_eq!(
        clinic
            .staff
            .iter()
            .find(|s| s.id == "sala")
            .map(|s| s.capacity),
        Some(2)
    );
    let reminder = clinic
        .template(TemplatePurpose::Reminder, Lang::Es)
        .expect("template");
    assert_eq!(reminder.parameters, 3);
    assert_eq!(reminder.language_code, "es_ES");
    assert!(tenants.get("999").is_none());
}

#[test]
fn unknown_time_zone_names_tenant_field_and_line() {
    let text = EXAMPLE.replace("\"Europe/Madrid\"", "\"Europe/Madird\"");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].tenant.as_deref(), Some("Clínica Fisio Sol"));
    assert_eq!(found[0].field, "time_zone");
    assert_eq!(found[0].line, Some(line_of(&text, "Europe/Madird")));
    assert!(found[0].message.contains("unknown time zone"));
}

#[test]
fn overlapping_breaks_are_rejected() {
    let text = EXAMPLE.replace(
        "thu = { open = \"10:00\", close = \"20:00\", breaks = [\"14:00-14:30\"] }",
        "thu = { open = \"10:00\", close = \"20:00\", breaks = [\"14:00-14:30\", \"14:15-15:00\"] }",
    );
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].tenant.as_deref(), Some("Bella Hair Studio"));
    assert_eq!(found[0].field, "hours.thu.breaks");
    assert!(found[0].message.contains("overlapping"));
    assert_eq!(found[0].line, Some(line_of(&text, "14:15-15:00")));
}

#[test]
fn break_outside_hours_and_inverted_hours_are_rejected() {
    let text = EXAMPLE.replace(
        "sat = { open = \"09:00\", close = \"17:00\" }",
        "sat = { open = \"09:00\", close = \"17:00\", breaks = [\"18:00-18:30\"] }\nsun = { open = \"12:00\", close = \"10:00\" }",
    );
    let fields: Vec<String> = problems(&text).into_iter().map(|p| p.field).collect();
    assert_eq!(fields, vec!["hours.sat.breaks", "hours.sun.close"]);
}

#[test]
fn template_with_wrong_parameter_count_is_rejected() {
    let text = EXAMPLE.replacen(
        "en = { name = \"hold_expired\", language_code = \"en_US\", params = 2 }",
        "en = { name = \"hold_expired\", language_code = \"en_US\", params = 3 }",
        1,
    );
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].field, "templates.hold_expired.en.params");
    assert_eq!(found[0].tenant.as_deref(), Some("Bella Hair Studio"));
    assert!(found[0].message.contains("wrong number of parameters"));
    assert_eq!(found[0].line, Some(line_of(&text, "params = 3 }")));
}

#[test]
fn missing_language_is_rejected_for_names_and_templates() {
    let text = EXAMPLE
        .replacen(
            "names = { en = \"Color\", es = \"Tinte\" }",
            "names = { en = \"Color\" }",
            1,
        )
        .replacen(
            "es = { name = \"seguimiento_visita\", language_code = \"es\", params = 2 }\n",
            "",
            1,
        );
    let found = problems(&text);
    let fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
    assert!(fields.contains(&"services.color.names"), "{found:?}");
    assert!(fields.contains(&"templates.follow_up.es"), "{found:?}");
    assert!(
        found
            .iter()
            .all(|p| p.message.contains("missing language es"))
    );
}

#[test]
fn type_errors_name_tenant_field_and_line() {
    let text = EXAMPLE.replacen("hold_minutes = 10", "hold_minutes = \"ten\"", 1);
    let found = problems(&text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].field, "hold_minutes");
    assert_eq!(found[0].tenant.as_deref(), Some("Clínica Fisio Sol"));
    assert_eq!(
        found[0].line,
        Some(line_of(&text, "hold_minutes = \"ten\""))
    );
}

#[test]
fn unknown_fields_and_missing_fields_are_named() {
    let text = EXAMPLE.replacen("hold_minutes = 15", "hold_minutos = 15", 1);
    let found = problems(&text);
    assert_eq!(found[0].field, "hold_minutos");
    assert_eq!(found[0].tenant.as_deref(), Some("Bella Hair Studio"));
    let text = EXAMPLE.replacen("time_zone = \"America/New_York\"\n", "", 1);
    let found = problems(&text);
    assert_eq!(found[0].field, "time_zone");
    assert!(found[0].message.contains("missing"));
}

#[test]
fn calcom_services_need_event_types_and_duplicate_numbers_are_caught() {
    let text = EXAMPLE.replacen("calcom_event_type_id = 1843202\n", "", 1);
    let found = problems(&text);
    assert_eq!(found[0].field, "services.valoracion.calcom_event_type_id");
    let text = EXAMPLE.replacen("\"106540352242923\"", "\"106540352242922\"", 1);
    let found = problems(&text);
    assert_eq!(found[0].field, "phone_number_id");
}

#[test]
fn handoff_secret_must_be_a_variable_name() {
    let text = EXAMPLE.replacen(
        "secret_env = \"BELLA_HANDOFF_SECRET\"",
        "secret_env = \"s3cr3t-value\"",
        1,
    );
    let found = problems(&text);
    assert_eq!(found[0].field, "handoff.secret_env");
}

#[test]
fn staff_must_reference_known_services_and_every_service_needs_staff() {
    let text = EXAMPLE.replacen(
        "services = [\"haircut\", \"blowdry\"]",
        "services = [\"haircut\", \"nails\"]",
        1,
    );
    let found = problems(&text);
    assert_eq!(found[0].field, "staff.james.services");
    assert!(found[0].message.contains("nails"));
}

#[test]
fn errors_display_line_tenant_and_field() {
    let text = EXAMPLE.replace("\"Europe/Madrid\"", "\"Mars/Olympus\"");
    let error = Tenants::from_toml_str(&text).expect_err("invalid");
    let shown = error.to_string();
    assert!(
        shown.contains(&format!("line {}", line_of(&text, "Mars/Olympus"))),
        "{shown}"
    );
    assert!(shown.contains("Clínica Fisio Sol"), "{shown}");
    assert!(shown.contains("`time_zone`"), "{shown}");
}

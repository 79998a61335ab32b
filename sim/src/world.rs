//! The businesses of a sandbox run, described once and rendered three ways: the tenants file
//! the fleet reads, the numbers and templates the fake WhatsApp knows, and the event types the
//! fake Cal.com serves. Deriving all three from one description is what keeps them agreeing
//! on phone number ids, template names, parameter counts and event type ids.

use std::fmt::Write as _;
use std::time::Duration;

use chrono_tz::Tz;
use fakes::calcom::{EventTypeConfig, FakeCalcomConfig, WeeklySchedule};
use fakes::whatsapp::{BusinessNumber, TemplateSpec};
use lang::Lang;

/// Where a business keeps its bookings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Builtin,
    Calcom,
}

/// One bookable service of a simulated business.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDef {
    pub id: String,
    pub name_en: String,
    pub name_es: String,
    pub minutes: u32,
    /// Cal.com event type, only for Cal.com businesses.
    pub event_type_id: Option<u64>,
}

/// A person or room; capacity above one lets a load run book the same minute twice legally,
/// which the audit must then tell apart from a double booking.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffDef {
    pub id: String,
    pub name: String,
    pub capacity: u32,
}

/// One simulated business behind one WhatsApp number.
#[derive(Debug, Clone, PartialEq)]
pub struct Business {
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub name: String,
    pub time_zone: Tz,
    /// The language customers of this business write in by default.
    pub lang: Lang,
    pub backend: Backend,
    pub services: Vec<ServiceDef>,
    pub staff: Vec<StaffDef>,
    /// Local opening hours, every day of the week, so a demo works whatever day it runs.
    pub open_hour: u32,
    pub close_hour: u32,
    /// Step between proposed times; equals the service length on Cal.com, whose slot
    /// interval is the event length.
    pub slot_step_minutes: u32,
}

/// Template names the sandbox approves for every business, per purpose:
/// (purpose key, English name, Spanish name, body parameters, quick replies).
const TEMPLATES: [(&str, &str, &str, usize, usize); 4] = [
    (
        "reminder",
        "appointment_reminder",
        "recordatorio_cita",
        3,
        3,
    ),
    ("hold_expired", "hold_expired", "reserva_caducada", 2, 0),
    ("follow_up", "visit_follow_up", "seguimiento_visita", 2, 0),
    (
        "reopen",
        "conversation_update",
        "novedad_conversacion",
        1,
        0,
    ),
];

const EN_TEMPLATE_CODE: &str = "en_US";
const ES_TEMPLATE_CODE: &str = "es_ES";

/// Every business in one run, and the settings they share.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    pub businesses: Vec<Business>,
    /// Short, so a customer who goes silent sees the hold expire within the demo.
    pub hold_minutes: u32,
}

impl World {
    /// One English salon on the built-in calendar and one Spanish clinic on Cal.com, so a
    /// demo shows both backends.
    pub fn demo(hold_minutes: u32) -> World {
        World {
            businesses: vec![english_salon(0), spanish_clinic(0)],
            hold_minutes,
        }
    }

    /// `count` businesses for a load run: numbers spread the outbound rate, because WhatsApp
    /// limits each number (80 messages a second by default) and the workers pace to that.
    /// Every `calcom_every`-th business books through Cal.com (0: none).
    pub fn load(count: usize, calcom_every: usize, hold_minutes: u32) -> World {
        let businesses = (0..count.max(1))
            .map(|index| {
                if calcom_every > 0 && index % calcom_every == calcom_every - 1 {
                    spanish_clinic(index)
                } else {
                    english_salon(index)
                }
            })
            .collect();
        World {
            businesses,
            hold_minutes,
        }
    }

    pub fn business(&self, phone_number_id: &str) -> Option<&Business> {
        self.businesses
            .iter()
            .find(|business| business.phone_number_id == phone_number_id)
    }

    pub fn uses_calcom(&self) -> bool {
        self.businesses
            .iter()
            .any(|business| business.backend == Backend::Calcom)
    }

    /// The tenants file for the fleet, in the documented format (config/tenants.toml).
    pub fn tenants_toml(&self) -> String {
        let mut out =
            String::from("# Written by the sandbox for one run; matches the fakes it started.\n");
        for business in &self.businesses {
            business.write_toml(&mut out, self.hold_minutes);
        }
        out
    }

    /// The numbers and approved templates the fake WhatsApp must know.
    pub fn whatsapp_numbers(&self) -> Vec<BusinessNumber> {
        self.businesses
            .iter()
            .map(|business| {
                let mut number =
                    BusinessNumber::new(&business.phone_number_id, &business.display_phone_number);
                for (_, en_name, es_name, params, buttons) in TEMPLATES {
                    number = number
                        .with_template(
                            TemplateSpec::new(en_name, EN_TEMPLATE_CODE, params)
                                .with_quick_replies(buttons),
                        )
                        .with_template(
                            TemplateSpec::new(es_name, ES_TEMPLATE_CODE, params)
                                .with_quick_replies(buttons),
                        );
                }
                number
            })
            .collect()
    }

    /// The fake Cal.com account holding the event types of every Cal.com business. Its
    /// request budget is raised for load runs: the point is to measure the fleet, not to
    /// watch Cal.com's 120-a-minute throttle.
    pub fn calcom_config(&self, api_key: &str, generous_rate_limit: bool) -> FakeCalcomConfig {
        let mut config = FakeCalcomConfig::default().with_api_key(api_key);
        if generous_rate_limit {
            config = config.with_rate_limit(1_000_000, Duration::from_secs(60));
        }
        for business in &self.businesses {
            if business.backend != Backend::Calcom {
                continue;
            }
            for service in &business.services {
                if let Some(id) = service.event_type_id {
                    config = config.with_event_type(EventTypeConfig::new(
                        id,
                        format!("{}-{}", service.id, business.phone_number_id),
                        service.minutes,
                        business.time_zone,
                        WeeklySchedule::every_day(business.open_hour, business.close_hour),
                    ));
                }
            }
        }
        config
    }
}

impl Business {
    fn write_toml(&self, out: &mut String, hold_minutes: u32) {
        let (default_language, languages) = match self.lang {
            Lang::En => ("en", r#"["en", "es"]"#),
            Lang::Es => ("es", r#"["es", "en"]"#),
        };
        let backend = match self.backend {
            Backend::Builtin => "builtin",
            Backend::Calcom => "calcom",
        };
        // `write!` into a String cannot fail; the results are ignored on purpose.
        let _ = writeln!(out, "\n[[tenant]]");
        let _ = writeln!(out, "phone_number_id = \"{}\"", self.phone_number_id);
        let _ = writeln!(out, "name = \"{}\"", self.name);
        let _ = writeln!(out, "time_zone = \"{}\"", self.time_zone.name());
        let _ = writeln!(out, "default_language = \"{default_language}\"");
        let _ = writeln!(out, "languages = {languages}");
        let _ = writeln!(out, "hold_minutes = {hold_minutes}");
        let _ = writeln!(out, "min_lead_minutes = 30");
        let _ = writeln!(out, "horizon_days = 60");
        let _ = writeln!(out, "slot_step_minutes = {}", self.slot_step_minutes);
        let _ = writeln!(out, "calendar = {{ backend = \"{backend}\" }}");
        let _ = writeln!(out, "\n[tenant.hours]");
        for day in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] {
            let _ = writeln!(
                out,
                "{day} = {{ open = \"{:02}:00\", close = \"{:02}:00\" }}",
                self.open_hour, self.close_hour
            );
        }
        for service in &self.services {
            let _ = writeln!(out, "\n[[tenant.services]]");
            let _ = writeln!(out, "id = \"{}\"", service.id);
            let _ = writeln!(
                out,
                "names = {{ en = \"{}\", es = \"{}\" }}",
                service.name_en, service.name_es
            );
            let _ = writeln!(out, "minutes = {}", service.minutes);
            if let Some(id) = service.event_type_id {
                let _ = writeln!(out, "calcom_event_type_id = {id}");
            }
        }
        for staff in &self.staff {
            let _ = writeln!(out, "\n[[tenant.staff]]");
            let _ = writeln!(out, "id = \"{}\"", staff.id);
            let _ = writeln!(out, "name = \"{}\"", staff.name);
            let _ = writeln!(out, "capacity = {}", staff.capacity);
        }
        for (purpose, en_name, es_name, params, buttons) in TEMPLATES {
            let buttons = if buttons > 0 {
                r#", buttons = ["confirm", "reschedule", "cancel"]"#
            } else {
                ""
            };
            let _ = writeln!(out, "\n[tenant.templates.{purpose}]");
            let _ = writeln!(
                out,
                "en = {{ name = \"{en_name}\", language_code = \"{EN_TEMPLATE_CODE}\", params = {params}{buttons} }}"
            );
            let _ = writeln!(
                out,
                "es = {{ name = \"{es_name}\", language_code = \"{ES_TEMPLATE_CODE}\", params = {params}{buttons} }}"
            );
        }
    }
}

/// Phone number ids are numeric (the tenants file checks it); the index keeps them apart.
fn phone_number_id(base: u64, index: usize) -> String {
    (base + index as u64).to_string()
}

fn english_salon(index: usize) -> Business {
    let suffix = if index == 0 {
        String::new()
    } else {
        format!(" #{index}")
    };
    Business {
        phone_number_id: phone_number_id(100_000_000_000_000, index),
        display_phone_number: format!("1555{:07}", index),
        name: format!("Sunny Side Salon{suffix}"),
        time_zone: chrono_tz::America::New_York,
        lang: Lang::En,
        backend: Backend::Builtin,
        services: vec![
            ServiceDef {
                id: "haircut".into(),
                name_en: "Haircut".into(),
                name_es: "Corte de pelo".into(),
                minutes: 30,
                event_type_id: None,
            },
            ServiceDef {
                id: "color".into(),
                name_en: "Color".into(),
                name_es: "Tinte".into(),
                minutes: 60,
                event_type_id: None,
            },
        ],
        staff: vec![
            StaffDef {
                id: "maria".into(),
                name: "Maria".into(),
                capacity: 1,
            },
            StaffDef {
                id: "james".into(),
                name: "James".into(),
                capacity: 1,
            },
            // Two chairs: two bookings may share a minute here, and only here.
            StaffDef {
                id: "studio".into(),
                name: "Studio".into(),
                capacity: 2,
            },
        ],
        open_hour: 7,
        close_hour: 22,
        slot_step_minutes: 15,
    }
}

fn spanish_clinic(index: usize) -> Business {
    let suffix = if index == 0 {
        String::new()
    } else {
        format!(" #{index}")
    };
    // Event type ids must be unique across the fake account.
    let event_base = 1_800_000 + (index as u64) * 10;
    Business {
        phone_number_id: phone_number_id(200_000_000_000_000, index),
        display_phone_number: format!("3491{:07}", index),
        name: format!("Clínica Fisio Sol{suffix}"),
        time_zone: chrono_tz::Europe::Madrid,
        lang: Lang::Es,
        backend: Backend::Calcom,
        services: vec![ServiceDef {
            id: "fisio".into(),
            name_en: "Physiotherapy".into(),
            name_es: "Fisioterapia".into(),
            minutes: 30,
            event_type_id: Some(event_base + 1),
        }],
        // Cal.com's fake has one owner whose bookings all block each other: one resource.
        staff: vec![StaffDef {
            id: "lucia".into(),
            name: "Lucía".into(),
            capacity: 1,
        }],
        open_hour: 8,
        close_hour: 21,
        slot_step_minutes: 30,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_tenants_file_is_valid_and_matches_the_fakes() {
        let world = World::demo(1);
        let tenants = engine::Tenants::from_toml_str(&world.tenants_toml())
            .unwrap_or_else(|error| panic!("{error}\n{}", world.tenants_toml()));
        assert_eq!(tenants.len(), 2);
        let numbers = world.whatsapp_numbers();
        let calcom = world.calcom_config("key", false);
        for tenant in tenants.iter() {
            let number = numbers
                .iter()
                .find(|n| n.phone_number_id == tenant.phone_number_id)
                .expect("every tenant has a number in the fake");
            assert_eq!(tenant.hold_minutes, 1);
            for (purpose, by_lang) in &tenant.templates {
                for template in by_lang.values() {
                    let spec = number
                        .templates
                        .iter()
                        .find(|t| t.name == template.name && t.language == template.language_code)
                        .unwrap_or_else(|| panic!("template {} is approved", template.name));
                    assert_eq!(spec.body_parameters, purpose.parameter_count());
                    assert_eq!(spec.body_parameters, template.parameters);
                    assert!(template.quick_replies.len() <= spec.quick_reply_buttons);
                }
            }
            if tenant.calendar == engine::config::CalendarBackend::Calcom {
                for service in &tenant.services {
                    let id = service.calcom_event_type_id.expect("event type");
                    let event = calcom
                        .event_types
                        .iter()
                        .find(|e| e.id == id)
                        .expect("event type served by the fake");
                    assert_eq!(event.length_minutes, service.minutes);
                }
            }
        }
    }

    #[test]
    fn load_world_has_unique_numbers_and_event_types() {
        let world = World::load(40, 10, 15);
        let tenants = engine::Tenants::from_toml_str(&world.tenants_toml())
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(tenants.len(), 40);
        let calcom = world.calcom_config("key", true);
        assert_eq!(calcom.event_types.len(), 4);
        let mut ids: Vec<u64> = calcom.event_types.iter().map(|e| e.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), 4);
    }
}

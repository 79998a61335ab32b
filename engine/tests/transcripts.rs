//! Conversations as customers will have them, in English and Spanish.
//!
//! Unindented lines are events; indented lines assert on what the engine did in response
//! (every step of the event, outcomes included). Times are the business's local time. The
//! harness (tests/common) also checks, after every step, that outcome-bearing actions end the
//! decision, that at most one slot is held, that nothing is proposed in the past or outside
//! opening hours, that every message is within WhatsApp's limits and that free-form messages
//! are only sent inside the 24-hour window.

mod common;

use common::Conversation;

// ---- English: the salon in New York (Tue-Sat; Thu 10:00-20:00, break 14:00-14:30) ----------

const SALON_BOOKED: &str = "
tenant salon
now 2026-01-14 10:00
customer: Hi, can I get a haircut tomorrow at 5pm?
  bot marks read
  bot holds 2026-01-15 17:00 with maria
outcome held
  bot says \"Hi Ana! This is Bella Hair Studio.\"
  bot asks \"Confirm Haircut, Thu 15 Jan, 17:00 with Maria?\" [Confirm | Other time | Cancel]
  bot schedules hold expiry
  stage held
customer taps confirm
  bot books
outcome booked bk_1
  bot says \"You're booked: Haircut, Thu 15 Jan, 17:00 with Maria. See you then!\"
  bot schedules reminder 1440 at 2026-01-14 17:00
  bot schedules reminder 60 at 2026-01-15 16:00
  bot schedules follow up
  bot releases hold
  bot cancels timer hold:
  stage booked
";

#[test]
fn en_book_a_free_time_confirm_and_get_reminders() {
    let transcript = SALON_BOOKED.replace("  bot cancels timer hold:\n", "");
    Conversation::run(&transcript);
}

#[test]
fn en_redelivered_message_has_no_effect() {
    Conversation::run(&format!(
        "{}
redeliver
  bot does nothing
  stage booked
",
        SALON_BOOKED.replace("  bot cancels timer hold:\n", "")
    ));
}

#[test]
fn en_taken_time_offers_nearest_same_day_first() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
busy maria 2026-01-15 17:00 60
busy james 2026-01-15 17:00 60
customer: can I book a haircut tomorrow at 17:00?
  bot does not hold
  bot lists \"Thu 15 Jan, 17:00 is already booked. The nearest free times for Haircut\" rows: Thu 15 Jan 15:00, Thu 15 Jan 15:15, Thu 15 Jan 15:30, Thu 15 Jan 15:45, Thu 15 Jan 16:00, Thu 15 Jan 18:00, Thu 15 Jan 18:15, Thu 15 Jan 18:30, Thu 15 Jan 18:45, Thu 15 Jan 19:00
  stage choosing_time
customer picks row 5
  bot holds 2026-01-15 16:00
outcome held
  bot asks \"Confirm Haircut, Thu 15 Jan, 16:00\"
",
    );
}

#[test]
fn en_closed_day_offers_the_following_open_day() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: Can I come in for a haircut on Monday at 11am?
  bot does not hold
  bot lists \"We're closed at Mon 19 Jan, 11:00\" rows: Tue 20 Jan 10:00, Tue 20 Jan 10:15, ...
",
    );
}

#[test]
fn en_beyond_horizon_offers_the_latest_bookable_times() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: haircut on March 10 at 11am please
  bot does not hold
  bot lists \"We don't take bookings that far ahead\"
",
    );
}

#[test]
fn en_hold_rejected_shows_alternatives_in_the_same_reply() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: haircut tomorrow at 5pm
  bot holds 2026-01-15 17:00 with maria
outcome hold rejected
  bot lists \"Sorry, Thu 15 Jan, 17:00 was just taken\" rows: Thu 15 Jan 15:45, Thu 15 Jan 16:00, Thu 15 Jan 16:15, Thu 15 Jan 16:30, Thu 15 Jan 16:45, Thu 15 Jan 17:15, Thu 15 Jan 17:30, Thu 15 Jan 17:45, Thu 15 Jan 18:00, Thu 15 Jan 18:15
  bot sends one message
  stage choosing_time
",
    );
}

#[test]
fn en_slot_gone_at_booking_shows_alternatives_in_the_same_reply() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: haircut tomorrow at 5pm
outcome held
customer: yes please
  bot books
outcome slot gone
  bot lists \"Sorry, Thu 15 Jan, 17:00 was just taken\"
  bot releases hold
  bot does not hand off
  stage choosing_time
",
    );
}

#[test]
fn en_expired_hold_tells_the_customer_and_returns_to_choosing() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: haircut tomorrow at 5pm
outcome held
advance 15 min
timer hold expiry
  bot releases hold
  bot lists \"I held Thu 15 Jan, 17:00 for you but the time to confirm ran out\"
  stage choosing_time
customer picks row 1
  bot holds 2026-01-15 15:45
",
    );
}

#[test]
fn en_other_time_releases_the_hold_and_lists_alternatives() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: haircut tomorrow at 5pm
outcome held
customer taps other
  bot releases hold
  bot cancels timer hold:
  bot lists \"No problem. Other free times for Haircut\"
  stage choosing_time
"
        .replace("  bot cancels timer hold:\n", "")
        .as_str(),
    );
}

#[test]
fn en_cancel_button_on_hold_lets_it_go() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: haircut tomorrow at 5pm
outcome held
customer taps cancel_hold
  bot releases hold
  bot says \"I've let that time go\"
  stage idle
",
    );
}

#[test]
fn en_reschedule_keeps_the_old_booking_until_the_new_one_is_confirmed() {
    Conversation::run(&format!(
        "{}
advance 60 min
customer: can I move my appointment?
  bot says \"When would you like to move it to?\"
  stage rescheduling
customer: Friday at 11am would be better
  bot holds 2026-01-16 11:00
  stage rescheduling
  bookings 1
outcome held
  bot asks \"Confirm Haircut, Fri 16 Jan, 11:00\" [Confirm | Other time | Cancel]
customer taps confirm
  bot reschedules
outcome rescheduled bk_2
  bot says \"Done, your booking is moved to Haircut, Fri 16 Jan, 11:00\"
  bot cancels timer bk_1:reminder:1440
  bot cancels timer bk_1:reminder:60
  bot schedules reminder 1440 at 2026-01-15 11:00
  bot schedules reminder 60 at 2026-01-16 10:00
  bookings 1
  stage booked
",
        SALON_BOOKED.replace("  bot cancels timer hold:\n", "")
    ));
}

#[test]
fn en_reschedule_abandoned_keeps_the_booking() {
    Conversation::run(&format!(
        "{}
customer: I need to reschedule
  bot says \"Your booking is Haircut, Thu 15 Jan, 17:00 with Maria. When would you like to move it to?\"
  stage rescheduling
customer: Saturday at 10am
  bot holds 2026-01-17 10:00
outcome held
customer taps cancel_hold
  bot releases hold
  bot says \"your booking stays\"
  bookings 1
  stage booked
",
        SALON_BOOKED.replace("  bot cancels timer hold:\n", "")
    ));
}

#[test]
fn en_cancel_asks_once_then_cancels_and_clears_reminders() {
    Conversation::run(&format!(
        "{}
customer: I need to cancel my appointment
  bot asks \"Cancel your booking Haircut, Thu 15 Jan, 17:00 with Maria?\" [Yes, cancel | Keep it]
  stage confirming_cancel
customer taps cancel_yes:bk_1
  bot cancels booking
outcome cancelled
  bot says \"Your booking Haircut, Thu 15 Jan, 17:00 with Maria is cancelled\"
  bot cancels timer bk_1:reminder:1440
  bot cancels timer bk_1:reminder:60
  bookings 0
  stage idle
",
        SALON_BOOKED.replace("  bot cancels timer hold:\n", "")
    ));
}

#[test]
fn en_cancel_declined_keeps_the_booking() {
    Conversation::run(&format!(
        "{}
customer: cancel my booking
  stage confirming_cancel
customer taps cancel_no:bk_1
  bot says \"Great, your booking stays\"
  bookings 1
  stage booked
",
        SALON_BOOKED.replace("  bot cancels timer hold:\n", "")
    ));
}

#[test]
fn en_reminder_inside_window_has_buttons_and_outside_uses_the_template() {
    Conversation::run(&format!(
        "{}
now 2026-01-14 17:00
timer reminder 1440
  bot asks \"Hi Ana, a reminder of your booking: Haircut, Thu 15 Jan, 17:00 with Maria.\" [Confirm | Change time | Cancel]
now 2026-01-15 16:00
timer reminder 60
  bot sends template appointment_reminder (Ana | Thu 15 Jan, 17:00 | Haircut) buttons confirm:bk_1, reschedule:bk_1, cancel:bk_1
customer taps template confirm:bk_1
  bot says \"Thanks for confirming\"
timer no show
  bot sends nothing
",
        SALON_BOOKED.replace("  bot cancels timer hold:\n", "")
    ));
}

#[test]
fn en_reminder_template_cancel_tap_works_days_later() {
    Conversation::run(&format!(
        "{}
now 2026-01-15 16:00
timer reminder 60
  bot sends template appointment_reminder
customer taps template cancel:bk_1
  bot asks \"Cancel your booking\" [Yes, cancel | Keep it]
",
        SALON_BOOKED.replace("  bot cancels timer hold:\n", "")
    ));
}

#[test]
fn en_follow_up_outside_window_uses_template_and_forgets_the_booking() {
    Conversation::run(&format!(
        "{}
now 2026-01-15 19:45
timer follow up
  bot sends template visit_follow_up (Ana | Haircut)
  bookings 0
",
        SALON_BOOKED.replace("  bot cancels timer hold:\n", "")
    ));
}

#[test]
fn en_asking_for_a_person_hands_off_at_once_and_the_bot_goes_silent() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: haircut tomorrow at 5pm
outcome held
customer: can I talk to a real person please
  bot hands off requested
  bot releases hold
  bot says \"I'm passing you to a person at Bella Hair Studio\"
  stage handed_off
customer: hello?
  bot is silent
customer: tomorrow at 6pm then
  bot is silent
agent releases
  bot sends nothing
  stage idle
customer: hi
  bot says \"Tell me a day and time\"
",
    );
}

#[test]
fn en_two_misunderstandings_hand_off_in_the_same_reply() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: purple elephants dance quietly
  bot says \"Sorry, I didn't understand\"
  bot does not hand off
customer: the moon is made of cheese
  bot hands off misunderstood
  bot says \"I'm passing you to a person\"
  stage handed_off
",
    );
}

#[test]
fn en_understood_message_resets_the_misunderstanding_count() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: purple elephants dance quietly
  bot says \"Sorry, I didn't understand\"
customer: thanks
  bot says \"You're welcome\"
customer: the moon is made of cheese
  bot does not hand off
",
    );
}

#[test]
fn en_voice_notes_are_misunderstandings_and_reactions_get_no_reply() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer reacts 👍
  bot marks read
  bot sends nothing
customer sends a voice note
  bot says \"I can only read text messages\"
customer sends a location
  bot hands off misunderstood
",
    );
}

#[test]
fn en_stop_acknowledges_once_then_only_start_is_answered() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: haircut tomorrow at 5pm
outcome held
customer: STOP
  bot releases hold
  bot says \"You won't receive more messages from us\"
  stage opted_out
customer: hello?
  bot is silent
customer taps confirm
  bot is silent
customer: START
  bot says \"You'll receive our messages again\"
  stage idle
",
    );
}

#[test]
fn en_confirmation_echoes_the_customers_own_zone() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer zone Europe/London
customer: haircut tomorrow at 5pm
outcome held
  bot asks \"Confirm Haircut, Thu 15 Jan, 17:00 with Maria (that's Thu 15 Jan, 22:00 your time)?\"
",
    );
}

#[test]
fn en_calendar_error_hands_off() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: haircut tomorrow at 5pm
outcome held
customer taps confirm
outcome calendar error
  bot hands off calendar_failed
  handoff notes held_slot
  bot releases hold
  bot says \"I'm passing you to a person\"
  stage handed_off
",
    );
}

#[test]
fn en_calendar_not_answering_hands_off_instead_of_saying_nothing_is_free() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
calendar stops answering
customer: haircut tomorrow at 5pm
  bot hands off calendar_unreachable
  bot says \"I can't reach our calendar right now, so I'm passing you to a person at\"
  bot does not hold
  bot sends one message
  stage handed_off
",
    );
}

#[test]
fn en_calendar_not_answering_a_booking_hands_off_with_the_held_slot() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: haircut tomorrow at 5pm
outcome held
customer taps confirm
  bot books
outcome calendar unreachable
  bot hands off calendar_unreachable
  handoff notes held_slot
  bot releases hold
  bot says \"I can't reach our calendar right now\"
  stage handed_off
",
    );
}

#[test]
fn en_calendar_not_answering_does_not_matter_when_no_time_is_asked_about() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
calendar stops answering
customer: I want to talk to a person
  bot hands off requested
  bot says \"I'm passing you to a person\"
",
    );
}

#[test]
fn es_agenda_sin_respuesta_pasa_a_una_persona() {
    Conversation::run(
        "
tenant clinic
now 2026-01-14 10:00
calendar stops answering
customer: hola, quiero pedir cita para fisioterapia
  bot hands off calendar_unreachable
  bot says \"Ahora mismo no puedo consultar la agenda\"
  stage handed_off
",
    );
}

#[test]
fn en_business_moves_the_booking_and_reminders_follow() {
    Conversation::run(&format!(
        "{}
calendar moves bk_1 to 2026-01-16 12:00 as bk_9
  bot says \"Your booking has been moved to Haircut, Fri 16 Jan, 12:00 with Maria\"
  bot cancels timer bk_1:reminder:60
  bot schedules reminder 60 at 2026-01-16 11:00
now 2026-01-15 18:00
calendar cancels bk_9
  bot sends template conversation_update (Ana)
  bookings 0
",
        SALON_BOOKED.replace("  bot cancels timer hold:\n", "")
    ));
}

#[test]
fn en_window_closed_failure_reopens_with_template_and_permanent_failure_hands_off() {
    Conversation::run(&format!(
        "{}
status failed 131047
  bot sends template conversation_update (Ana)
status failed 130429
  bot does not hand off
status failed 131026
  bot hands off delivery_failed
  bot sends nothing
",
        SALON_BOOKED.replace("  bot cancels timer hold:\n", "")
    ));
}

#[test]
fn en_returning_customer_is_recognised() {
    Conversation::run(&format!(
        "{}
now 2026-01-14 18:00
customer: hi!
  bot says \"Welcome back, Ana! Your booking: Haircut, Thu 15 Jan, 17:00 with Maria.\"
customer: when is my appointment?
  bot says \"Your booking: Haircut, Thu 15 Jan, 17:00 with Maria.\"
",
        SALON_BOOKED.replace("  bot cancels timer hold:\n", "")
    ));
}

#[test]
fn en_several_services_without_one_named_asks_which() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: do you have anything tomorrow afternoon?
  bot lists \"Which service would you like?\"
  stage choosing_service
customer picks row 3
  bot lists \"Free times for Blow-dry\"
  stage choosing_time
",
    );
}

#[test]
fn en_stale_button_is_not_guessed() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer taps confirm
  bot says \"That option is no longer current.\"
  bot does not hold
",
    );
}

// ---- Spanish: the clinic in Madrid (Mon-Thu 09-14, 16-20; Fri 09-15; 30-min grid) ----------

const CLINIC_BOOKED: &str = "
tenant clinic
now 2026-01-14 10:00
customer: Hola, ¿tenéis hueco mañana a las 10 para fisioterapia?
  bot marks read
  bot holds 2026-01-15 10:00 with lucia
outcome held
  bot says \"¡Hola, Ana! Te escribe Clínica Fisio Sol.\"
  bot asks \"¿Confirmas Fisioterapia, jue 15 ene, 10:00 con Lucía?\" [Confirmar | Otra hora | Cancelar]
  bot schedules hold expiry
customer: sí
  bot books
outcome booked cal_1
  bot says \"Cita confirmada: Fisioterapia, jue 15 ene, 10:00 con Lucía. ¡Te esperamos!\"
  bot schedules reminder 120 at 2026-01-15 08:00
  stage booked
";

#[test]
fn es_reservar_confirmar_y_recordatorios() {
    Conversation::run(CLINIC_BOOKED);
}

#[test]
fn es_sin_servicio_pregunta_cual_y_elige_de_la_lista() {
    Conversation::run(
        "
tenant clinic
now 2026-01-14 10:00
customer: Buenas, quería una cita el viernes por la mañana
  bot lists \"¿Qué servicio quieres?\"
  stage choosing_service
customer picks row 2
  bot lists \"Horas libres para Primera valoración\" rows: vie 16 ene 09:00, ...
  stage choosing_time
customer: la segunda
  bot holds 2026-01-16 09:30
outcome held
  bot asks \"¿Confirmas Primera valoración, vie 16 ene, 09:30\"
",
    );
}

#[test]
fn es_cerrado_ofrece_el_siguiente_dia_abierto() {
    Conversation::run(
        "
tenant clinic
now 2026-01-14 10:00
customer: ¿puede ser el sábado a las 11 para fisioterapia?
  bot does not hold
  bot lists \"A esa hora (sáb 17 ene, 11:00) estamos cerrados\" rows: lun 19 ene 09:00, lun 19 ene 09:30, ...
",
    );
}

#[test]
fn es_ocupado_ofrece_el_mismo_dia_primero() {
    Conversation::run(
        "
tenant clinic
now 2026-01-14 10:00
busy lucia 2026-01-15 10:00 60
busy javier 2026-01-15 10:00 60
customer: fisioterapia mañana a las 10
  bot lists \"jue 15 ene, 10:00 ya está ocupado\" rows: jue 15 ene 09:00, jue 15 ene 11:00, jue 15 ene 11:30, jue 15 ene 12:00, jue 15 ene 12:30, jue 15 ene 13:00, jue 15 ene 16:00, jue 15 ene 16:30, jue 15 ene 17:00, jue 15 ene 17:30
",
    );
}

#[test]
fn es_hueco_perdido_al_confirmar_ofrece_alternativas() {
    Conversation::run(
        "
tenant clinic
now 2026-01-14 10:00
customer: fisioterapia mañana a las 10
outcome held
customer taps confirm
outcome slot gone
  bot lists \"Lo siento, jue 15 ene, 10:00 se acaba de ocupar\"
  stage choosing_time
",
    );
}

#[test]
fn es_reserva_caducada_avisa_y_vuelve_a_elegir() {
    Conversation::run(
        "
tenant clinic
now 2026-01-14 10:00
customer: fisioterapia mañana a las 10
outcome held
advance 10 min
timer hold expiry
  bot lists \"se acabó el tiempo para confirmar\"
  stage choosing_time
",
    );
}

#[test]
fn es_cancelar_pide_confirmacion_una_vez() {
    Conversation::run(&format!(
        "{CLINIC_BOOKED}
customer: quiero cancelar mi cita
  bot asks \"¿Cancelamos tu cita Fisioterapia, jue 15 ene, 10:00 con Lucía?\" [Sí, cancelar | Mantener]
customer: sí
  bot cancels booking
outcome cancelled
  bot says \"Tu cita Fisioterapia, jue 15 ene, 10:00 con Lucía está cancelada\"
  bot cancels timer cal_1:reminder:120
  bookings 0
"
    ));
}

#[test]
fn es_cambiar_la_cita_mantiene_la_anterior_hasta_confirmar() {
    Conversation::run(&format!(
        "{CLINIC_BOOKED}
customer: ¿puedo cambiar mi cita al lunes a las 17?
  bot holds 2026-01-19 17:00
  stage rescheduling
  bookings 1
outcome held
  bot asks \"¿Confirmas Fisioterapia, lun 19 ene, 17:00\"
customer taps confirm
  bot reschedules
outcome rescheduled cal_2
  bot says \"Hecho, tu cita ahora es Fisioterapia, lun 19 ene, 17:00\"
  bot cancels timer cal_1:reminder:120
  bot schedules reminder 1440 at 2026-01-18 17:00
"
    ));
}

#[test]
fn es_pedir_una_persona() {
    Conversation::run(
        "
tenant clinic
now 2026-01-14 10:00
customer: quiero hablar con una persona
  bot hands off requested
  bot says \"Te paso con una persona de Clínica Fisio Sol\"
customer: ¿hola?
  bot is silent
",
    );
}

#[test]
fn es_stop_en_una_conversacion_en_espanol_se_contesta_en_espanol() {
    Conversation::run(
        "
tenant clinic
now 2026-01-14 10:00
customer: hola, ¿tenéis cita mañana?
customer: STOP
  bot says \"No recibirás más mensajes nuestros\"
  stage opted_out
",
    );
}

#[test]
fn es_baja_y_alta() {
    Conversation::run(
        "
tenant clinic
now 2026-01-14 10:00
customer: BAJA
  bot says \"No recibirás más mensajes nuestros\"
  stage opted_out
customer: fisioterapia mañana a las 10
  bot is silent
customer: START
  bot says \"Volverás a recibir nuestros mensajes\"
",
    );
}

#[test]
fn es_cliente_que_vuelve() {
    Conversation::run(&format!(
        "{CLINIC_BOOKED}
now 2026-01-14 19:00
customer: hola
  bot says \"¡Hola de nuevo, Ana! Tu cita: Fisioterapia, jue 15 ene, 10:00 con Lucía.\"
"
    ));
}

#[test]
fn es_recordatorio_fuera_de_ventana_usa_plantilla() {
    Conversation::run(&format!(
        "{CLINIC_BOOKED}
now 2026-01-15 08:00
customer: gracias
  bot says \"¡De nada!\"
now 2026-01-16 12:00
timer follow up
  bot sends template seguimiento_visita (Ana | Fisioterapia)
"
    ));
}

#[test]
fn es_dos_malentendidos_pasan_a_una_persona() {
    Conversation::run(
        "
tenant clinic
now 2026-01-14 10:00
customer: patata azul volando
  bot says \"Perdona, no te he entendido\"
customer: xyzzy plugh
  bot hands off misunderstood
  bot says \"Te paso con una persona\"
",
    );
}

#[test]
fn en_confirming_a_lapsed_hold_never_books() {
    Conversation::run(
        "
tenant salon
now 2026-01-14 10:00
customer: haircut tomorrow at 5pm
outcome held
# The expiry timer is late: the customer confirms after the hold ran out.
advance 20 min
customer taps confirm
  bot releases hold
  bot lists \"the time to confirm ran out\"
  stage choosing_time
",
    );
}

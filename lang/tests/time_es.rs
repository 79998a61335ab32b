//! Spanish date/time phrases, table-driven. Expected values are local times in the zone.

mod common;

use common::{check_table, check_table_at};
use lang::Lang;

const MADRID_TUESDAY: &str = "2026-03-10T10:00:00+01:00";
const MADRID: &str = "Europe/Madrid";

#[test]
fn dias_semanas_y_meses() {
    check_table(
        Lang::Es,
        &[
            ("hoy", "I 2013-02-12T00:00 day"),
            ("mañana", "I 2013-02-13T00:00 day"),
            ("MAÑANA", "I 2013-02-13T00:00 day"),
            ("manana", "I 2013-02-13T00:00 day"),
            ("pasado mañana", "I 2013-02-14T00:00 day"),
            ("el lunes", "I 2013-02-18T00:00 day"),
            ("el miercoles", "I 2013-02-13T00:00 day"),
            ("este viernes", "I 2013-02-15T00:00 day"),
            ("el próximo martes", "I 2013-02-19T00:00 day"),
            ("el proximo jueves", "I 2013-02-14T00:00 day"),
            ("el jueves que viene", "I 2013-02-21T00:00 day"),
            (
                "el viernes de la semana que viene",
                "I 2013-02-22T00:00 day",
            ),
            ("el 3", "I 2013-03-03T00:00 day"),
            ("el día 20", "I 2013-02-20T00:00 day"),
            ("el 15 de marzo", "I 2013-03-15T00:00 day"),
            ("15 de enero", "I 2014-01-15T00:00 day"),
            ("el quince de marzo", "I 2013-03-15T00:00 day"),
            ("15/01", "I 2014-01-15T00:00 day"),
            ("15-1", "I 2014-01-15T00:00 day"),
            ("4/3", "I 2013-03-04T00:00 day"),
            ("2013-03-05", "I 2013-03-05T00:00 day"),
            ("esta semana", "I 2013-02-11T00:00 week"),
            ("la semana que viene", "I 2013-02-18T00:00 week"),
            ("la próxima semana", "I 2013-02-18T00:00 week"),
            ("el mes que viene", "I 2013-03-01T00:00 month"),
            ("en abril", "I 2013-04-01T00:00 month"),
            ("cualquier hora del viernes", "I 2013-02-15T00:00 day"),
        ],
    );
}

#[test]
fn horas() {
    check_table(
        Lang::Es,
        &[
            ("a las 5", "I 2013-02-12T17:00 hour"),
            ("a las cinco", "I 2013-02-12T17:00 hour"),
            ("a las 5 de la tarde", "I 2013-02-12T17:00 hour"),
            ("a las cinco de la tarde", "I 2013-02-12T17:00 hour"),
            ("a las 9 de la noche", "I 2013-02-12T21:00 hour"),
            ("a las 10 de la mañana", "I 2013-02-12T10:00 hour"),
            ("a las 10", "I 2013-02-12T10:00 hour"),
            ("a las 10 y media", "I 2013-02-12T10:30 minute"),
            ("diez y media", "I 2013-02-12T10:30 minute"),
            ("a las 5 y cuarto", "I 2013-02-12T17:15 minute"),
            ("a las 6 menos cuarto", "I 2013-02-12T17:45 minute"),
            ("a las 6 menos diez", "I 2013-02-12T17:50 minute"),
            ("a las 12", "I 2013-02-12T12:00 hour"),
            ("a mediodía", "I 2013-02-12T12:00 hour"),
            ("a medianoche", "I 2013-02-13T00:00 hour"),
            ("a la una", "I 2013-02-12T13:00 hour"),
            ("17h", "I 2013-02-12T17:00 hour"),
            ("10h", "I 2013-02-12T10:00 hour"),
            ("10:30", "I 2013-02-12T10:30 minute"),
            ("10.30", "I 2013-02-12T10:30 minute"),
            ("17:15", "I 2013-02-12T17:15 minute"),
            ("mañana a las 5", "I 2013-02-13T17:00 hour"),
            ("mañana a las 11", "I 2013-02-13T11:00 hour"),
            ("mañana a las 10 y media", "I 2013-02-13T10:30 minute"),
            ("el lunes a las 9", "I 2013-02-18T09:00 hour"),
            ("el viernes a las 4 y media", "I 2013-02-15T16:30 minute"),
            ("el 15 a las 10 y media", "I 2013-02-15T10:30 minute"),
            ("el 20 de febrero a las 17:00", "I 2013-02-20T17:00 minute"),
            ("hoy a las 6", "I 2013-02-12T18:00 hour"),
            ("sobre las 7", "I 2013-02-12T07:00 hour"),
            ("hacia las 8 de la tarde", "I 2013-02-12T20:00 hour"),
            ("tengo 5 hijos", "nothing"),
            ("somos 3", "nothing"),
        ],
    );
}

#[test]
fn partes_del_dia() {
    check_table(
        Lang::Es,
        &[
            ("esta mañana", "V 2013-02-12T04:00 2013-02-12T12:00 hour"),
            ("esta tarde", "V 2013-02-12T12:00 2013-02-12T19:00 hour"),
            ("esta noche", "V 2013-02-12T18:00 2013-02-13T00:00 hour"),
            ("por la tarde", "V 2013-02-12T12:00 2013-02-12T19:00 hour"),
            (
                "mañana por la mañana",
                "V 2013-02-13T04:00 2013-02-13T12:00 hour",
            ),
            (
                "mañana por la tarde",
                "V 2013-02-13T12:00 2013-02-13T19:00 hour",
            ),
            (
                "el jueves por la tarde",
                "V 2013-02-14T12:00 2013-02-14T19:00 hour",
            ),
            (
                "el lunes por la mañana",
                "V 2013-02-18T04:00 2013-02-18T12:00 hour",
            ),
            (
                "el viernes despues de comer",
                "V 2013-02-15T13:00 2013-02-15T17:00 hour",
            ),
            (
                "mañana a primera hora",
                "V 2013-02-13T04:00 2013-02-13T09:00 hour",
            ),
            ("este finde", "V 2013-02-15T18:00 2013-02-18T00:00 hour"),
            (
                "el fin de semana que viene",
                "V 2013-02-22T18:00 2013-02-25T00:00 hour",
            ),
            ("buenas tardes", "nothing"),
            ("buenas noches", "nothing"),
            ("llego tarde", "nothing"),
        ],
    );
}

#[test]
fn rangos_y_limites() {
    check_table(
        Lang::Es,
        &[
            (
                "entre las 4 y las 6",
                "V 2013-02-12T16:00 2013-02-12T18:00 hour",
            ),
            (
                "entre las 4 y 6",
                "V 2013-02-12T16:00 2013-02-12T18:00 hour",
            ),
            ("de 9 a 11", "V 2013-02-12T09:00 2013-02-12T11:00 hour"),
            (
                "de 5 a 7 de la tarde",
                "V 2013-02-12T17:00 2013-02-12T19:00 hour",
            ),
            (
                "desde las 10 hasta las 12",
                "V 2013-02-12T10:00 2013-02-12T12:00 hour",
            ),
            (
                "el jueves de 10 a 12",
                "V 2013-02-14T10:00 2013-02-14T12:00 hour",
            ),
            ("después de las 4", "V 2013-02-12T16:00 - hour"),
            ("despues de las 4", "V 2013-02-12T16:00 - hour"),
            ("a partir de las 6", "V 2013-02-12T18:00 - hour"),
            ("mañana a partir de las 5", "V 2013-02-13T17:00 - hour"),
            (
                "antes de las 12",
                "V 2013-02-12T04:30 2013-02-12T12:00 hour",
            ),
            ("hasta las 3", "V 2013-02-12T04:30 2013-02-12T15:00 hour"),
            (
                "del 13 al 15 de marzo",
                "V 2013-03-13T00:00 2013-03-16T00:00 day",
            ),
            (
                "del lunes al miércoles",
                "V 2013-02-18T00:00 2013-02-21T00:00 day",
            ),
        ],
    );
}

#[test]
fn tiempos_relativos() {
    check_table(
        Lang::Es,
        &[
            ("en 2 horas", "I 2013-02-12T06:30 minute"),
            ("en dos horas", "I 2013-02-12T06:30 minute"),
            ("en media hora", "I 2013-02-12T05:00 minute"),
            ("en una hora y media", "I 2013-02-12T06:00 minute"),
            ("en 20 minutos", "I 2013-02-12T04:50 minute"),
            (
                "dentro de media hora",
                "V 2013-02-12T04:30 2013-02-12T05:00 minute",
            ),
            (
                "dentro de 2 horas",
                "V 2013-02-12T04:30 2013-02-12T06:30 minute",
            ),
            ("en 3 días", "I 2013-02-15T04:00 hour"),
            ("en una semana", "I 2013-02-19T00:00 day"),
            ("ahora", "I 2013-02-12T04:30 minute"),
            ("ahora mismo", "I 2013-02-12T04:30 minute"),
            ("próximos 3 días", "V 2013-02-13T00:00 2013-02-16T00:00 day"),
        ],
    );
}

#[test]
fn otra_referencia_en_madrid() {
    check_table_at(
        Lang::Es,
        MADRID_TUESDAY,
        MADRID,
        &[
            ("mañana a las 5", "I 2026-03-11T17:00 hour"),
            (
                "mañana por la tarde",
                "V 2026-03-11T12:00 2026-03-11T19:00 hour",
            ),
            ("el jueves", "I 2026-03-12T00:00 day"),
            ("el martes que viene", "I 2026-03-17T00:00 day"),
            ("el miércoles que viene", "I 2026-03-18T00:00 day"),
            ("el 15", "I 2026-03-15T00:00 day"),
            ("el 3", "I 2026-04-03T00:00 day"),
            ("15/01", "I 2027-01-15T00:00 day"),
            ("a las 9 menos cuarto", "I 2026-03-10T20:45 minute"),
            ("hoy a las 6", "I 2026-03-10T18:00 hour"),
            ("de 10 a 12", "V 2026-03-10T10:00 2026-03-10T12:00 hour"),
            (
                "antes de las 12",
                "V 2026-03-10T10:00 2026-03-10T12:00 hour",
            ),
            (
                "este fin de semana",
                "V 2026-03-13T18:00 2026-03-16T00:00 hour",
            ),
            (
                "¿tenéis algo el jueves por la tarde?",
                "V 2026-03-12T12:00 2026-03-12T19:00 hour",
            ),
            ("mejor el 15 a las 10 y media", "I 2026-03-15T10:30 minute"),
            ("cancela lo de mañana", "I 2026-03-11T00:00 day"),
            ("ok mañana at 5", "I 2026-03-11T17:00 hour"),
            (
                "holaa se puede mañana a las cinco y media??",
                "I 2026-03-11T17:30 minute",
            ),
            ("el lunes 10:30", "I 2026-03-16T10:30 minute"),
            ("el viernes q viene a las 11", "I 2026-03-20T11:00 hour"),
        ],
    );
}

/// Tras "cambiar", "pasar" o "mover", "a"/"al" introduce la nueva hora, no el final de un
/// intervalo; los intervalos de verdad se mantienen.
#[test]
fn a_y_al_tras_un_cambio_son_destino() {
    check_table_at(
        Lang::Es,
        MADRID_TUESDAY,
        MADRID,
        &[
            (
                "¿puedo cambiar mi cita al lunes a las 17?",
                "I 2026-03-16T17:00 hour",
            ),
            (
                "pásame la cita al viernes a las 10",
                "I 2026-03-13T10:00 hour",
            ),
            ("mueve la cita al jueves", "I 2026-03-12T00:00 day"),
            ("cámbiamela a las 6", "I 2026-03-10T18:00 hour"),
            (
                "quiero mover la cita al 15 a las 10",
                "I 2026-03-15T10:00 hour",
            ),
            ("pásala al 20", "I 2026-03-20T00:00 day"),
            ("de 9 a 11", "V 2026-03-10T09:00 2026-03-10T11:00 hour"),
            ("hasta las 5", "V 2026-03-10T10:00 2026-03-10T17:00 hour"),
            (
                "del lunes al miércoles",
                "V 2026-03-16T00:00 2026-03-19T00:00 day",
            ),
        ],
    );
}

#[test]
fn palabras_parecidas_a_un_mes_no_son_meses() {
    check_table(
        Lang::Es,
        &[
            ("¿a qué hora abrís?", "nothing"),
            ("el mayor problema", "nothing"),
            ("en abril", "I 2013-04-01T00:00 month"),
        ],
    );
}

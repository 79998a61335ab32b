//! English date/time phrases, table-driven. Expected values are local times in the zone.

mod common;

use common::{check, check_table, check_table_at};
use lang::Lang;

const MADRID_TUESDAY: &str = "2026-03-10T10:00:00+01:00";
const MADRID: &str = "Europe/Madrid";

#[test]
fn days_weeks_and_months_at_duckling_reference() {
    check_table(
        Lang::En,
        &[
            ("today", "I 2013-02-12T00:00 day"),
            ("tomorrow", "I 2013-02-13T00:00 day"),
            ("tmrw", "I 2013-02-13T00:00 day"),
            ("2moro", "I 2013-02-13T00:00 day"),
            ("tommorrow", "I 2013-02-13T00:00 day"),
            ("TOMORROW", "I 2013-02-13T00:00 day"),
            ("day after tomorrow", "I 2013-02-14T00:00 day"),
            ("yesterday", "I 2013-02-11T00:00 day"),
            ("monday", "I 2013-02-18T00:00 day"),
            ("wensday", "I 2013-02-13T00:00 day"),
            ("thrusday", "I 2013-02-14T00:00 day"),
            ("on Tue", "I 2013-02-19T00:00 day"),
            ("this friday", "I 2013-02-15T00:00 day"),
            ("next friday", "I 2013-02-15T00:00 day"),
            ("friday after next", "I 2013-02-22T00:00 day"),
            ("friday next week", "I 2013-02-22T00:00 day"),
            ("last friday", "I 2013-02-08T00:00 day"),
            ("the 20th", "I 2013-02-20T00:00 day"),
            ("on the 3rd", "I 2013-03-03T00:00 day"),
            ("march 3rd", "I 2013-03-03T00:00 day"),
            ("3rd of march", "I 2013-03-03T00:00 day"),
            ("March 3, 2014", "I 2014-03-03T00:00 day"),
            ("2013-03-05", "I 2013-03-05T00:00 day"),
            ("3/5", "I 2013-03-05T00:00 day"),
            ("15/3", "I 2013-03-15T00:00 day"),
            ("this week", "I 2013-02-11T00:00 week"),
            ("next week", "I 2013-02-18T00:00 week"),
            ("week after next", "I 2013-02-25T00:00 week"),
            ("next month", "I 2013-03-01T00:00 month"),
            ("in april", "I 2013-04-01T00:00 month"),
            ("any time friday", "I 2013-02-15T00:00 day"),
        ],
    );
}

#[test]
fn times_of_day_at_duckling_reference() {
    check_table(
        Lang::En,
        &[
            ("at 5", "I 2013-02-12T17:00 hour"),
            ("at 5am", "I 2013-02-12T05:00 hour"),
            ("5 pm", "I 2013-02-12T17:00 hour"),
            ("5p.m.", "I 2013-02-12T17:00 hour"),
            ("at 10", "I 2013-02-12T10:00 hour"),
            ("at 12", "I 2013-02-12T12:00 hour"),
            ("at noon", "I 2013-02-12T12:00 hour"),
            ("midnight", "I 2013-02-13T00:00 hour"),
            ("10:30", "I 2013-02-12T10:30 minute"),
            ("10:30am", "I 2013-02-12T10:30 minute"),
            ("17:45", "I 2013-02-12T17:45 minute"),
            ("at 1730", "I 2013-02-12T17:30 minute"),
            ("quarter past 3", "I 2013-02-12T15:15 minute"),
            ("half past ten", "I 2013-02-12T10:30 minute"),
            ("quarter to five", "I 2013-02-12T16:45 minute"),
            ("ten to five", "I 2013-02-12T16:50 minute"),
            ("twenty past 4", "I 2013-02-12T16:20 minute"),
            ("half 4", "I 2013-02-12T16:30 minute"),
            ("at five", "I 2013-02-12T17:00 hour"),
            ("at eleven", "I 2013-02-12T11:00 hour"),
            ("5 in the afternoon", "I 2013-02-12T17:00 hour"),
            ("8 in the morning", "I 2013-02-12T08:00 hour"),
            ("9 tonight", "I 2013-02-12T21:00 hour"),
            ("tomorrow at 5", "I 2013-02-13T17:00 hour"),
            ("tomorrow at 10", "I 2013-02-13T10:00 hour"),
            ("tmrw 4pm", "I 2013-02-13T16:00 hour"),
            ("friday at 10:30", "I 2013-02-15T10:30 minute"),
            ("next Friday 10:30", "I 2013-02-15T10:30 minute"),
            ("monday 9am", "I 2013-02-18T09:00 hour"),
            ("at 3 on monday", "I 2013-02-18T15:00 hour"),
            ("on monday at 3", "I 2013-02-18T15:00 hour"),
            ("the 20th at 11", "I 2013-02-20T11:00 hour"),
            ("feb 20 at 4pm", "I 2013-02-20T16:00 hour"),
            ("4pm on the 20th", "I 2013-02-20T16:00 hour"),
            ("can you do 4:15 tomorrow?", "I 2013-02-13T16:15 minute"),
            ("is 6 ok", "nothing"),
            ("5 people", "nothing"),
            ("i have 3 kids", "nothing"),
        ],
    );
}

#[test]
fn parts_of_day_and_weekends() {
    check_table(
        Lang::En,
        &[
            ("this morning", "V 2013-02-12T04:00 2013-02-12T12:00 hour"),
            ("in the morning", "V 2013-02-12T04:00 2013-02-12T12:00 hour"),
            ("this afternoon", "V 2013-02-12T12:00 2013-02-12T19:00 hour"),
            ("tonight", "V 2013-02-12T18:00 2013-02-13T00:00 hour"),
            (
                "tomorrow morning",
                "V 2013-02-13T04:00 2013-02-13T12:00 hour",
            ),
            (
                "tomorrow evening",
                "V 2013-02-13T18:00 2013-02-14T00:00 hour",
            ),
            (
                "friday afternoon",
                "V 2013-02-15T12:00 2013-02-15T19:00 hour",
            ),
            (
                "thursday after lunch",
                "V 2013-02-14T13:00 2013-02-14T17:00 hour",
            ),
            (
                "monday lunchtime",
                "V 2013-02-18T12:00 2013-02-18T14:00 hour",
            ),
            ("this weekend", "V 2013-02-15T18:00 2013-02-18T00:00 hour"),
            ("next weekend", "V 2013-02-22T18:00 2013-02-25T00:00 hour"),
            ("good morning", "nothing"),
            ("good evening!", "nothing"),
        ],
    );
}

#[test]
fn ranges_and_bounds() {
    check_table(
        Lang::En,
        &[
            (
                "between 3 and 5",
                "V 2013-02-12T15:00 2013-02-12T18:00 hour",
            ),
            (
                "between 3 and 5pm tomorrow",
                "V 2013-02-13T15:00 2013-02-13T18:00 hour",
            ),
            ("from 9 to 11", "V 2013-02-12T09:00 2013-02-12T12:00 hour"),
            (
                "from 9 to 11 on friday",
                "V 2013-02-15T09:00 2013-02-15T12:00 hour",
            ),
            (
                "friday from 2 to 4",
                "V 2013-02-15T14:00 2013-02-15T17:00 hour",
            ),
            ("10am - 12", "V 2013-02-12T10:00 2013-02-12T13:00 hour"),
            ("10am-2pm", "V 2013-02-12T10:00 2013-02-12T15:00 hour"),
            (
                "9:30 to 10:15",
                "V 2013-02-12T09:30 2013-02-12T10:16 minute",
            ),
            ("after 4", "V 2013-02-12T16:00 - hour"),
            ("after 4pm on friday", "V 2013-02-15T16:00 - hour"),
            ("tmrw after 4", "V 2013-02-13T16:00 - hour"),
            ("anytime after 6", "V 2013-02-12T18:00 - hour"),
            ("before 11am", "V 2013-02-12T04:30 2013-02-12T11:00 hour"),
            (
                "before noon on friday",
                "V 2013-02-15T00:00 2013-02-15T12:00 hour",
            ),
            ("until 3", "V 2013-02-12T04:30 2013-02-12T15:00 hour"),
            (
                "from march 3 to march 5",
                "V 2013-03-03T00:00 2013-03-06T00:00 day",
            ),
            (
                "monday to wednesday",
                "V 2013-02-18T00:00 2013-02-21T00:00 day",
            ),
        ],
    );
}

#[test]
fn relative_times() {
    check_table(
        Lang::En,
        &[
            ("in 2 hours", "I 2013-02-12T06:30 minute"),
            ("in two hours", "I 2013-02-12T06:30 minute"),
            ("in 45 minutes", "I 2013-02-12T05:15 minute"),
            ("in 45 mins", "I 2013-02-12T05:15 minute"),
            ("in an hour", "I 2013-02-12T05:30 minute"),
            ("in an hour and a half", "I 2013-02-12T06:00 minute"),
            ("in half an hour", "I 2013-02-12T05:00 minute"),
            ("3 hours from now", "I 2013-02-12T07:30 minute"),
            ("in 3 days", "I 2013-02-15T04:00 hour"),
            ("in 2 weeks", "I 2013-02-26T00:00 day"),
            ("in a month", "I 2013-03-12T00:00 day"),
            ("now", "I 2013-02-12T04:30 minute"),
            ("right now", "I 2013-02-12T04:30 minute"),
            ("asap", "I 2013-02-12T04:30 minute"),
            ("next 2 days", "V 2013-02-13T00:00 2013-02-15T00:00 day"),
        ],
    );
}

#[test]
fn a_different_reference_time_in_madrid() {
    check_table_at(
        Lang::En,
        MADRID_TUESDAY,
        MADRID,
        &[
            ("tomorrow at 5", "I 2026-03-11T17:00 hour"),
            ("at 5", "I 2026-03-10T17:00 hour"),
            ("at 11", "I 2026-03-10T11:00 hour"),
            ("at 9", "I 2026-03-10T21:00 hour"),
            ("9am", "I 2026-03-11T09:00 hour"),
            ("next friday", "I 2026-03-13T00:00 day"),
            ("this tuesday", "I 2026-03-10T00:00 day"),
            ("tuesday", "I 2026-03-17T00:00 day"),
            ("the 3rd", "I 2026-04-03T00:00 day"),
            ("jan 15th", "I 2027-01-15T00:00 day"),
            ("tonight", "V 2026-03-10T18:00 2026-03-11T00:00 hour"),
            ("in 2 hours", "I 2026-03-10T12:00 minute"),
            ("in 3 days", "I 2026-03-13T10:00 hour"),
            ("this weekend", "V 2026-03-13T18:00 2026-03-16T00:00 hour"),
            ("from 9 to 11", "V 2026-03-10T09:00 2026-03-10T12:00 hour"),
            ("before noon", "V 2026-03-10T10:00 2026-03-10T12:00 hour"),
            ("after 4", "V 2026-03-10T16:00 - hour"),
        ],
    );
}

#[test]
fn whatsapp_style_english() {
    check(
        MADRID_TUESDAY,
        MADRID,
        "can u do tmrw after 4",
        "V 2026-03-11T16:00 - hour",
    );
    check(
        MADRID_TUESDAY,
        MADRID,
        "CAN I COME FRIDAY AT 3",
        "I 2026-03-13T15:00 hour",
    );
    check(
        MADRID_TUESDAY,
        MADRID,
        "hiii can i come tomorow at 5 pls 🙏",
        "I 2026-03-11T17:00 hour",
    );
    check(
        MADRID_TUESDAY,
        MADRID,
        "wed 4pm?",
        "I 2026-03-11T16:00 hour",
    );
    check(
        MADRID_TUESDAY,
        MADRID,
        "is friday morning free",
        "V 2026-03-13T04:00 2026-03-13T12:00 hour",
    );
    check(MADRID_TUESDAY, MADRID, "thanks see you then", "nothing");
}

/// After a change verb, "to <time>" is where the booking goes, not an upper bound; genuine
/// ranges keep their reading.
#[test]
fn to_names_a_target_unless_a_range_opens() {
    check_table_at(
        Lang::En,
        MADRID_TUESDAY,
        MADRID,
        &[
            (
                "move my appointment to Friday at 11am",
                "I 2026-03-13T11:00 hour",
            ),
            (
                "can I change my appointment to friday 11am?",
                "I 2026-03-13T11:00 hour",
            ),
            ("reschedule to friday at 11", "I 2026-03-13T11:00 hour"),
            ("can you push it to 4pm", "I 2026-03-10T16:00 hour"),
            ("switch me to tomorrow at 10am", "I 2026-03-11T10:00 hour"),
            ("move it to 3", "I 2026-03-10T15:00 hour"),
            ("change it to monday", "I 2026-03-16T00:00 day"),
            ("move it tomorrow to 5pm", "I 2026-03-11T17:00 hour"),
            ("move it to 3 people", "nothing"),
            ("from 9 to 11", "V 2026-03-10T09:00 2026-03-10T12:00 hour"),
            ("10am to 12", "V 2026-03-10T10:00 2026-03-10T13:00 hour"),
            (
                "friday from 9 to 11",
                "V 2026-03-13T09:00 2026-03-13T12:00 hour",
            ),
            (
                "from 9 in the morning to 11",
                "V 2026-03-10T09:00 2026-03-10T12:00 hour",
            ),
            ("until 5", "V 2026-03-10T10:00 2026-03-10T17:00 hour"),
            (
                "monday to wednesday",
                "V 2026-03-16T00:00 2026-03-19T00:00 day",
            ),
        ],
    );
}

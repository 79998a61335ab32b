//! Free slots: the trait the engine asks, and the built-in calendar's maths.
//!
//! A slot starts on the tenant's grid (every `slot_step_minutes` from the opening of each
//! period, in local wall-clock time), lies wholly inside one opening period as a wall clock
//! experiences it, starts no earlier than the minimum lead time and before the booking horizon,
//! and fits on a resource whose overlapping busy intervals stay below its capacity for the
//! appointment plus its buffer. Local times that do not exist (spring forward) are never
//! offered; local times that occur twice (fall back) are offered once, at the earlier instant.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::config::{OpenPeriod, Tenant};

/// A bookable interval on one resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Slot {
    /// The service this slot was computed for (durations differ per service).
    pub service: String,
    /// The person or room that would serve it; holds are taken per resource.
    pub resource: String,
    /// When the appointment starts.
    pub start: DateTime<Utc>,
    /// When the appointment ends, without the clean-up buffer.
    pub end: DateTime<Utc>,
}

/// What the engine may ask about availability. The worker implements it from data fetched
/// before the step (the built-in calendar's bookings and holds, or Cal.com's slots), and
/// fetches only for steps that ask: a step first runs on a view that records being asked, and
/// runs again once the data is in. That is sound because a step is pure.
///
/// The engine only asks for ranges within `[now, now + horizon_days]` of the tenant, so a
/// prefetch of that range answers every question.
pub trait AvailabilityView {
    /// Free slots for `service` starting in `[from, to)`, ordered by start.
    fn free_slots(&self, service: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Slot>;

    /// False when the calendar did not answer: its slots are then unknown, not absent, and
    /// the engine must not tell the customer that nothing is free.
    fn reachable(&self) -> bool;
}

/// Time a resource is not available: a booking (including its buffer) or another
/// conversation's hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Busy {
    /// The resource that is occupied.
    pub resource: String,
    /// First occupied instant.
    pub start: DateTime<Utc>,
    /// First instant free again; includes the booked service's buffer.
    pub end: DateTime<Utc>,
}

/// The built-in calendar: opening hours minus busy time, per resource.
#[derive(Debug, Clone)]
pub struct BuiltinAvailability<'a> {
    /// Opening hours, services, staff, lead time and horizon come from here.
    tenant: &'a Tenant,
    /// Lead time and horizon are measured from this instant.
    now: DateTime<Utc>,
    /// Per resource (same order as `tenant.staff`), the sorted disjoint intervals in which it
    /// is at capacity, as (start, end) in Unix seconds.
    saturated: Vec<Vec<(i64, i64)>>,
}

impl<'a> BuiltinAvailability<'a> {
    /// Busy intervals on resources the tenant does not have are ignored.
    pub fn new(tenant: &'a Tenant, now: DateTime<Utc>, busy: &[Busy]) -> Self {
        let saturated = tenant
            .staff
            .iter()
            .map(|resource| {
                let intervals = busy
                    .iter()
                    .filter(|b| b.resource == resource.id && b.end > b.start)
                    .map(|b| (b.start.timestamp(), b.end.timestamp()));
                saturated_intervals(intervals, resource.capacity)
            })
            .collect();
        BuiltinAvailability {
            tenant,
            now,
            saturated,
        }
    }

    /// Calls `found(resource index, start)` for each free slot in start order. The allocation
    /// free core of [`AvailabilityView::free_slots`].
    pub fn for_each_free(
        &self,
        service_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        mut found: impl FnMut(usize, DateTime<Utc>),
    ) {
        let tenant = self.tenant;
        let Some(service) = tenant.service(service_id) else {
            return;
        };
        let lower = from.max(self.now + Duration::minutes(i64::from(tenant.min_lead_minutes)));
        let upper = to.min(self.now + Duration::days(i64::from(tenant.horizon_days)));
        if lower >= upper {
            return;
        }
        let resources: Vec<usize> = tenant
            .staff
            .iter()
            .enumerate()
            .filter(|(_, r)| r.performs(service_id))
            .map(|(index, _)| index)
            .collect();
        let mut cursors = vec![0usize; tenant.staff.len()];
        let appointment = i64::from(service.minutes) * 60;
        let occupied = appointment + i64::from(service.buffer_minutes) * 60;
        let tz = tenant.time_zone;
        // A local day can start up to a day away from the UTC one; widen by a day either side.
        let first_day = lower
            .with_timezone(&tz)
            .date_naive()
            .pred_opt()
            .unwrap_or(NaiveDate::MIN);
        let last_day = upper
            .with_timezone(&tz)
            .date_naive()
            .succ_opt()
            .unwrap_or(NaiveDate::MAX);
        let (lower_s, upper_s) = (lower.timestamp(), upper.timestamp());

        let mut check = |start: i64| {
            if start < lower_s || start >= upper_s {
                return;
            }
            for &index in &resources {
                let saturated = &self.saturated[index];
                let cursor = &mut cursors[index];
                while *cursor < saturated.len() && saturated[*cursor].1 <= start {
                    *cursor += 1;
                }
                let blocked = *cursor < saturated.len() && saturated[*cursor].0 < start + occupied;
                if !blocked && let Some(at) = DateTime::from_timestamp(start, 0) {
                    found(index, at);
                }
            }
        };

        let step = i64::from(tenant.slot_step_minutes.max(1)) * 60;
        for day in first_day.iter_days().take_while(|d| *d <= last_day) {
            if tenant.closed_dates.contains(&day) {
                continue;
            }
            for period in tenant.opening(chrono::Datelike::weekday(&day)) {
                let Some(close) = close_instant(tz, day, period.end_minute) else {
                    continue;
                };
                let close = close.timestamp();
                if close <= lower_s {
                    continue;
                }
                if let Some(open) = fixed_offset_open(tz, day, period, close) {
                    // No clock change inside the period: the grid is evenly spaced in UTC.
                    let mut start = open;
                    if start < lower_s {
                        start += (lower_s - start + step - 1) / step * step;
                    }
                    while start + appointment <= close && start < upper_s {
                        check(start);
                        start += step;
                    }
                } else {
                    let mut minute = period.start_minute;
                    while minute < period.end_minute {
                        if let Some(start) = earliest(tz, local(day, minute)) {
                            let start = start.timestamp();
                            if start + appointment <= close
                                && wall_clock_inside(tz, day, period, start, start + appointment)
                            {
                                check(start);
                            }
                        }
                        minute += tenant.slot_step_minutes.max(1);
                    }
                }
            }
        }
    }

    /// Whether `start` is an opening-hours grid start for `service` that is within lead time
    /// and horizon, ignoring bookings. Lets the engine tell "closed then" from "taken".
    pub fn is_bookable_ignoring_busy(&self, service: &str, start: DateTime<Utc>) -> bool {
        let empty = BuiltinAvailability {
            tenant: self.tenant,
            now: self.now,
            saturated: vec![Vec::new(); self.tenant.staff.len()],
        };
        let mut hit = false;
        empty.for_each_free(service, start, start + Duration::seconds(1), |_, _| {
            hit = true
        });
        hit
    }
}

impl AvailabilityView for BuiltinAvailability<'_> {
    fn free_slots(&self, service: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Slot> {
        let Some(minutes) = self.tenant.service(service).map(|s| s.minutes) else {
            return Vec::new();
        };
        let mut slots = Vec::new();
        self.for_each_free(service, from, to, |index, start| {
            slots.push(Slot {
                service: service.to_string(),
                resource: self.tenant.staff[index].id.clone(),
                start,
                end: start + Duration::minutes(i64::from(minutes)),
            });
        });
        slots
    }

    fn reachable(&self) -> bool {
        true
    }
}

/// Slots within opening hours, lead time and horizon, ignoring every booking: the tenant's
/// theoretical grid. Used to tell a closed time from a taken one.
pub fn opening_slots(
    tenant: &Tenant,
    now: DateTime<Utc>,
    service: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Slot> {
    BuiltinAvailability::new(tenant, now, &[]).free_slots(service, from, to)
}

fn local(day: NaiveDate, minute: u32) -> NaiveDateTime {
    day.and_time(chrono::NaiveTime::MIN) + Duration::minutes(i64::from(minute))
}

fn earliest(tz: Tz, at: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&at) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

/// The first instant at which the local clock reads `minute` or later on `day`: the period's
/// real end. A close time inside a spring-forward gap ends the period when the gap ends.
fn close_instant(tz: Tz, day: NaiveDate, minute: u32) -> Option<DateTime<Utc>> {
    let at = local(day, minute);
    // Gaps are at most a few hours in every zone; searching a day covers them with room.
    (0..=24 * 60)
        .step_by(15)
        .find_map(|shift| earliest(tz, at + Duration::minutes(shift)))
}

/// The opening instant when the UTC offset is the same throughout the period, else None.
fn fixed_offset_open(tz: Tz, day: NaiveDate, period: &OpenPeriod, close: i64) -> Option<i64> {
    let open = match tz.from_local_datetime(&local(day, period.start_minute)) {
        LocalResult::Single(t) => t.timestamp(),
        _ => return None,
    };
    let wall = i64::from(period.end_minute - period.start_minute) * 60;
    (close - open == wall).then_some(open)
}

/// Whether every minute of `[start, end)` (Unix seconds) reads, on a wall clock in `tz`, as
/// `day` within `period`. Only needed on days whose clock changes inside the period: the local
/// time is monotonic except at the change, so checking both ends and both sides of the change
/// covers every minute.
fn wall_clock_inside(tz: Tz, day: NaiveDate, period: &OpenPeriod, start: i64, end: i64) -> bool {
    let reads_inside = |at: i64| {
        DateTime::from_timestamp(at, 0).is_some_and(|at| {
            let wall = at.with_timezone(&tz).naive_local();
            let minute = (wall - local(day, 0)).num_minutes();
            wall.date() == day
                && minute >= i64::from(period.start_minute)
                && minute < i64::from(period.end_minute)
        })
    };
    let offset_at = |at: i64| {
        DateTime::from_timestamp(at, 0)
            .map(|at| at.with_timezone(&tz).offset().fix().local_minus_utc())
    };
    let last = end - 60;
    if !reads_inside(start) || !reads_inside(last) {
        return false;
    }
    if offset_at(start) == offset_at(last) {
        return true;
    }
    // Find the first minute with the new offset, then check the minutes either side of it.
    let (mut before, mut after) = (start, last);
    while after - before > 60 {
        let middle = before + (after - before) / 120 * 60;
        if offset_at(middle) == offset_at(start) {
            before = middle;
        } else {
            after = middle;
        }
    }
    reads_inside(before) && reads_inside(after)
}

/// Sorted, disjoint intervals during which at least `capacity` busy intervals overlap.
fn saturated_intervals(
    intervals: impl Iterator<Item = (i64, i64)>,
    capacity: u32,
) -> Vec<(i64, i64)> {
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for (start, end) in intervals {
        edges.push((start, 1));
        edges.push((end, -1));
    }
    // Ends before starts at the same instant: back-to-back bookings do not overlap.
    edges.sort_unstable();
    let capacity = i32::try_from(capacity).unwrap_or(i32::MAX);
    let mut saturated: Vec<(i64, i64)> = Vec::new();
    let mut depth = 0;
    let mut since = 0;
    for (at, delta) in edges {
        let was_full = depth >= capacity;
        depth += delta;
        let is_full = depth >= capacity;
        if !was_full && is_full {
            since = at;
        } else if was_full && !is_full && at > since {
            match saturated.last_mut() {
                Some(last) if last.1 >= since => last.1 = at,
                _ => saturated.push((since, at)),
            }
        }
    }
    saturated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturation_respects_capacity_and_touching_edges() {
        let busy = [(0, 10), (5, 15), (10, 20)];
        assert_eq!(saturated_intervals(busy.into_iter(), 1), vec![(0, 20)]);
        assert_eq!(saturated_intervals(busy.into_iter(), 2), vec![(5, 15)]);
        assert_eq!(
            saturated_intervals(busy.into_iter(), 3),
            Vec::<(i64, i64)>::new()
        );
        assert_eq!(
            saturated_intervals([(0, 10), (10, 20)].into_iter(), 2),
            Vec::<(i64, i64)>::new()
        );
    }
}

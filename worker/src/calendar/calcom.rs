//! Cal.com API v2 as a calendar.

use chrono::{DateTime, Utc};
use engine::{Slot, Tenant};
use shared::calcom::CalcomClient;

use super::{BookResult, CalendarError, NewBooking};

#[derive(Clone)]
pub struct CalcomCalendar {
    client: CalcomClient,
}

impl CalcomCalendar {
    pub fn new(client: CalcomClient) -> Self {
        Self { client }
    }

    pub async fn slots(
        &self,
        _tenant: &Tenant,
        _from: DateTime<Utc>,
        _to: DateTime<Utc>,
    ) -> Result<Vec<Slot>, CalendarError> {
        let _ = &self.client;
        todo!("being written")
    }

    pub async fn book(
        &self,
        _tenant: &Tenant,
        _request: &NewBooking<'_>,
    ) -> Result<BookResult, CalendarError> {
        todo!("being written")
    }

    pub async fn cancel(&self, _tenant: &Tenant, _booking_id: &str) -> Result<bool, CalendarError> {
        todo!("being written")
    }

    pub async fn reschedule(
        &self,
        _tenant: &Tenant,
        _booking_id: &str,
        _request: &NewBooking<'_>,
    ) -> Result<BookResult, CalendarError> {
        todo!("being written")
    }
}

//! Calendar months and the world's timeline: which months are invoiced and which are still
//! unbilled as of the world's date.

use chrono::{Datelike, Days, NaiveDate};

/// The day of the following month on which a month is invoiced (spec §10.2: by the 8th).
pub const INVOICE_DAY: u32 = 7;

/// A calendar month: a new-commerce billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// Calendar year.
    pub year: i32,
    /// Month of the year, 1-12.
    pub month: u32,
}

impl Month {
    /// The month containing a date.
    pub fn of(date: NaiveDate) -> Month {
        Month { year: date.year(), month: date.month() }
    }

    /// The first day.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    /// The last day.
    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().unwrap_or(NaiveDate::MIN)
    }

    /// Number of days.
    pub fn days(self) -> u32 {
        self.last_day().day()
    }

    /// The following month.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month { year: self.year + 1, month: 1 }
        } else {
            Month { year: self.year, month: self.month + 1 }
        }
    }

    /// The preceding month.
    pub fn prev(self) -> Month {
        if self.month == 1 {
            Month { year: self.year - 1, month: 12 }
        } else {
            Month { year: self.year, month: self.month - 1 }
        }
    }

    /// `n` months later (or earlier when negative).
    pub fn plus(self, n: i32) -> Month {
        let index = self.year * 12 + (self.month as i32 - 1) + n;
        Month { year: index.div_euclid(12), month: index.rem_euclid(12) as u32 + 1 }
    }

    /// The day `day` of the month, clamped to its last day.
    pub fn day(self, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, day.clamp(1, self.days())).unwrap_or(NaiveDate::MIN)
    }

    /// `YYYY-MM`.
    pub fn label(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }
}

/// Which months the world bills, as of its date.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The world's "today": unbilled data runs up to the day before.
    pub as_of: NaiveDate,
    /// Invoiced months, oldest first.
    pub billed: Vec<Month>,
    /// The month `period=previous` serves, when it is not invoiced yet.
    pub previous_unbilled: Option<Month>,
    /// The month in progress (`period=current`).
    pub current: Month,
    /// First day on which anything in the world was bought.
    pub history_start: NaiveDate,
}

impl Timeline {
    /// The timeline with `months` invoiced months as of a date.
    pub fn new(as_of: NaiveDate, months: u32) -> Timeline {
        let current = Month::of(as_of);
        let previous_invoiced = as_of.day() > INVOICE_DAY;
        let last_billed = if previous_invoiced { current.prev() } else { current.plus(-2) };
        let billed: Vec<Month> = (0..months as i32).rev().map(|k| last_billed.plus(-k)).collect();
        let first = billed.first().copied().unwrap_or(current);
        Timeline {
            as_of,
            billed,
            previous_unbilled: (!previous_invoiced).then(|| current.prev()),
            current,
            history_start: first.plus(-10).first_day(),
        }
    }

    /// The last day anything can be charged for (the day before `as_of`).
    pub fn last_usage_day(&self) -> NaiveDate {
        self.as_of.pred_opt().unwrap_or(self.as_of)
    }

    /// The date an invoice for a month is issued.
    pub fn invoice_date(month: Month) -> NaiveDate {
        month.next().day(INVOICE_DAY)
    }
}

/// `date` plus `n` days.
pub fn add_days(date: NaiveDate, n: u64) -> NaiveDate {
    date.checked_add_days(Days::new(n)).unwrap_or(date)
}

/// `date` plus `years` years, minus one day (the last day of a term that starts on `date`).
pub fn term_end(date: NaiveDate, years: i32) -> NaiveDate {
    let month = Month::of(date).plus(years * 12);
    month.day(date.day()).pred_opt().unwrap_or(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn before_the_invoice_day_the_previous_month_is_still_unbilled() {
        let t = Timeline::new(d(2025, 3, 5), 3);
        assert_eq!(t.billed.iter().map(|m| m.label()).collect::<Vec<_>>(), ["2024-11", "2024-12", "2025-01"]);
        assert_eq!(t.previous_unbilled.map(Month::label).as_deref(), Some("2025-02"));
        assert_eq!(t.current.label(), "2025-03");
    }

    #[test]
    fn after_the_invoice_day_the_previous_month_is_billed() {
        let t = Timeline::new(d(2025, 3, 20), 2);
        assert_eq!(t.billed.iter().map(|m| m.label()).collect::<Vec<_>>(), ["2025-01", "2025-02"]);
        assert_eq!(t.previous_unbilled, None);
    }

    #[test]
    fn month_arithmetic_crosses_years() {
        let m = Month { year: 2025, month: 1 };
        assert_eq!(m.prev().label(), "2024-12");
        assert_eq!(m.plus(-13).label(), "2023-12");
        assert_eq!(m.plus(12).label(), "2026-01");
        assert_eq!(Month { year: 2024, month: 2 }.days(), 29);
        assert_eq!(term_end(d(2024, 2, 29), 1), d(2025, 2, 27));
        assert_eq!(term_end(d(2024, 3, 15), 1), d(2025, 3, 14));
    }
}

//! The `lock { .. }` block of a policy's `dr` block: EBS Snapshot Lock on
//! every copy, with EBS's own bounds checked here (LockDuration 1 to 36,500
//! days, CoolOffPeriod 1 to 72 hours and only in compliance mode), so that
//! a lock AWS would refuse is an error in the file, not a failed copy.

use super::{only_block, start, Decoder, Scope};
use crate::config::{DrLock, LockMode, MAX_COOL_OFF_HOURS, MAX_LOCK_DAYS, MIN_LOCK_DAYS};
use crate::duration::split_number_unit;

const LOCK_ATTRS: &[&str] = &["mode", "duration", "cool_off"];

/// The dr block's one `lock` block, if it has one and it is valid.
pub(super) fn decode_lock(d: &mut Decoder, s: &Scope<'_>) -> Option<DrLock> {
    let src = s.src;
    let first = only_block(d, s, "lock")?;
    d.no_labels(src, first);
    let l = d.scope(
        src,
        &first.body,
        format!("the lock block of {}", s.what),
        start(&first.ident),
        LOCK_ATTRS,
        &[],
    );
    if !l.attrs.contains_key("mode") {
        d.error(
            src,
            start(&first.ident),
            "Missing required attribute",
            format!(
                "{} must set \"mode\" (\"governance\" or \"compliance\")",
                l.what
            ),
        );
    }
    if !l.attrs.contains_key("duration") {
        d.error(
            src,
            start(&first.ident),
            "Missing required attribute",
            format!("{} must set \"duration\", as in \"30d\"", l.what),
        );
    }
    let mode = match d.choice(&l, "mode", &["governance", "compliance"]) {
        Some(0) => Some(LockMode::Governance),
        Some(_) => Some(LockMode::Compliance),
        None => None,
    };
    let days = lock_days(d, &l);
    let cool_off = cool_off_hours(d, &l);
    if mode == Some(LockMode::Governance) && l.attrs.contains_key("cool_off") {
        d.error(
            src,
            start(&l.attrs["cool_off"].key),
            "Invalid attribute",
            format!(
                "\"cool_off\" in {} applies to mode = \"compliance\" only: a governance lock has no cooling-off period",
                l.what
            ),
        );
        return None;
    }
    let lock = DrLock {
        mode: mode?,
        days: days?,
        cool_off_hours: cool_off?.filter(|h| *h > 0),
    };
    warn_irreversible(d, &l, start(&first.ident), &lock);
    Some(lock)
}

/// Past this many days a lock is worth a second look in review: every copy
/// is kept, and paid for, at least that long.
const LONG_LOCK_DAYS: u32 = 365;

/// A compliance lock binds everyone, AWS support and the account's root
/// included, from its first hour unless a cooling-off period leaves time
/// to undo a mistake; a long one keeps every copy for years. Neither is
/// wrong, both are worth saying where they are written.
fn warn_irreversible(d: &mut Decoder, l: &Scope<'_>, at: usize, lock: &DrLock) {
    if lock.mode == LockMode::Compliance && lock.cool_off_hours.is_none() {
        d.warning(
            l.src,
            at,
            "Irreversible lock",
            format!(
                "{}: a compliance lock cannot be removed or shortened by anyone, the account's root user included, and each copy stays (and is billed) for {} days; \"cool_off\" (up to 72h) leaves a window in which a mistaken lock can still be undone",
                l.what, lock.days
            ),
        );
    } else if lock.days > LONG_LOCK_DAYS {
        d.warning(
            l.src,
            at,
            "Long lock",
            format!(
                "{}: every DR copy is kept, and billed, for at least {} days, whatever the policy's generations say",
                l.what, lock.days
            ),
        );
    }
}

/// `duration`: whole days (`"30d"`, `"4w"`, `"720h"`), 1 to 36,500 of them.
fn lock_days(d: &mut Decoder, l: &Scope<'_>) -> Option<u32> {
    let (text, at) = d.string(l, "duration", false)?;
    let secs = match split_number_unit(text.trim()) {
        Some((n, "d")) => n.checked_mul(86_400),
        Some((n, "w")) => n.checked_mul(7 * 86_400),
        Some((n, "h")) => n.checked_mul(3600),
        _ => None,
    };
    let Some(secs) = secs else {
        d.error(
            l.src,
            at,
            "Invalid duration",
            format!(
                "\"duration\" in {} must be a whole number of days (d), weeks (w) or hours (h), as in \"30d\", not {text:?}",
                l.what
            ),
        );
        return None;
    };
    if secs % 86_400 != 0 {
        d.error(
            l.src,
            at,
            "Invalid duration",
            format!(
                "\"duration\" in {} is {text:?}: EBS locks snapshots for whole days",
                l.what
            ),
        );
        return None;
    }
    let days = secs / 86_400;
    if days < u64::from(MIN_LOCK_DAYS) || days > u64::from(MAX_LOCK_DAYS) {
        d.error(
            l.src,
            at,
            "Value out of range",
            format!(
                "\"duration\" in {} is {text:?}: EBS locks a snapshot for {MIN_LOCK_DAYS} to {MAX_LOCK_DAYS} days",
                l.what
            ),
        );
        return None;
    }
    Some(days as u32)
}

/// `cool_off`: whole hours (`"24h"`, `"3d"`), 0 to 72. `Some(None)` when
/// not set; `None` when invalid.
fn cool_off_hours(d: &mut Decoder, l: &Scope<'_>) -> Option<Option<u32>> {
    let Some((text, at)) = d.string(l, "cool_off", false) else {
        return Some(None);
    };
    let hours = match split_number_unit(text.trim()) {
        Some((n, "h")) => Some(n),
        Some((n, "d")) => n.checked_mul(24),
        _ => None,
    };
    let Some(hours) = hours else {
        d.error(
            l.src,
            at,
            "Invalid duration",
            format!(
                "\"cool_off\" in {} must be a whole number of hours (h) or days (d), as in \"24h\", not {text:?}",
                l.what
            ),
        );
        return None;
    };
    if hours > u64::from(MAX_COOL_OFF_HOURS) {
        d.error(
            l.src,
            at,
            "Value out of range",
            format!(
                "\"cool_off\" in {} is {text:?}: EBS allows a cooling-off period of at most {MAX_COOL_OFF_HOURS} hours",
                l.what
            ),
        );
        return None;
    }
    Some(Some(hours as u32))
}

//! SQLite result codes that are storage faults: the database cannot take writes now,
//! for a reason outside the host (a full disk, a read-only file system, a lock held by
//! another process, an I/O error).

use crate::store::Fault;
use sqlx::error::DatabaseError;

/// The fault an SQLite error reports, if it is one.
pub(crate) fn fault_of(e: &sqlx::Error) -> Option<Fault> {
    let sqlx::Error::Database(db) = e else {
        return None;
    };
    let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    let code = sqlite.code()?.parse::<i32>().ok()?;
    of_code(code)
}

/// The fault an SQLite result code (primary or extended) names.
fn of_code(code: i32) -> Option<Fault> {
    // A primary code is the low byte of an extended one.
    match code & 0xff {
        13 => Some(Fault::DiskFull),
        8 => Some(Fault::ReadOnly),
        5 | 6 => Some(Fault::Busy),
        10 => Some(Fault::Io),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_codes_name_their_faults() {
        // SQLITE_FULL, SQLITE_READONLY_DBMOVED, SQLITE_BUSY, SQLITE_LOCKED,
        // SQLITE_IOERR_WRITE, SQLITE_CONSTRAINT_UNIQUE.
        let codes = [13, 1032, 5, 6, 778, 2067];
        assert_eq!(
            codes.map(of_code),
            [
                Some(Fault::DiskFull),
                Some(Fault::ReadOnly),
                Some(Fault::Busy),
                Some(Fault::Busy),
                Some(Fault::Io),
                None
            ]
        );
    }
}

//! Reading a feature store's tables a batch at a time, for the commands that rank and
//! classify what it holds.

use std::path::Path;

use arrow_array::RecordBatch;
use mudar_sinks::store::{StoreError, scan_committed};

/// [`scan_committed`] over `columns` of `table`, with errors, the store's and `each`'s, as
/// messages.
pub(crate) fn scan_table(
    store: &Path,
    table: &str,
    columns: &[&str],
    mut each: impl FnMut(RecordBatch) -> Result<(), String>,
) -> Result<(), String> {
    struct Message(String);
    impl From<StoreError> for Message {
        fn from(e: StoreError) -> Message {
            Message(e.to_string())
        }
    }
    scan_committed(store, table, Some(columns), |batch| each(batch).map_err(Message)).map_err(|Message(e)| e)
}

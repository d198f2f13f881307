//! Giving back what a database keeps only for speed, once the host is quiet
//! (`crate::idle`).

use super::SqliteDatabase;

impl SqliteDatabase {
    /// Empty the read cache and close the pooled readers, with their page
    /// caches (readers are reopened on demand).
    pub fn release_memory(&self) {
        self.cache.clear();
        if let Ok(mut readers) = self.readers.lock() {
            readers.clear();
        }
    }
}

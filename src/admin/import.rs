//! An import in progress: batches inside one database transaction.

use std::collections::HashMap;

use crate::error::Result;
use crate::id::SessionKey;
use crate::record::Record;
use crate::store::{Device, ImportCounts, ImportWriter, Store};

/// Records per statement of an import.
const IMPORT_BATCH: usize = 1000;

/// An import in progress (see [`Admin::begin_import`](super::Admin::begin_import)): memory bounded by
/// one batch, plus the written ids (25 bytes each) when a cache must drop
/// them after the commit.
pub struct Import {
    store: Store,
    writer: Box<dyn ImportWriter>,
    replace: bool,
    batch: Vec<(Record, Device)>,
    /// Where each id of the batch sits in it.
    in_batch: HashMap<SessionKey, usize>,
    counts: ImportCounts,
    /// The ids written, one per line, to evict from the cache once
    /// committed; `None` without a cache.
    written: Option<String>,
}

impl Import {
    pub(crate) fn new(store: Store, writer: Box<dyn ImportWriter>, replace: bool) -> Import {
        let written = store.has_cache().then(String::new);
        Import {
            store,
            writer,
            replace,
            batch: Vec::with_capacity(IMPORT_BATCH),
            in_batch: HashMap::new(),
            counts: ImportCounts::default(),
            written,
        }
    }

    /// Adds a record with its device (empty for lines that carry none); a
    /// batch is written once full. A second line with the same id replaces
    /// the first with `replace`, else is kept out.
    ///
    /// # Errors
    ///
    /// Fails with the database's error when a full batch cannot be written (the import is then to be dropped:
    /// nothing of it stays).
    pub async fn add(&mut self, record: Record, device: Device) -> Result<()> {
        match self.in_batch.get(&record.id) {
            Some(&at) if self.replace => {
                self.batch[at] = (record, device);
                self.counts.replaced += 1;
            }
            Some(_) => self.counts.kept += 1,
            None => {
                self.in_batch.insert(record.id.clone(), self.batch.len());
                self.batch.push((record, device));
            }
        }
        if self.batch.len() >= IMPORT_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        // In id order, each batch lands on neighbouring pages of the
        // primary key and of SQLite's user index (keyed by id prefix).
        self.batch.sort_unstable_by(|a, b| a.0.id.as_str().cmp(b.0.id.as_str()));
        let (records, devices): (Vec<Record>, Vec<Device>) = std::mem::take(&mut self.batch).into_iter().unzip();
        self.counts += self.writer.write(&records, &devices, self.replace).await?;
        if let Some(written) = &mut self.written {
            for record in &records {
                written.push_str(record.id.as_str());
                written.push('\n');
            }
        }
        self.batch.clear();
        self.in_batch.clear();
        Ok(())
    }

    /// What was written so far.
    pub fn counts(&self) -> ImportCounts {
        self.counts
    }

    /// Writes the last batch and commits; then the cache drops what it held
    /// of these ids (tombstones included), so the apps serve what was
    /// imported on their next read.
    ///
    /// # Errors
    ///
    /// Fails with the database's error when the last batch or the commit fails: nothing of the import stays.
    pub async fn finish(mut self) -> Result<ImportCounts> {
        self.flush().await?;
        self.writer.commit().await?;
        if let Some(written) = self.written.take() {
            let ids: Vec<SessionKey> = written.lines().filter_map(|id| SessionKey::parse(id).ok()).collect();
            self.store.evict_imported(&ids).await;
        }
        Ok(self.counts)
    }
}

impl std::fmt::Debug for Import {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Import").field("replace", &self.replace).field("counts", &self.counts).finish_non_exhaustive()
    }
}

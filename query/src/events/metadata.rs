//! A cache of Parquet footers (with their page indexes) for segment files. Segments are
//! immutable and their names are never reused within a generation, so a footer read once
//! stays valid for as long as the file exists; without the cache every query re-reads and
//! re-decodes the footer of every file it touches (about 1.4 ms each on this VM, i.e. most of
//! a short query over a month of small segments).
//!
//! Bounded by `query.parquet_metadata_cache_bytes` (memory size of the decoded footers);
//! when full, the least recently used footers are dropped, one at a time. The node's
//! housekeeping drops the footers of deleted files ([`MetadataCache::forget_missing`]), so
//! what the cache holds follows the live segments. (It used to drop the least recently used
//! half when full: at 100M events the footers of a whole-table query did not fit in 128 MiB,
//! and every query of the SQL suite evicted what the next one needed.)
//!
//! Scans with row filters (a selective filter decoded first, then only the pages of the rows
//! that pass: many small reads) read the column chunks straight from the segment file,
//! opened once per scan of it, on the query's own thread; object_store's local reader opens
//! the file again and hands each read to tokio's blocking pool, a thread switch per range.
//! Measured on the 10M-event benchmark: a one-user scan 450 → 340 ms; but full scans (few,
//! large reads) were 1.6–1.7× slower read that way (reading overlaps decoding on the
//! blocking pool), so they keep object_store's reader.
//!
//! A factory made [`CachingReaderFactory::with_dictionary`] hands out footers whose Arrow
//! schema asks for some string columns as `Dictionary(Int32, Utf8)`: the Parquet reader then
//! keeps their dictionary pages as dictionary arrays instead of copying every row's string
//! (see `dictionary_group`). Such footers, without their page index, are cached apart from
//! the plain ones.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use datafusion::datasource::physical_plan::parquet::{
    ParquetFileMetrics, ParquetFileReaderFactory,
};
use datafusion::datasource::physical_plan::FileMeta;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::future::BoxFuture;
use futures::FutureExt;
use object_store::path::Path;
use object_store::ObjectStore;
use parking_lot::Mutex;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetObjectReader};
use parquet::arrow::{encode_arrow_schema, parquet_to_arrow_schema, ARROW_SCHEMA_META_KEY};
use parquet::file::metadata::{FileMetaData, KeyValue, ParquetMetaData, ParquetMetaDataBuilder};
use parquet::file::page_index::index::Index;
use parquet::file::page_index::offset_index::OffsetIndexMetaData;

/// A file by path and size, and the dictionary columns its footer was made to ask for
/// ([`DictionaryColumns::id`]; 0: the footer as stored).
type Key = (Path, u64, u64);

/// String columns a scan reads as `Dictionary(Int32, Utf8)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DictionaryColumns {
    names: Vec<String>,
    /// Columns whose page statistics the footers keep, for a scan filtering rows by them
    /// (empty: no page index at all).
    page_index: Vec<String>,
    /// Columns whose page locations the footers keep (with a page index: those the scan reads).
    located: Vec<String>,
    /// Tells the cached footers of different column sets apart (never 0).
    id: u64,
}

impl DictionaryColumns {
    /// `names` read as dictionaries, by footers without a page index.
    pub(crate) fn new(names: Vec<String>) -> Self {
        Self::with(names, Vec::new(), Vec::new())
    }

    fn with(mut names: Vec<String>, mut page_index: Vec<String>, mut located: Vec<String>) -> Self {
        use std::hash::{Hash, Hasher};
        for v in [&mut names, &mut page_index, &mut located] {
            v.sort();
            v.dedup();
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&names, &page_index, &located).hash(&mut h);
        Self {
            id: h.finish().max(1),
            names,
            page_index,
            located,
        }
    }

    /// These columns, by footers keeping the page statistics of `page_index` and the page
    /// locations of `read` (the columns the scan reads, which include `page_index`).
    pub(crate) fn with_page_index(&self, page_index: Vec<String>, read: Vec<String>) -> Self {
        Self::with(self.names.clone(), page_index, read)
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The type a column of `field`'s name and type is read as.
    pub(crate) fn field(&self, field: &Field) -> Field {
        if self.contains(field.name()) && field.data_type() == &DataType::Utf8 {
            field.clone().with_data_type(dictionary_type())
        } else {
            field.clone()
        }
    }

    /// `schema` with these columns as dictionaries.
    pub(crate) fn schema(&self, schema: &Schema) -> Schema {
        Schema::new_with_metadata(
            schema
                .fields()
                .iter()
                .map(|f| Arc::new(self.field(f)))
                .collect::<Vec<_>>(),
            schema.metadata().clone(),
        )
    }

    /// `meta` with an Arrow schema asking for these columns as dictionaries, and of its page
    /// index only what the scan can use: a scan with no filter to prune pages by needs none
    /// (the footer is then a few kB instead of ~190 kB a segment at 100M events: a second full
    /// copy of every footer made the 128 MiB cache evict half of itself at every query), one
    /// filtering by some columns their page statistics and the page locations of the columns
    /// it reads.
    fn footer(&self, meta: &ParquetMetaData) -> parquet::errors::Result<ParquetMetaData> {
        let file = meta.file_metadata();
        let stored = parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())?;
        let mut kv: Vec<KeyValue> = file
            .key_value_metadata()
            .map(|kv| {
                kv.iter()
                    .filter(|e| e.key != ARROW_SCHEMA_META_KEY)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        kv.push(KeyValue::new(
            ARROW_SCHEMA_META_KEY.to_string(),
            encode_arrow_schema(&self.schema(&stored)),
        ));
        let file = FileMetaData::new(
            file.version(),
            file.num_rows(),
            file.created_by().map(str::to_string),
            Some(kv),
            file.schema_descr_ptr(),
            file.column_orders().cloned(),
        );
        let (columns, offsets) = match self.page_index.is_empty() {
            true => (None, None),
            false => (self.page_statistics(meta), self.page_locations(meta)),
        };
        Ok(ParquetMetaDataBuilder::new(file)
            .set_row_groups(meta.row_groups().to_vec())
            .set_column_index(columns)
            .set_offset_index(offsets)
            .build())
    }
}

impl DictionaryColumns {
    /// `meta`'s page statistics of the [`Self::page_index`] columns (none for the others).
    fn page_statistics(&self, meta: &ParquetMetaData) -> Option<Vec<Vec<Index>>> {
        let kept = Self::leaves(meta, &self.page_index);
        meta.column_index()
            .map(|groups| only(groups, &kept, || Index::NONE))
    }

    /// `meta`'s page locations of the [`Self::located`] columns (none for the others, which
    /// the scan does not read).
    fn page_locations(&self, meta: &ParquetMetaData) -> Option<Vec<Vec<OffsetIndexMetaData>>> {
        let kept = Self::leaves(meta, &self.located);
        meta.offset_index().map(|groups| {
            only(groups, &kept, || OffsetIndexMetaData {
                page_locations: Vec::new(),
                unencoded_byte_array_data_bytes: None,
            })
        })
    }

    /// For each leaf column of `meta`, whether it belongs to one of the top-level `columns`.
    fn leaves(meta: &ParquetMetaData, columns: &[String]) -> Vec<bool> {
        let schema = meta.file_metadata().schema_descr();
        (0..schema.num_columns())
            .map(|i| {
                let column = schema.column(i);
                let top = column.path().parts().first().cloned();
                top.is_some_and(|p| columns.contains(&p))
            })
            .collect()
    }
}

/// A page index (row group × leaf column) with the entries of the leaves not `kept` made
/// `empty`.
fn only<T: Clone>(groups: &[Vec<T>], kept: &[bool], empty: impl Fn() -> T) -> Vec<Vec<T>> {
    groups
        .iter()
        .map(|columns| {
            columns
                .iter()
                .zip(kept)
                .map(|(entry, &keep)| if keep { entry.clone() } else { empty() })
                .collect()
        })
        .collect()
}

/// What [`DictionaryColumns`] are read as.
pub(crate) fn dictionary_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

struct Entry {
    meta: Arc<ParquetMetaData>,
    bytes: usize,
    /// Its place in [`Inner::order`].
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Entries by last use, least recent first.
    order: BTreeMap<u64, Key>,
    bytes: usize,
    clock: u64,
    hits: u64,
    misses: u64,
    evictions: u64,
}

impl Inner {
    fn remove(&mut self, key: &Key) -> Option<Entry> {
        let e = self.entries.remove(key)?;
        self.order.remove(&e.used);
        self.bytes -= e.bytes;
        Some(e)
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

/// Footers by (path, size), shared by every query of a node.
pub struct MetadataCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MetadataCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.inner.lock();
        write!(
            f,
            "MetadataCache({} files, {} bytes)",
            i.entries.len(),
            i.bytes
        )
    }
}

/// What `/metrics` shows of the cache.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetadataCacheStats {
    pub files: usize,
    pub bytes: usize,
    pub hits: u64,
    pub misses: u64,
    /// Footers dropped to make room (not those of deleted files).
    pub evictions: u64,
}

impl MetadataCache {
    /// A cache holding at most `capacity` bytes of decoded footers (0 disables it).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn stats(&self) -> MetadataCacheStats {
        let i = self.inner.lock();
        MetadataCacheStats {
            files: i.entries.len(),
            bytes: i.bytes,
            hits: i.hits,
            misses: i.misses,
            evictions: i.evictions,
        }
    }

    fn get(&self, key: &Key) -> Option<Arc<ParquetMetaData>> {
        let mut i = self.inner.lock();
        let now = i.tick();
        let Some(e) = i.entries.get_mut(key) else {
            i.misses += 1;
            return None;
        };
        let before = std::mem::replace(&mut e.used, now);
        let meta = e.meta.clone();
        i.order.remove(&before);
        i.order.insert(now, key.clone());
        i.hits += 1;
        Some(meta)
    }

    fn put(&self, key: Key, meta: Arc<ParquetMetaData>) {
        let bytes = meta.memory_size();
        if bytes > self.capacity {
            return;
        }
        let mut i = self.inner.lock();
        i.remove(&key);
        // The least recently used go first.
        while i.bytes + bytes > self.capacity {
            let Some((_, oldest)) = i.order.pop_first() else {
                break;
            };
            if let Some(e) = i.entries.remove(&oldest) {
                i.bytes -= e.bytes;
                i.evictions += 1;
            }
        }
        let used = i.tick();
        i.order.insert(used, key.clone());
        i.entries.insert(key, Entry { meta, bytes, used });
        i.bytes += bytes;
    }

    /// Drops the footers of files that are gone or changed size (compacted, expired, erased
    /// segments), so the cache holds only footers of files that can still be read: its size
    /// follows the node's segments rather than its history. `root` is the file system root
    /// the cached paths are relative to. Stats the files outside the lock; returns how many
    /// footers were dropped.
    pub fn forget_missing(&self, root: &std::path::Path) -> usize {
        let files: Vec<(Path, u64)> = {
            let i = self.inner.lock();
            let mut f: Vec<(Path, u64)> = i.entries.keys().map(|k| (k.0.clone(), k.1)).collect();
            f.sort();
            f.dedup();
            f
        };
        let gone: HashSet<(Path, u64)> = files
            .into_iter()
            .filter(|(path, size)| {
                std::fs::metadata(root.join(path.as_ref())).map_or(true, |m| m.len() != *size)
            })
            .collect();
        if gone.is_empty() {
            return 0;
        }
        let mut i = self.inner.lock();
        let keys: Vec<Key> = i
            .entries
            .keys()
            .filter(|k| gone.contains(&(k.0.clone(), k.1)))
            .cloned()
            .collect();
        for k in &keys {
            i.remove(k);
        }
        keys.len()
    }
}

/// Opens segment files for DataFusion's Parquet scan, answering footers from the cache.
#[derive(Debug)]
pub(crate) struct CachingReaderFactory {
    store: Arc<dyn ObjectStore>,
    cache: Arc<MetadataCache>,
    /// Read column chunks on the query's thread (see the module docs).
    local_reads: bool,
    dictionary: Option<Arc<DictionaryColumns>>,
}

impl CachingReaderFactory {
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        cache: Arc<MetadataCache>,
        local_reads: bool,
    ) -> Self {
        Self {
            store,
            cache,
            local_reads,
            dictionary: None,
        }
    }

    /// The same factory, its files' footers asking for `columns` as dictionaries.
    pub(crate) fn with_dictionary(&self, columns: Arc<DictionaryColumns>) -> Self {
        Self {
            store: self.store.clone(),
            cache: self.cache.clone(),
            local_reads: self.local_reads,
            dictionary: Some(columns),
        }
    }
}

impl ParquetFileReaderFactory for CachingReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        file_meta: FileMeta,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> datafusion::error::Result<Box<dyn AsyncFileReader + Send>> {
        let location = file_meta.location().clone();
        let size = file_meta.object_meta.size;
        let metrics = ParquetFileMetrics::new(partition_index, location.as_ref(), metrics);
        let mut inner = ParquetObjectReader::new(self.store.clone(), location.clone())
            .with_file_size(size)
            .with_preload_column_index(true)
            .with_preload_offset_index(true);
        if let Some(hint) = metadata_size_hint {
            inner = inner.with_footer_size_hint(hint);
        }
        Ok(Box::new(CachingReader {
            inner,
            path: std::path::PathBuf::from(format!("/{location}")),
            file: None,
            local_reads: self.local_reads,
            key: (location, size, 0),
            dictionary: self.dictionary.clone(),
            cache: self.cache.clone(),
            metrics,
        }))
    }
}

struct CachingReader {
    /// Reads footers on a cache miss.
    inner: ParquetObjectReader,
    /// The segment file on the local disk, opened at the first read.
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
    local_reads: bool,
    key: Key,
    dictionary: Option<Arc<DictionaryColumns>>,
    cache: Arc<MetadataCache>,
    metrics: ParquetFileMetrics,
}

/// Ranges closer than this are read with one `pread` (and the gap thrown away).
const COALESCE_GAP: u64 = 64 * 1024;

impl CachingReader {
    /// Bytes `ranges` of the file, in order, reading nearby ranges together.
    fn read_ranges(&mut self, ranges: &[Range<u64>]) -> parquet::errors::Result<Vec<Bytes>> {
        use std::io::{Read, Seek};
        let err = |path: &std::path::Path, e: std::io::Error| {
            parquet::errors::ParquetError::External(
                format!("reading segment {}: {e}", path.display()).into(),
            )
        };
        if self.file.is_none() {
            let f = std::fs::File::open(&self.path).map_err(|e| err(&self.path, e))?;
            self.file = Some(f);
        }
        let Some(file) = self.file.as_ref() else {
            return Ok(Vec::new());
        };
        let mut order: Vec<usize> = (0..ranges.len()).collect();
        order.sort_by_key(|&i| ranges[i].start);
        let mut out: Vec<Bytes> = vec![Bytes::new(); ranges.len()];
        let mut i = 0;
        while i < order.len() {
            // One read covering the ranges that start within COALESCE_GAP of the previous end.
            let start = ranges[order[i]].start;
            let mut end = ranges[order[i]].end;
            let mut j = i + 1;
            while j < order.len() && ranges[order[j]].start <= end.saturating_add(COALESCE_GAP) {
                end = end.max(ranges[order[j]].end);
                j += 1;
            }
            // Read into spare capacity (no zeroing of the buffer first).
            let len = (end - start) as usize;
            let mut buf = Vec::with_capacity(len);
            let mut f: &std::fs::File = file;
            f.seek(std::io::SeekFrom::Start(start))
                .and_then(|_| f.take(len as u64).read_to_end(&mut buf))
                .map_err(|e| err(&self.path, e))?;
            if buf.len() != len {
                let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                return Err(err(&self.path, eof));
            }
            let buf = Bytes::from(buf);
            for &k in &order[i..j] {
                let r = &ranges[k];
                out[k] = buf.slice((r.start - start) as usize..(r.end - start) as usize);
            }
            i = j;
        }
        Ok(out)
    }
}

impl AsyncFileReader for CachingReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.metrics
            .bytes_scanned
            .add((range.end - range.start) as usize);
        if !self.local_reads {
            return self.inner.get_bytes(range);
        }
        let read = self
            .read_ranges(std::slice::from_ref(&range))
            .map(|mut v| v.pop().unwrap_or_default());
        futures::future::ready(read).boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        self.metrics.bytes_scanned.add(total as usize);
        if !self.local_reads {
            return self.inner.get_byte_ranges(ranges);
        }
        futures::future::ready(self.read_ranges(&ranges)).boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let hinted = self
                .dictionary
                .as_ref()
                .map(|d| (d.clone(), (self.key.0.clone(), self.key.1, d.id)));
            if let Some((_, key)) = &hinted {
                if let Some(meta) = self.cache.get(key) {
                    return Ok(meta);
                }
            }
            let meta = match self.cache.get(&self.key) {
                Some(meta) => meta,
                None => {
                    let meta = self.inner.get_metadata(options).await?;
                    self.cache.put(self.key.clone(), meta.clone());
                    meta
                }
            };
            let Some((columns, key)) = hinted else {
                return Ok(meta);
            };
            let meta = Arc::new(columns.footer(&meta)?);
            self.cache.put(key, meta.clone());
            Ok(meta)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::metadata::FileMetaData;
    use parquet::schema::types::{SchemaDescriptor, Type};

    fn meta() -> Arc<ParquetMetaData> {
        let schema = Type::group_type_builder("s").build().map(Arc::new);
        let descr = Arc::new(SchemaDescriptor::new(schema.expect("schema")));
        Arc::new(ParquetMetaData::new(
            FileMetaData::new(1, 0, None, None, descr, None),
            vec![],
        ))
    }

    #[test]
    fn hits_misses_and_eviction() {
        let one = meta().memory_size();
        let cache = MetadataCache::new(one * 4);
        let key = |i: u64| (Path::from(format!("seg/{i}.parquet")), 10, 0);
        assert!(cache.get(&key(0)).is_none());
        for i in 0..4 {
            cache.put(key(i), meta());
        }
        assert!(cache.get(&key(0)).is_some() && cache.get(&key(1)).is_some());
        // Full: the fifth drops the least recently used one (2; 0 and 1 were just used).
        cache.put(key(4), meta());
        assert!(cache.get(&key(2)).is_none());
        for i in [0, 1, 3, 4] {
            assert!(cache.get(&key(i)).is_some(), "{i}");
        }
        // The sixth drops 0, now the least recently used.
        cache.put(key(5), meta());
        assert!(cache.get(&key(0)).is_none() && cache.get(&key(5)).is_some());
        // Same path, other size: another file. Putting a key again replaces it.
        assert!(cache.get(&(key(1).0, 11, 0)).is_none());
        cache.put(key(5), meta());
        let s = cache.stats();
        assert_eq!((s.files, s.bytes, s.evictions), (4, one * 4, 2), "{s:?}");
        assert_eq!((s.hits, s.misses), (7, 4), "{s:?}");
    }

    #[test]
    fn footers_of_deleted_or_changed_files_are_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rel = |name: &str| {
            let p = dir.path().join(name);
            Path::from(p.to_string_lossy().trim_start_matches('/'))
        };
        std::fs::write(dir.path().join("a.parquet"), b"0123456789").expect("write");
        std::fs::write(dir.path().join("b.parquet"), b"0123456789").expect("write");
        std::fs::write(dir.path().join("c.parquet"), b"0123456789").expect("write");
        let cache = MetadataCache::new(usize::MAX);
        for name in ["a.parquet", "b.parquet", "c.parquet"] {
            cache.put((rel(name), 10, 0), meta());
            cache.put((rel(name), 10, 7), meta());
        }
        let root = std::path::Path::new("/");
        assert_eq!(cache.forget_missing(root), 0);
        std::fs::remove_file(dir.path().join("a.parquet")).expect("rm");
        std::fs::write(dir.path().join("b.parquet"), b"01234").expect("rewrite");
        // Both footers (plain and dictionary-hinted) of a and b go; c's stay.
        assert_eq!(cache.forget_missing(root), 4);
        assert!(cache.get(&(rel("c.parquet"), 10, 7)).is_some());
        assert!(cache.get(&(rel("a.parquet"), 10, 0)).is_none());
        let s = cache.stats();
        assert_eq!(
            (s.files, s.bytes, s.evictions),
            (2, 2 * meta().memory_size(), 0)
        );
    }
}

//! What the hot pages read, kept while nothing in the database has changed (DESIGN §11).
//!
//! The key of freshness is PostgreSQL's own: the snapshot (`pg_current_snapshot()`) read in the
//! statement that loads the signed-in user. Two snapshots are equal only if no transaction that
//! writes has begun or ended between them, anywhere on the server, so a value loaded at one
//! snapshot is exactly what a reader at an equal snapshot would load: never stale, without a
//! statement of its own. A value is loaded after its snapshot was taken, so a change committed
//! in between only makes later snapshots differ. Whatever a page derives from the time, not the
//! data, is bounded by `FRESH_FOR` of the application's clock. Any write anywhere ends every
//! value's life, so under a busy engine the hit rate falls; correctness does not.

use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// How a reading is fresh: the snapshot of the request's first statement and the clock's now.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    pub snapshot: &'a str,
    pub now: DateTime<Utc>,
}

/// How long a value may stand for time passing with no change to the data (the pages show times
/// to the minute at most, and "today"); past it, one request reloads while the others are still
/// served the kept value, up to twice this age.
pub const FRESH_FOR: Duration = Duration::seconds(5);

struct Kept<K, V> {
    key: K,
    snapshot: String,
    at: DateTime<Utc>,
    value: Arc<V>,
}

/// A small cache of values by key, each valid at one snapshot. Linear: it holds few entries (one
/// per distinct key read at the current snapshot), and a change retires them all.
pub struct ReadCache<K, V> {
    kept: Mutex<Vec<Kept<K, V>>>,
    capacity: usize,
    /// One load at a time: when a change retires the values, the requests that arrive together
    /// wait for the first one's load instead of all reading the same rows at once.
    loading: tokio::sync::Mutex<()>,
}

impl<K: PartialEq, V> ReadCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self { kept: Mutex::new(Vec::new()), capacity, loading: tokio::sync::Mutex::new(()) }
    }

    /// The value kept for this key at this snapshot, and whether time has not yet ended it.
    fn find(&self, key: &K, reading: Reading<'_>) -> Option<(Arc<V>, bool)> {
        let kept = self.kept.lock().ok()?;
        kept.iter()
            .find(|k| &k.key == key && k.snapshot == reading.snapshot && (reading.now - k.at).abs() < FRESH_FOR * 2)
            .map(|k| (k.value.clone(), (reading.now - k.at).abs() < FRESH_FOR))
    }

    fn get(&self, key: &K, reading: Reading<'_>) -> Option<Arc<V>> {
        self.find(key, reading).filter(|(_, fresh)| *fresh).map(|(value, _)| value)
    }

    fn put(&self, key: K, reading: Reading<'_>, value: Arc<V>) {
        let Ok(mut kept) = self.kept.lock() else { return };
        // Values of another snapshot can never be read again.
        kept.retain(|k| k.snapshot == reading.snapshot && k.key != key);
        if kept.len() >= self.capacity {
            kept.remove(0);
        }
        kept.push(Kept { key, snapshot: reading.snapshot.to_string(), at: reading.now, value });
    }

    /// The value kept for this key at this reading's snapshot, or the one `load` reads (kept
    /// when it succeeds). Without a snapshot (empty), always `load`.
    pub async fn get_or_load<E, F, Fut>(&self, key: K, reading: Reading<'_>, load: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if reading.snapshot.is_empty() {
            return load().await.map(Arc::new);
        }
        let _one_at_a_time = match self.find(&key, reading) {
            Some((value, true)) => return Ok(value),
            // Same snapshot, so the same data; only the time the page shows has moved on. One
            // request reads afresh while the others keep the value (at most `2 × FRESH_FOR` old).
            Some((value, false)) => match self.loading.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(value),
            },
            None => self.loading.lock().await,
        };
        if let Some(value) = self.get(&key, reading) {
            return Ok(value);
        }
        let value = Arc::new(load().await?);
        self.put(key, reading, value.clone());
        Ok(value)
    }
}

/// The caches of the hot pages, one per application (values name rows of its database).
pub struct PageCaches {
    pub calendar: ReadCache<crate::ops::calendar::PageKey, crate::ops::calendar::CalendarPage>,
    pub releases: ReadCache<crate::ops::releases::ListKey, crate::ops::releases::ListPage>,
    pub release: ReadCache<crate::ops::releases::DetailKey, crate::ops::releases::DetailRead>,
    pub standing: crate::ops::releases::StandingCache,
}

impl Default for PageCaches {
    fn default() -> Self {
        Self { calendar: ReadCache::new(32), releases: ReadCache::new(64), release: ReadCache::new(64), standing: ReadCache::new(256) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    async fn read(cache: &ReadCache<i64, i64>, key: i64, snapshot: &str, now: DateTime<Utc>, fresh: i64) -> i64 {
        *cache.get_or_load(key, Reading { snapshot, now }, || async { Ok::<_, ()>(fresh) }).await.unwrap()
    }

    #[tokio::test]
    async fn a_value_lives_while_the_snapshot_and_the_key_are_the_same() {
        let cache = ReadCache::new(4);
        assert_eq!(read(&cache, 1, "10:10:", at(0), 100).await, 100);
        assert_eq!(read(&cache, 1, "10:10:", at(1), 200).await, 100, "same snapshot: kept");
        assert_eq!(read(&cache, 2, "10:10:", at(1), 300).await, 300, "another key: loaded");
        assert_eq!(read(&cache, 1, "10:11:", at(1), 400).await, 400, "a write happened: loaded");
        assert_eq!(read(&cache, 2, "10:11:", at(1), 500).await, 500, "values of the old snapshot are gone");
    }

    #[tokio::test]
    async fn time_passing_ends_a_value_even_without_writes() {
        let cache = ReadCache::new(4);
        assert_eq!(read(&cache, 1, "10:10:", at(0), 100).await, 100);
        assert_eq!(read(&cache, 1, "10:10:", at(6), 200).await, 200);
        assert_eq!(read(&cache, 1, "10:10:", at(-60), 300).await, 300, "a clock moved back also reloads");
        assert_eq!(read(&cache, 1, "10:10:", at(-40), 400).await, 400, "past twice the bound: reloaded");
    }

    #[tokio::test]
    async fn while_one_request_reloads_an_aged_value_of_the_same_snapshot_the_others_keep_it() {
        let cache = ReadCache::new(4);
        assert_eq!(read(&cache, 1, "10:10:", at(0), 100).await, 100);
        let reloading = cache.loading.lock().await;
        assert_eq!(read(&cache, 1, "10:10:", at(6), 200).await, 100, "aged, another request is reloading: kept");
        drop(reloading);
        assert_eq!(read(&cache, 1, "10:10:", at(6), 300).await, 300, "aged, nobody reloading: this one reloads");
        let reloading = cache.loading.lock().await;
        let changed = cache.get_or_load(1, Reading { snapshot: "10:11:", now: at(6) }, || async { Ok::<_, ()>(400) });
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), changed).await.is_err(),
            "another snapshot never gets the kept value: it waits for the load"
        );
        drop(reloading);
    }

    #[tokio::test]
    async fn without_a_snapshot_nothing_is_kept_and_failures_are_not_kept() {
        let cache: ReadCache<i64, i64> = ReadCache::new(4);
        assert_eq!(read(&cache, 1, "", at(0), 100).await, 100);
        assert_eq!(read(&cache, 1, "", at(0), 200).await, 200);
        let failed = cache.get_or_load(3, Reading { snapshot: "1:1:", now: at(0) }, || async { Err::<i64, _>("no") }).await;
        assert!(failed.is_err());
        assert_eq!(read(&cache, 3, "1:1:", at(0), 7).await, 7);
    }

    #[tokio::test]
    async fn it_holds_at_most_its_capacity() {
        let cache = ReadCache::new(2);
        for key in 0..5 {
            read(&cache, key, "1:1:", at(0), key).await;
        }
        assert_eq!(cache.kept.lock().unwrap().len(), 2);
        assert_eq!(read(&cache, 4, "1:1:", at(0), 99).await, 4);
    }
}

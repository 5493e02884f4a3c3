//! Answers of the read pages kept for reuse: the cost document (several DataFusion queries over
//! the billing store, a forecast, anomaly detection) and the residency overview (a check of every
//! flow of the lineage graph) take long to work out on a large history and change only when the
//! data does. Each is kept under a key that names the version of the data it read (the store's
//! [`assay_cost::Store::version`], the graph's [`assay_lineage::graph::Graph::version`]) and the
//! query; the cache belongs to the active revision, so a new revision starts empty.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// How many answers are kept: a page's parts for a few filters, not every query ever made.
const CAPACITY: usize = 16;

/// The most recently used answers, by key.
#[derive(Default)]
pub(crate) struct Views(Mutex<VecDeque<(String, Arc<Value>)>>);

impl Views {
    /// The answer kept under `key`, now the most recently used.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<Value>> {
        let mut entries = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = entries.iter().position(|(k, _)| k == key)?;
        let entry = entries.remove(at)?;
        let value = Arc::clone(&entry.1);
        entries.push_front(entry);
        Some(value)
    }

    /// Keeps `value` under `key`, dropping the least recently used answer when full.
    pub(crate) fn put(&self, key: String, value: Arc<Value>) {
        let mut entries = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.retain(|(k, _)| *k != key);
        entries.push_front((key, value));
        entries.truncate(CAPACITY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_answer_goes_first() {
        let views = Views::default();
        for i in 0..CAPACITY {
            views.put(format!("k{i}"), Arc::new(Value::from(i)));
        }
        assert_eq!(views.get("k0").as_deref(), Some(&Value::from(0)), "k0 is now the most recent");
        views.put("new".into(), Arc::new(Value::from("new")));
        assert!(views.get("k1").is_none(), "k1 was the least recently used");
        assert!(views.get("k0").is_some());
        views.put("k0".into(), Arc::new(Value::from("again")));
        assert_eq!(views.get("k0").as_deref(), Some(&Value::from("again")), "a key is kept once");
    }
}

//! Engines reused across evaluations. Cloning a compiled regorus engine copies its prepared
//! plans, which costs as much as a small evaluation; an evaluation sets its own input and
//! regorus resets its evaluation state on each query, so an engine can serve one evaluation
//! after another. Each evaluation takes an engine from the pool (or clones the compiled one
//! when all are busy) and puts it back after.

use std::sync::Mutex;

/// At most this many idle engines are kept per policy.
const KEEP: usize = 16;

/// A compiled engine and idle copies of it.
#[derive(Debug)]
pub(crate) struct Pool {
    compiled: regorus::Engine,
    idle: Mutex<Vec<regorus::Engine>>,
}

impl Clone for Pool {
    fn clone(&self) -> Self {
        Pool::new(self.compiled.clone())
    }
}

impl Pool {
    pub(crate) fn new(compiled: regorus::Engine) -> Pool {
        Pool { compiled, idle: Mutex::new(Vec::new()) }
    }

    /// The compiled engine, to change before any evaluation (data, for instance).
    pub(crate) fn compiled_mut(&mut self) -> &mut regorus::Engine {
        self.idle.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        &mut self.compiled
    }

    /// Runs `f` with an engine of its own.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut regorus::Engine) -> R) -> R {
        let taken = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let mut engine = taken.unwrap_or_else(|| self.compiled.clone());
        let result = f(&mut engine);
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < KEEP {
            idle.push(engine);
        }
        result
    }
}

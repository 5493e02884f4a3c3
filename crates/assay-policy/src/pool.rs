//! Engines reused across evaluations. Cloning a compiled regorus engine copies its prepared
//! plans, which costs as much as a small evaluation; an evaluation sets its own input and
//! regorus resets its evaluation state on each query, so an engine can serve one evaluation
//! after another. Each evaluation takes an engine from the pool (or clones the compiled one
//! when all are busy) and puts it back after.

use std::sync::Mutex;

/// At most this many idle engines are kept per policy.
const KEEP: usize = 16;

/// Idle values ready for reuse: one is taken for a use (or made when none is idle) and put
/// back after, keeping at most [`KEEP`].
struct Idle<T>(Mutex<Vec<T>>);

impl<T> Idle<T> {
    fn new() -> Idle<T> {
        Idle(Mutex::new(Vec::new()))
    }

    fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()
    }

    fn put(&self, value: T) {
        let mut idle = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < KEEP {
            idle.push(value);
        }
    }

    fn clear(&mut self) {
        self.0.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

/// A compiled engine and idle copies of it.
pub(crate) struct Pool {
    compiled: regorus::Engine,
    idle: Idle<regorus::Engine>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("compiled", &self.compiled).finish_non_exhaustive()
    }
}

impl Clone for Pool {
    fn clone(&self) -> Self {
        Pool::new(self.compiled.clone())
    }
}

impl Pool {
    pub(crate) fn new(compiled: regorus::Engine) -> Pool {
        Pool { compiled, idle: Idle::new() }
    }

    /// The compiled engine, to change before any evaluation (data, for instance).
    pub(crate) fn compiled_mut(&mut self) -> &mut regorus::Engine {
        self.idle.clear();
        &mut self.compiled
    }

    /// The compiled engine.
    pub(crate) fn compiled(&self) -> &regorus::Engine {
        &self.compiled
    }

    /// Runs `f` with an engine of its own.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut regorus::Engine) -> R) -> R {
        let mut engine = self.idle.take().unwrap_or_else(|| self.compiled.clone());
        let result = f(&mut engine);
        self.idle.put(engine);
        result
    }
}

/// A template's `violation` rule compiled for regorus's virtual machine (RVM), with idle VMs
/// that have the program and data loaded. Several times faster than the interpreter on the
/// Gatekeeper library; a template the RVM compiler does not take keeps the interpreter.
pub(crate) struct Programs {
    program: std::sync::Arc<regorus::rvm::program::Program>,
    data: regorus::Value,
    idle: Idle<regorus::rvm::vm::RegoVM>,
}

impl std::fmt::Debug for Programs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Programs").finish_non_exhaustive()
    }
}

impl Clone for Programs {
    fn clone(&self) -> Self {
        Programs { program: std::sync::Arc::clone(&self.program), data: self.data.clone(), idle: Idle::new() }
    }
}

impl Programs {
    /// Compiles `entry` of a compiled engine; `None` when the RVM compiler does not take it.
    pub(crate) fn compile(engine: &regorus::Engine, entry: &str, data: regorus::Value) -> Option<Programs> {
        let mut engine = engine.clone();
        let policy = engine.compile_with_entrypoint(&entry.into()).ok()?;
        let program = regorus::languages::rego::compiler::Compiler::compile_from_policy(&policy, &[entry]).ok()?;
        let programs = Programs { program, data, idle: Idle::new() };
        programs.vm().ok()?;
        Some(programs)
    }

    /// The same program over other data.
    pub(crate) fn with_data(&self, data: regorus::Value) -> Programs {
        Programs { program: std::sync::Arc::clone(&self.program), data, idle: Idle::new() }
    }

    fn vm(&self) -> anyhow::Result<regorus::rvm::vm::RegoVM> {
        let mut vm = regorus::rvm::vm::RegoVM::new();
        vm.load_program(std::sync::Arc::clone(&self.program));
        vm.set_data(self.data.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(vm)
    }

    /// Executes the program with `input`.
    pub(crate) fn execute(&self, input: regorus::Value) -> anyhow::Result<regorus::Value> {
        let mut vm = match self.idle.take() {
            Some(vm) => vm,
            None => self.vm()?,
        };
        vm.set_input(input);
        let result = vm.execute().map_err(|e| anyhow::anyhow!("{e}"));
        self.idle.put(vm);
        result
    }
}

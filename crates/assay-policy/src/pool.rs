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

/// Whether Rego source uses `else` (outside comments). regorus 0.14.1's virtual machine does not
/// take a function's `else` branch when its first body finds nothing to iterate over (it answers
/// undefined where OPA and regorus's interpreter answer the `else` value), so modules that use
/// `else` stay on the interpreter: slower, never wrong.
pub(crate) fn uses_else(text: &str) -> bool {
    text.lines().any(|line| {
        let code = line.split('#').next().unwrap_or("");
        code.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|word| word == "else")
    })
}

/// The packages whose rules must stay on the interpreter: those of modules that use `else`, and
/// those of modules that refer (`data.<package>...`) to one of them, transitively.
pub(crate) fn interpreted_packages(modules: &[crate::rego::Module]) -> std::collections::HashSet<String> {
    let read: Vec<(String, Vec<String>, bool)> = modules
        .iter()
        .filter_map(|m| {
            let package = crate::rego::package_of(&m.text)?;
            let mut refs = Vec::new();
            let mut rest = m.text.as_str();
            while let Some(at) = rest.find("data.") {
                let after = &rest[at + 5..];
                let end = after.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')).unwrap_or(after.len());
                refs.push(after[..end].trim_end_matches('.').to_string());
                rest = &after[end..];
            }
            Some((package, refs, uses_else(&m.text)))
        })
        .collect();
    let mut out: std::collections::HashSet<String> =
        read.iter().filter(|(_, _, e)| *e).map(|(p, _, _)| p.clone()).collect();
    let related = |a: &str, b: &str| {
        a == b
            || a.strip_prefix(b).is_some_and(|r| r.starts_with('.'))
            || b.strip_prefix(a).is_some_and(|r| r.starts_with('.'))
    };
    loop {
        let before = out.len();
        for (package, refs, _) in &read {
            if !out.contains(package) && refs.iter().any(|r| out.iter().any(|t| related(r, t))) {
                out.insert(package.clone());
            }
        }
        if out.len() == before {
            return out;
        }
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

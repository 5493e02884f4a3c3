//! A plan worked out from `.tf` files alone, for a pull request checked without running
//! `terraform plan` (as Infracost and checkov do): variables from their defaults and from the
//! variable files Terraform loads by itself, locals, Terraform's common functions, `count` and
//! `for_each` over values known in the configuration, and modules with local sources. What
//! cannot be known without a plan (data sources, attributes of other resources, module outputs,
//! registry modules) is left unknown, as a plan leaves values known only after apply: the
//! attribute is absent from `after` and `true` in `after_unknown`. Every resource is a `create`.

use std::collections::BTreeMap;

use hcl::eval::{Context, Evaluate as _, FuncArgs, FuncDef, ParamType};
use hcl_edit::Span as _;
use hcl_edit::structure::{Block, Body};
use hcl_edit::visit::Visit;
use serde_json::{Map, Value, json};

use super::config::{Configuration, SourceFile, attribute, join};
use super::plan::{self, Plan};
use crate::Diagnostic;

/// Modules deeper than this are not followed (a module that calls itself).
const MAX_DEPTH: usize = 16;

/// Attributes of a resource block that are Terraform's, not the resource's.
const META: [&str; 5] = ["count", "for_each", "provider", "depends_on", "lifecycle"];

/// The plan of the root module in `root`: every resource it and its local modules declare, as a
/// `create`. `None` when the directory has no `.tf` files.
pub fn synthesize(config: &Configuration, root: &str) -> (Option<Plan>, Vec<Diagnostic>) {
    synthesize_with(config, root, &[])
}

/// As [`synthesize`], with variable files given as `-var-file` gives them (paths relative to
/// `root`), loaded after the ones Terraform loads by itself; a file not in the configuration
/// is an error, and the others still count.
pub fn synthesize_with(config: &Configuration, root: &str, var_files: &[String]) -> (Option<Plan>, Vec<Diagnostic>) {
    let mut out = Out::default();
    if !config.files.contains_key(root) {
        return (None, out.diagnostics);
    }
    let mut inputs: BTreeMap<String, Input> = BTreeMap::new();
    let mut files: Vec<&SourceFile> = config.tfvars.get(root).into_iter().flatten().collect();
    for name in var_files {
        let path = join(root, name).unwrap_or_else(|| name.clone());
        match config
            .var_files
            .get(&path)
            .or_else(|| config.tfvars.get(root).and_then(|l| l.iter().find(|f| f.path == path)))
        {
            Some(file) => files.push(file),
            None => out.diagnostics.push(Diagnostic::error(
                "assay.yaml",
                format!("terraform.varFiles: {path} (for {root}) is not a variable file of the estate"),
            )),
        }
    }
    // Terraform loads terraform.tfvars, then *.auto.tfvars, then -var-file files; later ones win.
    for file in files {
        let ctx = base_context();
        for attr in file.body.attributes() {
            let value = evaluate(&attr.value, &ctx);
            let line = attr.span().map(|s| file.line(s.start)).unwrap_or(1);
            if value.is_none() {
                out.diagnostics.push(
                    Diagnostic::warning(
                        &file.path,
                        format!("{} is not a literal value; it is unknown", attr.key.as_str()),
                    )
                    .at(line, None),
                );
            }
            inputs.insert(attr.key.as_str().to_string(), Input { value });
        }
    }
    let configuration = module(config, root, "", &inputs, &mut out, 0);
    let document = json!({
        "format_version": "1.2",
        "terraform_version": null,
        "planned_values": {"root_module": {}},
        "resource_changes": out.changes,
        "configuration": configuration,
    });
    let (plan, problems) = plan::read(&format!("{root}/"), document);
    out.diagnostics.extend(problems);
    let plan = plan.map(|mut p| {
        p.root = Some(root.to_string());
        for (change, line) in p.changes.iter_mut().zip(&out.lines) {
            change.line = *line;
        }
        p
    });
    (plan, out.diagnostics)
}

/// A value given to a module's variable: known, or unknown (`None`).
struct Input {
    value: Option<Value>,
}

#[derive(Default)]
struct Out {
    changes: Vec<Value>,
    lines: Vec<u32>,
    diagnostics: Vec<Diagnostic>,
}

/// Evaluates one module: its resources go to `out`; returns its `configuration` document part.
fn module(
    config: &Configuration,
    dir: &str,
    prefix: &str,
    inputs: &BTreeMap<String, Input>,
    out: &mut Out,
    depth: usize,
) -> Value {
    let files: &[SourceFile] = config.files.get(dir).map(Vec::as_slice).unwrap_or(&[]);
    let blocks = || files.iter().flat_map(|f| f.body.blocks().map(move |b| (f, b)));
    let line = |f: &SourceFile, b: &Block| b.span().map(|s| f.line(s.start)).unwrap_or(1);
    let label = |b: &Block, i: usize| b.labels.get(i).map(|l| l.as_str().to_string()).unwrap_or_default();

    // Variables: given, else their default; unknown when neither.
    let mut vars = Map::new();
    for (f, b) in blocks().filter(|(_, b)| b.ident.as_str() == "variable") {
        let name = label(b, 0);
        match inputs.get(&name) {
            Some(Input { value: Some(v), .. }) => {
                vars.insert(name, v.clone());
            }
            Some(Input { value: None, .. }) => {}
            None => match attribute(b, "default").map(|e| evaluate(e, &base_context())) {
                Some(Some(v)) => {
                    vars.insert(name, v);
                }
                Some(None) => {}
                None => out.diagnostics.push(
                    Diagnostic::warning(
                        &f.path,
                        format!(
                            "variable {name} has no value (no default{}); what uses it is unknown",
                            if prefix.is_empty() {
                                ", not in terraform.tfvars or *.auto.tfvars"
                            } else {
                                ", not given by the module block"
                            }
                        ),
                    )
                    .at(line(f, b), None),
                ),
            },
        }
    }
    // Values from the root's variable files (a module block's arguments are checked by Terraform).
    for (name, input) in inputs.iter().filter(|_| prefix.is_empty()) {
        let declared = blocks().any(|(_, b)| b.ident.as_str() == "variable" && label(b, 0) == *name);
        if !declared && input.value.is_some() {
            // A value for a variable the configuration does not declare: Terraform warns too.
            out.diagnostics.push(Diagnostic::warning(dir, format!("a value is set for undeclared variable {name}")));
        }
    }
    let mut ctx = base_context();
    ctx.declare_var("var", hcl_value(Value::Object(vars)));
    ctx.declare_var("path", hcl_value(json!({"module": dir, "root": dir, "cwd": dir})));
    ctx.declare_var("terraform", hcl_value(json!({"workspace": "default"})));

    // Locals, in as many rounds as their references need.
    let mut pending: Vec<(&str, &hcl_edit::expr::Expression)> = blocks()
        .filter(|(_, b)| b.ident.as_str() == "locals")
        .flat_map(|(_, b)| b.body.attributes().map(|a| (a.key.as_str(), &a.value)))
        .collect();
    let mut locals = Map::new();
    loop {
        ctx.declare_var("local", hcl_value(Value::Object(locals.clone())));
        let before = pending.len();
        pending.retain(|(name, expr)| match evaluate(expr, &ctx) {
            Some(v) => {
                locals.insert((*name).to_string(), v);
                false
            }
            None => true,
        });
        if pending.len() == before {
            break;
        }
    }
    ctx.declare_var("local", hcl_value(Value::Object(locals)));
    // What the locals left unknown refer to, so that a resource using one refers to it too.
    let local_refs: BTreeMap<String, Vec<String>> = pending
        .iter()
        .map(|(name, expr)| {
            let mut found = References::default();
            found.visit_expr(expr);
            (format!("local.{name}"), found.0)
        })
        .collect();

    let mut provider_config = Map::new();
    let mut resources = Vec::new();
    let mut module_calls = Map::new();
    for (f, b) in blocks() {
        match b.ident.as_str() {
            "provider" if prefix.is_empty() => {
                let name = label(b, 0);
                let (known, _) = body(&b.body, &ctx, false);
                let key = match known.get("alias").and_then(Value::as_str) {
                    Some(alias) => format!("{name}.{alias}"),
                    None => name.clone(),
                };
                let expressions: Map<String, Value> =
                    known.into_iter().map(|(k, v)| (k, json!({"constant_value": v}))).collect();
                provider_config.insert(key, json!({"name": name, "expressions": expressions}));
            }
            // A resource block without its two labels is reported where the file is read.
            "resource" if b.labels.len() == 2 => {
                let (kind, name) = (label(b, 0), label(b, 1));
                let provider_key = provider_key(b, &kind);
                resources.push(json!({
                    "address": format!("{kind}.{name}"), "mode": "managed", "type": kind, "name": name,
                    "provider_config_key": provider_key, "expressions": expressions(&b.body, &local_refs),
                }));
                let address = format!("{prefix}{kind}.{name}");
                for (index, instance) in instances(f, b, &address, &ctx, &mut out.diagnostics) {
                    let (after, unknown) = body(&b.body, &instance, true);
                    let key = index_key(index.as_ref());
                    let mut change = json!({
                        "address": format!("{prefix}{kind}.{name}{key}"),
                        "mode": "managed", "type": kind, "name": name,
                        "provider_name": provider_name(&kind),
                        "change": {"actions": ["create"], "before": null, "after": after, "after_unknown": unknown,
                                   "before_sensitive": false, "after_sensitive": {}},
                    });
                    if let Some(index) = index {
                        change["index"] = index;
                    }
                    if !prefix.is_empty() {
                        change["module_address"] = json!(prefix.trim_end_matches('.'));
                    }
                    out.changes.push(change);
                    out.lines.push(line(f, b));
                }
            }
            "module" => {
                let name = label(b, 0);
                let source = attribute(b, "source").and_then(|e| evaluate(e, &ctx));
                let source = source.as_ref().and_then(Value::as_str).unwrap_or("");
                let local = source.starts_with("./") || source.starts_with("../");
                let target = if local { join(dir, source) } else { None };
                let Some(target) = target.filter(|t| config.files.contains_key(t)) else {
                    out.diagnostics.push(
                        Diagnostic::info(
                            &f.path,
                            format!(
                                "module {name} (source {source:?}) is not in the estate: its resources are not checked without a plan"
                            ),
                        )
                        .at(line(f, b), None),
                    );
                    continue;
                };
                if depth >= MAX_DEPTH {
                    out.diagnostics.push(
                        Diagnostic::error(&f.path, format!("module {name}: modules nested more than {MAX_DEPTH} deep"))
                            .at(line(f, b), None),
                    );
                    continue;
                }
                // One instance of the module per index or key of its count or for_each.
                let mut inner = Value::Null;
                let address = format!("{prefix}module.{name}");
                for (index, instance) in instances(f, b, &address, &ctx, &mut out.diagnostics) {
                    let mut given = BTreeMap::new();
                    for attr in b.body.attributes() {
                        let key = attr.key.as_str();
                        if matches!(key, "source" | "version" | "count" | "for_each" | "providers" | "depends_on") {
                            continue;
                        }
                        given.insert(key.to_string(), Input { value: evaluate(&attr.value, &instance) });
                    }
                    let key = index_key(index.as_ref());
                    inner = module(config, &target, &format!("{address}{key}."), &given, out, depth + 1);
                }
                module_calls.insert(name, json!({"source": source, "module": inner}));
            }
            _ => {}
        }
    }
    let mut part = json!({"resources": resources, "module_calls": module_calls});
    if prefix.is_empty() {
        return json!({"provider_config": provider_config, "root_module": part});
    }
    part.as_object_mut().map(|m| m.remove("provider_config"));
    part
}

/// The provider configuration a resource uses: its `provider` argument (`aws.west`), else the
/// provider its type's prefix names.
fn provider_key(block: &Block, kind: &str) -> String {
    match attribute(block, "provider") {
        Some(expr) => expr.to_string().trim().to_string(),
        None => kind.split('_').next().unwrap_or(kind).to_string(),
    }
}

fn provider_name(kind: &str) -> String {
    format!("registry.terraform.io/hashicorp/{}", kind.split('_').next().unwrap_or(kind))
}

/// An instance key as an address writes it: `[0]`, `["raw"]`, nothing without one.
fn index_key(index: Option<&Value>) -> String {
    match index {
        Some(Value::Number(n)) => format!("[{n}]"),
        Some(k) => format!("[{}]", serde_json::to_string(k).unwrap_or_default()),
        None => String::new(),
    }
}

/// The instances of a resource or module block (at `address`): one without `count` or
/// `for_each`; one per index or key when they are known; one, with a warning, when they are not.
fn instances<'c>(
    file: &SourceFile,
    block: &Block,
    address: &str,
    ctx: &Context<'c>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(Option<Value>, Context<'c>)> {
    let line = block.span().map(|s| file.line(s.start)).unwrap_or(1);
    let unknown = |what: &str, diagnostics: &mut Vec<Diagnostic>| {
        diagnostics.push(
            Diagnostic::warning(
                &file.path,
                format!("{address}: {what} cannot be known without a plan; it is counted as one instance"),
            )
            .at(line, None),
        );
    };
    if let Some(expr) = attribute(block, "count") {
        return match evaluate(expr, ctx).and_then(|v| v.as_u64()) {
            Some(n) => (0..n)
                .map(|i| {
                    let mut c = ctx.clone();
                    c.declare_var("count", hcl_value(json!({"index": i})));
                    (Some(json!(i)), c)
                })
                .collect(),
            None => {
                unknown("count", diagnostics);
                vec![(None, ctx.clone())]
            }
        };
    }
    if let Some(expr) = attribute(block, "for_each") {
        let pairs: Option<Vec<(String, Value)>> = match evaluate(expr, ctx) {
            Some(Value::Object(map)) => Some(map.into_iter().collect()),
            Some(Value::Array(items)) => {
                items.into_iter().map(|v| v.as_str().map(|s| (s.to_string(), v.clone()))).collect()
            }
            _ => None,
        };
        return match pairs {
            Some(pairs) => pairs
                .into_iter()
                .map(|(key, value)| {
                    let mut c = ctx.clone();
                    c.declare_var("each", hcl_value(json!({"key": key, "value": value})));
                    (Some(json!(key)), c)
                })
                .collect(),
            None => {
                unknown("for_each", diagnostics);
                vec![(None, ctx.clone())]
            }
        };
    }
    vec![(None, ctx.clone())]
}

/// A block body as a plan writes a resource: known attributes in `after`, unknown ones `true`
/// in `after_unknown`; nested blocks as lists of objects.
/// `top`: the resource's own body, whose meta-arguments (`count`, `provider`...) are Terraform's.
fn body(body: &Body, ctx: &Context<'_>, top: bool) -> (Map<String, Value>, Map<String, Value>) {
    let mut known = Map::new();
    let mut unknown = Map::new();
    for attr in body.attributes() {
        let key = attr.key.as_str();
        if top && META.contains(&key) {
            continue;
        }
        match evaluate(&attr.value, ctx) {
            Some(v) => {
                known.insert(key.to_string(), v);
            }
            None => {
                unknown.insert(key.to_string(), Value::Bool(true));
            }
        }
    }
    for block in body.blocks() {
        let ident = block.ident.as_str();
        if matches!(ident, "lifecycle" | "provisioner" | "connection") {
            continue;
        }
        if ident == "dynamic" {
            if let Some(name) = block.labels.first() {
                unknown.insert(name.as_str().to_string(), Value::Bool(true));
            }
            continue;
        }
        let (k, u) = self::body(&block.body, ctx, false);
        let list = known.entry(ident.to_string()).or_insert_with(|| Value::Array(Vec::new()));
        if let Some(items) = list.as_array_mut() {
            items.push(Value::Object(k));
        }
        let list = unknown.entry(ident.to_string()).or_insert_with(|| Value::Array(Vec::new()));
        if let Some(items) = list.as_array_mut() {
            items.push(Value::Object(u));
        }
    }
    (known, unknown)
}

/// The references of a block's attributes, as a plan's `configuration` writes them
/// (`{"cluster": {"references": ["google_container_cluster.main.id", "google_container_cluster.main"]}}`),
/// nested blocks as lists: what lets a resource be priced from one it refers to.
fn expressions(body: &Body, locals: &BTreeMap<String, Vec<String>>) -> Map<String, Value> {
    let mut out = Map::new();
    for attr in body.attributes() {
        let mut found = References::default();
        found.visit_expr(&attr.value);
        let mut references = Vec::new();
        for r in found.0 {
            if let Some(through) = locals.get(&r) {
                references.extend(through.iter().cloned());
            }
            references.push(r);
        }
        if !references.is_empty() {
            out.insert(attr.key.as_str().to_string(), json!({"references": references}));
        }
    }
    for block in
        body.blocks().filter(|b| !matches!(b.ident.as_str(), "lifecycle" | "provisioner" | "connection" | "dynamic"))
    {
        let inner = expressions(&block.body, locals);
        if !inner.is_empty() {
            out.entry(block.ident.as_str().to_string()).or_insert_with(|| json!([inner]));
        }
    }
    out
}

/// The objects an expression refers to, as Terraform lists them: `aws_lb.web.arn` then
/// `aws_lb.web`; `var.x`, `local.y`, `module.m.out`, `data.t.n.attr` likewise.
#[derive(Default)]
struct References(Vec<String>);

impl Visit for References {
    fn visit_traversal(&mut self, node: &hcl_edit::expr::Traversal) {
        use hcl_edit::expr::{Expression, TraversalOperator};
        if let Expression::Variable(root) = &node.expr {
            let names: Vec<&str> = node
                .operators
                .iter()
                .map_while(|op| match op.value() {
                    TraversalOperator::GetAttr(ident) => Some(ident.as_str()),
                    _ => None,
                })
                .collect();
            let root = root.as_str();
            // How many names make the object: `var.x` 1, `aws_lb.web` 1, `data.t.n` 2.
            let object = match root {
                "each" | "count" | "self" | "path" | "terraform" => 0,
                "data" => 2,
                _ => 1,
            };
            if object > 0 && names.len() >= object {
                let base = std::iter::once(root).chain(names[..object].iter().copied()).collect::<Vec<_>>().join(".");
                if let Some(attr) = names.get(object) {
                    self.0.push(format!("{base}.{attr}"));
                }
                self.0.push(base);
            }
        }
        hcl_edit::visit::visit_traversal(self, node);
    }
}

/// The value of an expression, or `None` when it cannot be known without a plan.
fn evaluate(expr: &hcl_edit::expr::Expression, ctx: &Context<'_>) -> Option<Value> {
    let expr = hcl::Expression::from(expr.clone());
    let value = expr.evaluate(ctx).ok()?;
    serde_json::to_value(&value).ok()
}

fn hcl_value(value: Value) -> hcl::Value {
    hcl::to_value(value).unwrap_or(hcl::Value::Null)
}

fn json_args(args: &FuncArgs) -> Vec<Value> {
    args.iter().map(|v| serde_json::to_value(v).unwrap_or(Value::Null)).collect()
}

type JsonFunc = fn(Vec<Value>) -> Result<Value, String>;

/// A context with Terraform's common functions.
fn base_context<'a>() -> Context<'a> {
    let mut ctx = Context::new();
    // Each function takes its arguments as JSON values; type checks are the function's own.
    macro_rules! func {
        ($name:literal, $params:expr, $variadic:expr, $f:expr) => {{
            const F: JsonFunc = $f;
            fn call(args: FuncArgs) -> Result<hcl::Value, String> {
                F(json_args(&args)).map(hcl_value)
            }
            let mut builder = FuncDef::builder().params(vec![ParamType::Any; $params]);
            if $variadic {
                builder = builder.variadic_param(ParamType::Any);
            }
            ctx.declare_func($name, builder.build(call));
        }};
    }
    func!("lower", 1, false, |a| Ok(json!(text(&a[0])?.to_lowercase())));
    func!("upper", 1, false, |a| Ok(json!(text(&a[0])?.to_uppercase())));
    func!("trimspace", 1, false, |a| Ok(json!(text(&a[0])?.trim())));
    func!("tostring", 1, false, |a| Ok(match &a[0] {
        Value::String(s) => json!(s),
        Value::Number(n) => json!(n.to_string()),
        Value::Bool(b) => json!(b.to_string()),
        other => return Err(format!("tostring: {other} is not a primitive")),
    }));
    func!("tonumber", 1, false, |a| match &a[0] {
        Value::Number(_) => Ok(a[0].clone()),
        Value::String(s) => s.parse::<f64>().map(|n| json!(n)).map_err(|e| format!("tonumber: {e}")),
        other => Err(format!("tonumber: {other} is not a number")),
    });
    func!("tolist", 1, false, |a| Ok(a[0].clone()));
    func!("toset", 1, false, |a| {
        let mut items = list(&a[0])?;
        items.dedup();
        Ok(Value::Array(items))
    });
    func!("tomap", 1, false, |a| Ok(a[0].clone()));
    func!("length", 1, false, |a| Ok(json!(match &a[0] {
        Value::Array(v) => v.len(),
        Value::Object(m) => m.len(),
        Value::String(s) => s.chars().count(),
        other => return Err(format!("length: {other} has no length")),
    })));
    func!("lookup", 2, true, |a| {
        let found = a[0].as_object().and_then(|m| m.get(text(&a[1]).ok()?)).cloned();
        found.or_else(|| a.get(2).cloned()).ok_or_else(|| "lookup: no such key and no default".to_string())
    });
    func!("merge", 0, true, |a| {
        let mut out = Map::new();
        for v in a {
            out.extend(v.as_object().cloned().ok_or("merge: not an object")?);
        }
        Ok(Value::Object(out))
    });
    func!("concat", 0, true, |a| {
        let mut out = Vec::new();
        for v in &a {
            out.extend(list(v)?);
        }
        Ok(Value::Array(out))
    });
    func!("coalesce", 0, true, |a| a
        .into_iter()
        .find(|v| !v.is_null() && v.as_str() != Some(""))
        .ok_or_else(|| "coalesce: no non-null argument".to_string()));
    func!("join", 2, false, |a| {
        let parts: Result<Vec<String>, String> = list(&a[1])?.iter().map(|v| text(v).map(str::to_string)).collect();
        Ok(json!(parts?.join(text(&a[0])?)))
    });
    func!("split", 2, false, |a| Ok(json!(text(&a[1])?.split(text(&a[0])?).collect::<Vec<_>>())));
    func!("contains", 2, false, |a| Ok(json!(list(&a[0])?.contains(&a[1]))));
    func!("keys", 1, false, |a| Ok(json!(a[0].as_object().ok_or("keys: not an object")?.keys().collect::<Vec<_>>())));
    func!("values", 1, false, |a| {
        Ok(Value::Array(a[0].as_object().ok_or("values: not an object")?.values().cloned().collect()))
    });
    func!("element", 2, false, |a| {
        let items = list(&a[0])?;
        let i = a[1].as_u64().ok_or("element: index is not a whole number")? as usize;
        if items.is_empty() {
            return Err("element: empty list".into());
        }
        Ok(items[i % items.len()].clone())
    });
    func!("flatten", 1, false, |a| {
        fn flat(v: &Value, out: &mut Vec<Value>) {
            match v {
                Value::Array(items) => items.iter().for_each(|i| flat(i, out)),
                other => out.push(other.clone()),
            }
        }
        let mut out = Vec::new();
        flat(&a[0], &mut out);
        Ok(Value::Array(out))
    });
    func!("distinct", 1, false, |a| {
        let mut out: Vec<Value> = Vec::new();
        for v in list(&a[0])? {
            if !out.contains(&v) {
                out.push(v);
            }
        }
        Ok(Value::Array(out))
    });
    func!("min", 0, true, |a| numbers(&a)?
        .into_iter()
        .reduce(f64::min)
        .map(|n| json!(n))
        .ok_or("min: no numbers".into()));
    func!("max", 0, true, |a| numbers(&a)?
        .into_iter()
        .reduce(f64::max)
        .map(|n| json!(n))
        .ok_or("max: no numbers".into()));
    func!("abs", 1, false, |a| Ok(json!(number(&a[0])?.abs())));
    func!("ceil", 1, false, |a| Ok(json!(number(&a[0])?.ceil())));
    func!("floor", 1, false, |a| Ok(json!(number(&a[0])?.floor())));
    func!("replace", 3, false, |a| Ok(json!(text(&a[0])?.replace(text(&a[1])?, text(&a[2])?))));
    func!("format", 1, true, |a| {
        // %s, %d, %v and %% as Terraform's format writes them for simple values.
        let spec = text(&a[0])?;
        let mut args = a[1..].iter();
        let mut out = String::new();
        let mut chars = spec.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('s' | 'd' | 'v') => match args.next().ok_or("format: too few arguments")? {
                    Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                },
                other => return Err(format!("format: verb %{} is not read", other.unwrap_or(' '))),
            }
        }
        Ok(json!(out))
    });
    ctx
}

fn text(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| format!("{v} is not a string"))
}

fn list(v: &Value) -> Result<Vec<Value>, String> {
    v.as_array().cloned().ok_or_else(|| format!("{v} is not a list"))
}

fn number(v: &Value) -> Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("{v} is not a number"))
}

fn numbers(a: &[Value]) -> Result<Vec<f64>, String> {
    a.iter().map(number).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_block_without_labels_is_reported_and_the_rest_worked_out() {
        let mut config = Configuration::default();
        let diagnostics =
            config.add_file("t/main.tf", "resource {\n}\n\nresource \"aws_s3_bucket\" \"b\" {\n  bucket = \"x\"\n}\n");
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert!(diagnostics[0].message.contains("needs two labels"), "{diagnostics:?}");
        let (plan, _) = synthesize(&config, "t");
        let plan = plan.expect("a plan");
        let addresses: Vec<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(addresses, ["aws_s3_bucket.b"]);
        assert_eq!(plan.changes[0].line, 4);
        assert_eq!(plan.changes[0].after.as_ref().and_then(|a| a.get("bucket")), Some(&json!("x")));
    }

    #[test]
    fn references_are_kept_so_a_resource_finds_the_one_it_uses() {
        let mut config = Configuration::default();
        let tf = r#"
locals {
  template = aws_launch_template.nodes.name
}
resource "aws_launch_template" "nodes" {
  instance_type = "g5.xlarge"
}
resource "aws_eks_node_group" "gpu" {
  cluster_name = "ml"
  launch_template {
    name = local.template
  }
}
resource "aws_instance" "web" {
  launch_template {
    id = aws_launch_template.nodes.id
  }
  subnet_id = var.subnet
}
"#;
        assert!(config.add_file("t/main.tf", tf).is_empty());
        let (plan, _) = synthesize(&config, "t");
        let plan = plan.expect("a plan");
        let change = |a: &str| plan.changes.iter().find(|c| c.address == a).expect("change");
        let web = change("aws_instance.web");
        assert_eq!(
            plan.references(web, &["launch_template", "id"]),
            ["aws_launch_template.nodes.id", "aws_launch_template.nodes"]
        );
        assert_eq!(
            plan.referenced(web, &["launch_template", "id"]).map(|c| c.address.as_str()),
            Some("aws_launch_template.nodes")
        );
        assert_eq!(plan.references(web, &["subnet_id"]), ["var.subnet"]);
        assert!(plan.referenced(web, &["subnet_id"]).is_none());
        // Through a local that cannot be known without a plan.
        let gpu = change("aws_eks_node_group.gpu");
        assert_eq!(
            plan.referenced(gpu, &["launch_template", "name"]).map(|c| c.address.as_str()),
            Some("aws_launch_template.nodes")
        );
        assert!(plan.references(gpu, &["cluster_name"]).is_empty());
    }

    #[test]
    fn var_files_are_loaded_after_the_automatic_ones_and_a_missing_one_is_named() {
        let mut config = Configuration::default();
        let tf = "variable \"size\" {\n  default = \"t3.small\"\n}\nvariable \"region\" {}\nresource \"aws_instance\" \"a\" {\n  instance_type = var.size\n  availability_zone = var.region\n}\n";
        assert!(config.add_file("t/main.tf", tf).is_empty());
        assert!(config.add_file("t/terraform.tfvars", "size = \"m5.large\"\nregion = \"eu-west-1a\"\n").is_empty());
        assert!(config.add_file("t/env/prod.tfvars", "size = \"p5.48xlarge\"\n").is_empty());
        let after = |plan: Option<Plan>| plan.expect("a plan").changes[0].after.clone().expect("after");
        // Not named: the file is not loaded.
        let (plan, diags) = synthesize(&config, "t");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(after(plan)["instance_type"], "m5.large");
        // Named, as -var-file: it wins over terraform.tfvars; what it does not set stays.
        let (plan, diags) = synthesize_with(&config, "t", &["env/prod.tfvars".into()]);
        assert!(diags.is_empty(), "{diags:?}");
        let a = after(plan);
        assert_eq!(
            (a["instance_type"].as_str(), a["availability_zone"].as_str()),
            (Some("p5.48xlarge"), Some("eu-west-1a"))
        );
        // A file that is not there is an error, and the rest is still worked out.
        let (plan, diags) = synthesize_with(&config, "t", &["env/staging.tfvars".into()]);
        assert_eq!(after(plan)["instance_type"], "m5.large");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].message.contains("t/env/staging.tfvars"), "{diags:?}");
    }

    #[test]
    fn a_module_with_count_or_for_each_has_one_instance_per_index_or_key() {
        let mut config = Configuration::default();
        let root = r#"
module "zone" {
  source   = "./zone"
  for_each = toset(["eu", "us"])
  name     = each.key
}
module "spare" {
  source = "./zone"
  count  = 2
  name   = "spare-${count.index}"
}
"#;
        let zone = "variable \"name\" {}\nresource \"aws_s3_bucket\" \"b\" {\n  bucket = var.name\n}\n";
        assert!(config.add_file("t/main.tf", root).is_empty());
        assert!(config.add_file("t/zone/main.tf", zone).is_empty());
        let (plan, diags) = synthesize(&config, "t");
        assert!(diags.is_empty(), "{diags:?}");
        let plan = plan.expect("a plan");
        let found: Vec<(&str, &str, Option<&str>)> = plan
            .changes
            .iter()
            .map(|c| {
                let bucket = c.after.as_ref().and_then(|a| a.get("bucket")).and_then(Value::as_str);
                (c.address.as_str(), c.module_address.as_str(), bucket)
            })
            .collect();
        assert_eq!(
            found,
            [
                (r#"module.zone["eu"].aws_s3_bucket.b"#, r#"module.zone["eu"]"#, Some("eu")),
                (r#"module.zone["us"].aws_s3_bucket.b"#, r#"module.zone["us"]"#, Some("us")),
                ("module.spare[0].aws_s3_bucket.b", "module.spare[0]", Some("spare-0")),
                ("module.spare[1].aws_s3_bucket.b", "module.spare[1]", Some("spare-1")),
            ]
        );
        // Every instance is declared by the one block of the module's directory.
        assert_eq!(plan.changes[3].config_address(), "module.spare.aws_s3_bucket.b");
        assert_eq!(plan.changes[3].line, 2);
    }
}

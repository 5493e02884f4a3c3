//! Terraform and OpenTofu plans as `terraform show -json` / `tofu show -json` write them
//! (the "JSON Output Format", format versions 0.1 to 1.x).
//!
//! A plan is kept whole (policies read it as conftest gives it to them: `input` is the plan
//! document) and its resource changes are also read into [`ResourceChange`]s, each with the
//! action it takes, for costing and for naming the resource a finding is about.

use serde_json::Value;

use crate::Diagnostic;

/// What Terraform will do to one resource instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Nothing (`["no-op"]`).
    NoOp,
    /// Create it (`["create"]`).
    Create,
    /// Read a data source (`["read"]`).
    Read,
    /// Update it in place (`["update"]`).
    Update,
    /// Destroy it (`["delete"]`).
    Delete,
    /// Destroy it and create it again (`["delete", "create"]` or, created first,
    /// `["create", "delete"]`).
    Replace,
    /// Remove it from the state without destroying it (`["forget"]`, Terraform 1.7+).
    Forget,
}

impl Action {
    /// The action of a change's `actions` list, or `None` for a list no format version writes.
    pub fn from_actions(actions: &[&str]) -> Option<Action> {
        Some(match actions {
            ["no-op"] => Action::NoOp,
            ["create"] => Action::Create,
            ["read"] => Action::Read,
            ["update"] => Action::Update,
            ["delete"] => Action::Delete,
            ["delete", "create"] | ["create", "delete"] => Action::Replace,
            ["forget"] => Action::Forget,
            _ => return None,
        })
    }

    /// The name used in reports: `create`, `update`, `replace`...
    pub fn as_str(self) -> &'static str {
        match self {
            Action::NoOp => "no-op",
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Replace => "replace",
            Action::Forget => "forget",
        }
    }

    /// Whether the resource exists after the change.
    pub fn exists_after(self) -> bool {
        matches!(self, Action::NoOp | Action::Create | Action::Update | Action::Replace | Action::Read)
    }

    /// Whether the resource existed before the change.
    pub fn existed_before(self) -> bool {
        matches!(self, Action::NoOp | Action::Update | Action::Delete | Action::Replace | Action::Forget)
    }
}

/// One resource instance's planned change (an element of `resource_changes`) or, for drift, a
/// change made outside Terraform since the last apply (an element of `resource_drift`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceChange {
    /// The instance's absolute address: `module.net.aws_instance.web[0]`.
    pub address: String,
    /// Its address before a `moved` block, when it moved.
    pub previous_address: Option<String>,
    /// The module it is in (`module.net`), empty for the root module.
    pub module_address: String,
    /// `managed` for a resource, `data` for a data source.
    pub mode: String,
    /// Resource type: `aws_instance`.
    pub kind: String,
    /// Resource name in its module: `web`.
    pub name: String,
    /// `count` or `for_each` key, when there is one.
    pub index: Option<Value>,
    /// The provider: `registry.terraform.io/hashicorp/aws`.
    pub provider: String,
    /// What happens to it.
    pub action: Action,
    /// The attributes before (`None` when it does not exist yet).
    pub before: Option<Value>,
    /// The attributes after, with attributes not known until apply left out (`None` when
    /// it will no longer exist).
    pub after: Option<Value>,
    /// Which attributes of `after` are known only after apply (`true` at their place).
    pub after_unknown: Value,
    /// Why it is replaced or read, when Terraform says (`action_reason`).
    pub reason: Option<String>,
    /// Its place in the plan's list (`resource_changes[position]`).
    pub position: usize,
    /// The 1-based line of the plan file where it is written (1 for a plan on one line).
    pub line: u32,
}

impl ResourceChange {
    /// The address without its instance key: `module.net.aws_instance.web[0]` is
    /// `module.net.aws_instance.web`, what a configuration block declares.
    pub fn config_address(&self) -> String {
        let prefix = if self.module_address.is_empty() { String::new() } else { format!("{}.", self.module_address) };
        let data = if self.mode == "data" { "data." } else { "" };
        // Keys of the module instance (`module.a["x"]`) are not part of a block's address.
        let module: String = strip_keys(&prefix);
        format!("{module}{data}{}.{}", self.kind, self.name)
    }

    fn parse(
        value: &Value,
        position: usize,
        path: &str,
        at: &str,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<ResourceChange> {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
        let Some(address) = text("address") else {
            diagnostics.push(Diagnostic::error(path, format!("{at}: a resource change without an address; skipped")));
            return None;
        };
        let change = value.get("change").filter(|c| c.is_object());
        let actions: Option<Vec<&str>> = change
            .and_then(|c| c.get("actions"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect());
        let Some(action) = actions.as_deref().and_then(Action::from_actions) else {
            diagnostics.push(Diagnostic::error(
                path,
                format!("{at} ({address}): change.actions is missing or not one Terraform writes; skipped"),
            ));
            return None;
        };
        let object = |key: &str| change.and_then(|c| c.get(key)).filter(|v| !v.is_null()).cloned();
        Some(ResourceChange {
            previous_address: text("previous_address"),
            module_address: text("module_address").unwrap_or_default(),
            mode: text("mode").unwrap_or_else(|| "managed".into()),
            kind: text("type").unwrap_or_default(),
            name: text("name").unwrap_or_default(),
            index: value.get("index").cloned(),
            provider: text("provider_name").unwrap_or_default(),
            action,
            before: object("before"),
            after: object("after"),
            after_unknown: object("after_unknown").unwrap_or(Value::Object(Default::default())),
            reason: text("action_reason"),
            position,
            line: 1,
            address,
        })
    }
}

/// `module.a["x"].module.b[0].` without instance keys: `module.a.module.b.`.
fn strip_keys(address: &str) -> String {
    let mut out = String::with_capacity(address.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut chars = address.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' if depth > 0 => quoted = !quoted,
            '\\' if quoted => {
                chars.next();
            }
            '[' if !quoted => depth += 1,
            ']' if !quoted => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The line of each change in the plan's text: its address's first appearance after the list's
/// key and after the change before it (plans written on one line are all on line 1).
fn place(text: &str, key: &str, changes: &mut [ResourceChange]) {
    let Some(mut from) = text.find(key) else { return };
    let mut line = 1 + text[..from].matches('\n').count() as u32;
    for change in changes {
        let needle = serde_json::to_string(&change.address).unwrap_or_default();
        let Some(found) = text[from..].find(&needle) else { return };
        line += text[from..from + found].matches('\n').count() as u32;
        from += found;
        change.line = line;
    }
}

/// A plan read from a file.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The file it was read from, relative to the estate root (or as given).
    pub path: String,
    /// `format_version`.
    pub format_version: String,
    /// `terraform_version`, when written (OpenTofu writes its own version there).
    pub terraform_version: Option<String>,
    /// The whole document: what policies read as `input`.
    pub document: Value,
    /// `resource_changes`, in the file's order.
    pub changes: Vec<ResourceChange>,
    /// `resource_drift`: what changed outside Terraform since the last apply.
    pub drift: Vec<ResourceChange>,
    /// Whether planning failed (`errored`): the changes are then incomplete.
    pub errored: bool,
    /// For a plan worked out from `.tf` files ([`super::eval::synthesize`]), the root module's
    /// directory; `None` for a plan Terraform wrote.
    pub root: Option<String>,
}

impl Plan {
    /// What an attribute of a change's configuration refers to (`configuration` →
    /// `expressions` → `references`, as Terraform writes it): `path` walks nested blocks
    /// (`["launch_template", "id"]`; a block written as a list is read at its first element).
    pub fn references(&self, change: &ResourceChange, path: &[&str]) -> Vec<String> {
        let mut module = match self.document.pointer("/configuration/root_module") {
            Some(m) => m,
            None => return Vec::new(),
        };
        let prefix = strip_keys(&if change.module_address.is_empty() {
            String::new()
        } else {
            format!("{}.", change.module_address)
        });
        for call in prefix.split('.').collect::<Vec<_>>().chunks(2).filter(|c| c.len() == 2 && c[0] == "module") {
            match module.pointer(&format!("/module_calls/{}/module", call[1])) {
                Some(m) => module = m,
                None => return Vec::new(),
            }
        }
        let data = if change.mode == "data" { "data." } else { "" };
        let address = format!("{data}{}.{}", change.kind, change.name);
        let resource = module
            .get("resources")
            .and_then(Value::as_array)
            .and_then(|rs| rs.iter().find(|r| r.get("address").and_then(Value::as_str) == Some(address.as_str())));
        let mut at = match resource.and_then(|r| r.get("expressions")) {
            Some(e) => e,
            None => return Vec::new(),
        };
        for key in path {
            at = match at.get(*key) {
                Some(Value::Array(items)) if items.first().is_some_and(Value::is_object) => &items[0],
                Some(v) => v,
                None => return Vec::new(),
            };
        }
        at.get("references")
            .and_then(Value::as_array)
            .map(|rs| rs.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The resource (in the same module) an attribute of a change refers to: its first
    /// instance, when the plan holds it.
    pub fn referenced(&self, change: &ResourceChange, path: &[&str]) -> Option<&ResourceChange> {
        let module = strip_keys(&if change.module_address.is_empty() {
            String::new()
        } else {
            format!("{}.", change.module_address)
        });
        self.references(change, path).iter().find_map(|reference| {
            // `aws_launch_template.web.id`, `aws_launch_template.web[0].id` → aws_launch_template.web
            let mut parts = reference.split('.');
            let (kind, name) = (parts.next()?, parts.next()?);
            if matches!(kind, "var" | "local" | "module" | "data" | "each" | "count" | "path" | "self" | "terraform") {
                return None;
            }
            let name = name.split('[').next().unwrap_or(name);
            let target = format!("{module}{kind}.{name}");
            let mut candidates = self.changes.iter().filter(|c| c.mode == "managed" && c.config_address() == target);
            // `aws_launch_configuration.x.*.id[count.index]`: the instance of the same index.
            let first = candidates.next()?;
            let same =
                std::iter::once(first).chain(candidates).find(|c| change.index.is_some() && c.index == change.index);
            Some(same.unwrap_or(first))
        })
    }
}

/// Whether a JSON document looks like a plan (rather than a state file or a `.tf.json`).
pub fn looks_like_plan(value: &Value) -> bool {
    value.get("format_version").is_some()
        && ["resource_changes", "planned_values", "configuration", "prior_state", "errored"]
            .iter()
            .any(|k| value.get(*k).is_some())
}

/// Reads a plan. `None` (with an error diagnostic) when the file is not a plan this version
/// reads; a plan with unreadable resource changes keeps the rest, each problem reported.
pub fn parse(path: &str, text: &str) -> (Option<Plan>, Vec<Diagnostic>) {
    // Wrapper scripts (terraform run through a helper) sometimes print a line before the JSON.
    let start = text.find('{').unwrap_or(0);
    let document: Value = match serde_json::from_str(&text[start..]) {
        Ok(v) => v,
        Err(e) => {
            let line = text[..start].matches('\n').count() as u32 + e.line() as u32;
            let d = Diagnostic::error(path, format!("not a Terraform plan: invalid JSON: {e}"));
            return (None, vec![d.at(line, Some(e.column() as u32))]);
        }
    };
    let (mut plan, diagnostics) = read(path, document);
    if let Some(plan) = &mut plan {
        place(text, "\"resource_changes\"", &mut plan.changes);
        place(text, "\"resource_drift\"", &mut plan.drift);
    }
    (plan, diagnostics)
}

/// Reads a plan document already parsed (each change on line 1: there is no text to place it
/// in).
pub fn read(path: &str, document: Value) -> (Option<Plan>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let Some(version) = document.get("format_version").and_then(Value::as_str).map(str::to_string) else {
        diagnostics.push(Diagnostic::error(
            path,
            "not a Terraform plan: no format_version (write plans with `terraform show -json PLANFILE`)",
        ));
        return (None, diagnostics);
    };
    let major = version.split('.').next().and_then(|m| m.parse::<u32>().ok());
    if major.is_none_or(|m| m > 1) {
        diagnostics.push(Diagnostic::error(
            path,
            format!("plan format_version {version} is not supported (this version reads 0.1 to 1.x)"),
        ));
        return (None, diagnostics);
    }
    let list = |key: &str, diagnostics: &mut Vec<Diagnostic>| -> Vec<ResourceChange> {
        match document.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| ResourceChange::parse(item, i, path, &format!("{key}[{i}]"), diagnostics))
                .collect(),
            Some(_) => {
                diagnostics.push(Diagnostic::error(path, format!("{key} is not a list; its changes are not read")));
                Vec::new()
            }
        }
    };
    let changes = list("resource_changes", &mut diagnostics);
    let drift = list("resource_drift", &mut diagnostics);
    let errored = document.get("errored").and_then(Value::as_bool).unwrap_or(false);
    if errored {
        diagnostics.push(Diagnostic::error(
            path,
            "the plan errored (`errored: true`): Terraform could not plan every change; what it planned is checked",
        ));
    }
    let plan = Plan {
        path: path.to_string(),
        terraform_version: document.get("terraform_version").and_then(Value::as_str).map(str::to_string),
        format_version: version,
        changes,
        drift,
        errored,
        document,
        root: None,
    };
    (Some(plan), diagnostics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_addresses() {
        assert_eq!(Action::from_actions(&["create", "delete"]), Some(Action::Replace));
        assert_eq!(Action::from_actions(&["delete", "create"]), Some(Action::Replace));
        assert_eq!(Action::from_actions(&["create", "update"]), None);
        assert_eq!(strip_keys(r#"module.a["x]"].module.b[0]."#), "module.a.module.b.");
        let (plan, diags) = parse(
            "p.json",
            r#"{"format_version":"1.2","resource_changes":[
                {"address":"module.a[\"k\"].aws_instance.web[0]","module_address":"module.a[\"k\"]","mode":"managed",
                 "type":"aws_instance","name":"web","index":0,"change":{"actions":["create"],"before":null,"after":{"ami":"x"}}},
                {"address":"x.y","change":{"actions":["explode"]}}]}"#,
        );
        let plan = plan.expect("a plan");
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(plan.changes[0].config_address(), "module.a.aws_instance.web");
        assert_eq!(plan.changes[0].before, None);
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.contains("resource_changes[1] (x.y)"), "{}", diags[0].message);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let (plan, diags) = parse("p.json", r#"{"format_version":"2.0","resource_changes":[]}"#);
        assert!(plan.is_none());
        assert!(diags[0].message.contains("format_version 2.0 is not supported"));
        let (plan, diags) = parse("p.json", "{\n \"format_version\": \"1.0\",\n \"resource_changes\": [\n");
        assert!(plan.is_none());
        assert_eq!(diags[0].line, Some(4), "{diags:?}");
    }
}

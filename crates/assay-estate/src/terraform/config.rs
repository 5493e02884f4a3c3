//! Terraform configuration (`.tf` files): where each resource, data source and module call is
//! declared, so that a finding about `module.net.aws_instance.web[0]` points at the line of
//! `resource "aws_instance" "web"` in the module's directory.

use std::collections::BTreeMap;

use hcl_edit::Span as _;
use hcl_edit::expr::Expression;
use hcl_edit::structure::{Block, Body};

use crate::Diagnostic;

/// A block that declares something addressable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// Its address in its module: `aws_instance.web`, `data.aws_ami.ubuntu`, `module.net`.
    pub address: String,
    /// The `.tf` file, relative to the estate root.
    pub path: String,
    /// The 1-based line of the block's first line.
    pub line: u32,
}

/// A parsed `.tf` or `.tfvars` file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Relative to the estate root.
    pub path: String,
    /// Its text (spans of the body index it).
    pub text: String,
    /// Its blocks and attributes, with their places.
    pub body: Body,
}

impl SourceFile {
    /// The 1-based line of a byte offset.
    pub fn line(&self, at: usize) -> u32 {
        line_of(&self.text, at)
    }
}

/// The `.tf` files of an estate, by directory (a directory is a module).
#[derive(Debug, Clone, Default)]
pub struct Configuration {
    /// Per directory (`terraform/prod`), its declarations by address.
    pub modules: BTreeMap<String, BTreeMap<String, Declared>>,
    /// Per directory, its module calls with a local source: name → directory called.
    pub calls: BTreeMap<String, BTreeMap<String, String>>,
    /// Per directory, its `.tf` files.
    pub files: BTreeMap<String, Vec<SourceFile>>,
    /// Per directory, the variable files Terraform loads by itself there (`terraform.tfvars`,
    /// `*.auto.tfvars`), in the order it loads them.
    pub tfvars: BTreeMap<String, Vec<SourceFile>>,
    /// Every other variable file (`env/prod.tfvars`), by path: loaded only when named (as
    /// `-var-file` names them; `terraform.varFiles` in the settings).
    pub var_files: BTreeMap<String, SourceFile>,
    /// Infracost usage files (`infracost-usage.yml`, `*.usage.yml`): (path, text), read by the
    /// cost side.
    pub usage_files: Vec<(String, String)>,
}

pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// `dir` joined with a relative module source (`./net`, `../shared/vpc`), normalised.
pub(crate) fn join(dir: &str, source: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in source.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> u32 {
    text.as_bytes()[..at.min(text.len())].iter().filter(|b| **b == b'\n').count() as u32 + 1
}

fn literal_string(expr: &Expression) -> Option<String> {
    match expr {
        Expression::String(s) => Some(s.value().to_string()),
        _ => None,
    }
}

impl Configuration {
    /// Reads one `.tf` file into the configuration; a file that does not parse is a diagnostic
    /// with its line and column, and the other files still count.
    pub fn add_file(&mut self, path: &str, text: &str) -> Vec<Diagnostic> {
        let body = match parse(path, text) {
            Ok(b) => b,
            Err(d) => return vec![d],
        };
        if path.ends_with(".tfvars") {
            let name = path.rsplit('/').next().unwrap_or(path);
            if name == "terraform.tfvars" || name.ends_with(".auto.tfvars") {
                let list = self.tfvars.entry(parent(path).to_string()).or_default();
                list.push(SourceFile { path: path.to_string(), text: text.to_string(), body });
                // terraform.tfvars first, then *.auto.tfvars in name order (later ones win).
                list.sort_by_key(|f| (!f.path.ends_with("/terraform.tfvars"), f.path.clone()));
            } else {
                self.var_files
                    .insert(path.to_string(), SourceFile { path: path.to_string(), text: text.to_string(), body });
            }
            return Vec::new();
        }
        let dir = parent(path).to_string();
        let mut diagnostics = Vec::new();
        for block in body.blocks() {
            let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
            let line = block.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            let address = match (block.ident.as_str(), labels.as_slice()) {
                ("resource", [kind, name]) => format!("{kind}.{name}"),
                ("data", [kind, name]) => format!("data.{kind}.{name}"),
                ("module", [name]) => {
                    if let Some(source) = attribute(block, "source").and_then(literal_string)
                        && (source.starts_with("./") || source.starts_with("../"))
                    {
                        match join(&dir, &source) {
                            Some(target) => {
                                self.calls.entry(dir.clone()).or_default().insert((*name).to_string(), target);
                            }
                            None => diagnostics.push(
                                Diagnostic::warning(
                                    path,
                                    format!("module {name}: source {source} leaves the estate; not followed"),
                                )
                                .at(line, None),
                            ),
                        }
                    }
                    format!("module.{name}")
                }
                ("resource" | "data", _) => {
                    diagnostics.push(
                        Diagnostic::error(path, format!("a {} block needs two labels (type and name)", block.ident))
                            .at(line, None),
                    );
                    continue;
                }
                _ => continue,
            };
            let declared = Declared { address: address.clone(), path: path.to_string(), line };
            let module = self.modules.entry(dir.clone()).or_default();
            if let Some(first) = module.get(&address) {
                diagnostics.push(
                    Diagnostic::error(
                        path,
                        format!("{address} is declared twice (first at {}:{})", first.path, first.line),
                    )
                    .at(line, None),
                );
                continue;
            }
            module.insert(address, declared);
        }
        self.files.entry(dir).or_default().push(SourceFile { path: path.to_string(), text: text.to_string(), body });
        diagnostics
    }

    /// The directories that are root modules: they have `.tf` files and no module of the estate
    /// calls them.
    pub fn roots(&self) -> Vec<&str> {
        let called: std::collections::BTreeSet<&String> = self.calls.values().flat_map(|c| c.values()).collect();
        self.files.keys().filter(|d| !called.contains(d)).map(String::as_str).collect()
    }

    /// Where the block of a configuration address (`module.net.aws_instance.web`, without
    /// instance keys) is declared, for the root module in `root` (a directory).
    pub fn locate(&self, root: &str, address: &str) -> Option<&Declared> {
        let mut dir = root.to_string();
        let mut rest = address;
        while let Some(after) = rest.strip_prefix("module.") {
            let (name, tail) = after.split_once('.')?;
            dir = self.calls.get(&dir)?.get(name)?.clone();
            rest = tail;
        }
        self.modules.get(&dir)?.get(rest)
    }

    /// Where a resource change of a plan is declared: its `.tf` block when the configuration is
    /// known, else its place in the plan.
    pub fn place(&self, plan: &super::Plan, change: &super::ResourceChange) -> (String, u32) {
        plan.root
            .as_deref()
            .or_else(|| self.root_for(&plan.path))
            .and_then(|root| self.locate(root, &change.config_address()))
            .map(|d| (d.path.clone(), d.line))
            .unwrap_or_else(|| (plan.path.clone(), change.line))
    }

    /// The root module for a plan at `plan_path`: its own directory, else the nearest one above
    /// it with `.tf` files, else the only directory with `.tf` files that no module calls.
    pub fn root_for(&self, plan_path: &str) -> Option<&str> {
        let mut dir = parent(plan_path);
        loop {
            if let Some((d, _)) = self.modules.get_key_value(dir) {
                return Some(d);
            }
            if dir.is_empty() {
                break;
            }
            dir = parent(dir);
        }
        let called: std::collections::BTreeSet<&String> = self.calls.values().flat_map(|c| c.values()).collect();
        let mut roots = self.modules.keys().filter(|d| !called.contains(d));
        match (roots.next(), roots.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }
}

/// Parses HCL, or says where it is broken.
pub(crate) fn parse(path: &str, text: &str) -> Result<Body, Diagnostic> {
    hcl_edit::parser::parse_body(text).map_err(|e| {
        let location = e.location();
        let message = e.message().lines().next().unwrap_or("syntax error").trim().to_string();
        Diagnostic::error(path, format!("HCL syntax error: {message}"))
            .at(location.line() as u32, Some(location.column() as u32))
    })
}

pub(crate) fn attribute<'a>(block: &'a Block, key: &str) -> Option<&'a Expression> {
    block.body.get_attribute(key).map(|a| &a.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_blocks_through_local_modules() {
        let mut c = Configuration::default();
        let d = c.add_file(
            "terraform/prod/main.tf",
            "provider \"aws\" {}\n\nmodule \"net\" {\n  source = \"../modules/net\"\n}\n\nresource \"aws_s3_bucket\" \"logs\" {\n  bucket = \"x\"\n}\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let d = c.add_file("terraform/modules/net/nat.tf", "# NAT\nresource \"aws_nat_gateway\" \"egress\" {\n}\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.root_for("terraform/prod/plan.json"), Some("terraform/prod"));
        let bucket = c.locate("terraform/prod", "aws_s3_bucket.logs").expect("located");
        assert_eq!((bucket.path.as_str(), bucket.line), ("terraform/prod/main.tf", 7));
        let nat = c.locate("terraform/prod", "module.net.aws_nat_gateway.egress").expect("located");
        assert_eq!((nat.path.as_str(), nat.line), ("terraform/modules/net/nat.tf", 2));
        assert!(c.locate("terraform/prod", "module.other.aws_nat_gateway.egress").is_none());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let mut c = Configuration::default();
        let d = c.add_file("terraform/bad.tf", "resource \"a\" \"b\" {\n  x = \n}\n");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].line, d[0].column), (Some(2), Some(7)), "{d:?}");
        assert!(d[0].message.starts_with("HCL syntax error"), "{d:?}");
    }
}

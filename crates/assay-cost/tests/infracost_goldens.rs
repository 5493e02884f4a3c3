//! Infracost's own test configurations (`../shared/conformance/terraform/infracost-hcl`), read
//! from `.tf` (and their usage files) without a plan, priced with a catalog holding the unit
//! prices of Infracost's golden breakdowns: for the resource types assay prices, the monthly
//! quantities and costs of the golden cost lines are matched within 1%.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assay_cost::terraform::{self, PRICED_TYPES};
use assay_estate::PriceCatalog;
use assay_estate::pricing::RegionPrices;
use assay_estate::terraform::{Configuration, eval};

/// A cost line's resource address, group and name.
type Key = (String, String, String);

/// One cost line of a golden breakdown.
#[derive(Debug, Clone)]
struct Line {
    address: String,
    group: String,
    name: String,
    quantity: Option<f64>,
    cost: Option<f64>,
}

fn amount(text: &str) -> Option<f64> {
    text.trim().trim_start_matches('$').replace(',', "").parse().ok()
}

/// Reads the breakdown table of a golden file.
fn golden(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut address = String::new();
    let mut groups: Vec<String> = Vec::new();
    for raw in text.lines() {
        if raw.contains("OVERALL TOTAL") {
            break;
        }
        let Some(at) = raw.find("─ ") else {
            let trimmed = raw.trim();
            if raw.starts_with(' ')
                && !trimmed.is_empty()
                && !trimmed.starts_with("Name")
                && trimmed.split_whitespace().count() == 1
            {
                address = trimmed.to_string();
                groups.clear();
            }
            continue;
        };
        let depth = (raw[..at].chars().count() + 1) / 3;
        let rest = raw[at + "─ ".len()..].trim_end().trim_end_matches('*').trim_end();
        groups.truncate(depth.saturating_sub(1));
        if let Some((name, price)) = rest.split_once("Monthly cost depends on usage:") {
            let _ = price;
            out.push(Line {
                address: address.clone(),
                group: groups.join("/"),
                name: name.trim().to_string(),
                quantity: None,
                cost: None,
            });
            continue;
        }
        let columns: Vec<&str> = rest.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
        if columns.len() >= 3 && columns.last().is_some_and(|c| c.starts_with('$')) {
            let name = columns[0].to_string();
            let (quantity, _unit) = columns[1].split_once(' ').unwrap_or((columns[1], ""));
            out.push(Line {
                address: address.clone(),
                group: groups.join("/"),
                name,
                quantity: amount(quantity),
                cost: columns.last().and_then(|c| amount(c)),
            });
        } else {
            groups.push(rest.trim().to_string());
        }
    }
    out
}

fn folders() -> Option<Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/terraform/infracost-hcl");
    if !root.is_dir() {
        eprintln!("{} not found: Infracost goldens not compared", root.display());
        return None;
    }
    let mut out = Vec::new();
    for cloud in ["aws", "azure", "google"] {
        for entry in std::fs::read_dir(root.join(cloud)).expect("cloud folder") {
            out.push(entry.expect("entry").path());
        }
    }
    out.sort();
    Some(out)
}

fn read(dir: &Path, ext: &str) -> Option<String> {
    std::fs::read_dir(dir)
        .expect("folder")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with(ext))
        .map(|p| std::fs::read_to_string(p).expect("file"))
}

#[test]
fn priced_types_match_infracost_goldens() {
    let Some(folders) = folders() else { return };
    let (mut matched, mut total) = (0usize, 0usize);
    let mut report = Vec::new();
    for dir in folders {
        let name = dir.file_name().expect("name").to_string_lossy().to_string();
        let mut config = Configuration::default();
        let diags = config.add_file(&format!("t/{name}/main.tf"), &read(&dir, ".tf").expect("tf"));
        assert!(diags.is_empty(), "{name}: {diags:?}");
        let (plan, _) = eval::synthesize(&config, &format!("t/{name}"));
        let plan = plan.expect("a plan");
        let usage = read(&dir, ".usage.yml").map(|t| terraform::parse_usage(&t).expect("usage")).unwrap_or_default();
        let lines: Vec<Line> = golden(&read(&dir, ".golden").expect("golden"))
            .into_iter()
            .filter(|l| PRICED_TYPES.iter().any(|t| l.address.starts_with(&format!("{t}."))))
            .collect();
        if lines.is_empty() {
            continue;
        }
        // First without prices: which price key each golden line is.
        let unpriced = terraform::price_plans(&[&plan], &usage, &PriceCatalog::default());
        // Each key's unit price from its golden line with the largest cost (the least rounded).
        let mut best: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
        for (cost, _) in &unpriced {
            let region = cost.region.clone().unwrap_or_default();
            for c in &cost.components {
                let golden = lines.iter().find(|l| l.address == cost.address && l.group == c.group && l.name == c.name);
                if let Some(Line { quantity: Some(q), cost: Some(m), .. }) = golden
                    && *q > 0.0
                {
                    let entry = best.entry((region.clone(), c.price_key.clone())).or_insert((-1.0, 0.0));
                    if *m > entry.0 {
                        *entry = (*m, m / (q * c.factor));
                    }
                }
            }
        }
        let mut catalog = PriceCatalog::default();
        for ((region, key), (_, price)) in best {
            let prices: &mut RegionPrices = catalog.regions.entry(region).or_default();
            prices.products.insert(key, price);
        }
        let priced = terraform::price_plans(&[&plan], &usage, &catalog);
        let by_line: BTreeMap<Key, (Option<f64>, Option<f64>)> = priced
            .iter()
            .flat_map(|(cost, _)| {
                cost.components
                    .iter()
                    .map(|c| ((cost.address.clone(), c.group.clone(), c.name.clone()), (c.quantity, c.monthly)))
            })
            .collect();
        let close = |a: f64, b: f64| (a - b).abs() <= 0.01 * b.abs().max(0.01);
        // Golden costs are printed in cents: within 1%, or the same to the cent.
        let close_cost = |a: f64, b: f64| close(a, b) || (a - b).abs() < 0.005;
        let (mut ok, mut all) = (0, 0);
        for l in &lines {
            all += 1;
            let found = by_line.get(&(l.address.clone(), l.group.clone(), l.name.clone()));
            let good = match (found, l.quantity, l.cost) {
                (Some((Some(q), Some(m))), Some(gq), Some(gm)) => close(*q, gq) && close_cost(*m, gm),
                // "Monthly cost depends on usage": assay says the same.
                (Some((None, _)), None, None) => true,
                _ => false,
            };
            if good {
                ok += 1;
            } else {
                report.push(format!(
                    "{name}: {} {}/{}: golden {:?} {:?}, assay {:?}",
                    l.address, l.group, l.name, l.quantity, l.cost, found
                ));
            }
        }
        eprintln!("{name}: {ok}/{all} cost lines match");
        matched += ok;
        total += all;
    }
    eprintln!("{}", report.join("\n"));
    eprintln!("all priced folders: {matched}/{total} cost lines match");
    assert!(total > 0);
    assert!(matched * 100 >= total * 80, "{matched}/{total} cost lines match:\n{}", report.join("\n"));
}

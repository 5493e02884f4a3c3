//! SQL as FinOps practitioners write it: queries of the FinOps Foundation's FOCUS use-case
//! library (focus.finops.org/use-cases), written out here as the library publishes them (column
//! names unquoted and in the specification's case, or not: `BillingAccountID`; `?` for the
//! period; `MONTH(...)`; the table `focus_data_table`), run unchanged by `assay cost query`
//! over generated billing data, and answered independently by DuckDB reading the same
//! generated CSV files (not assay's store). The answers must be the same, row for row.

mod common;

use std::path::Path;

use common::{assay, stderr, stdout};
use serde_json::{Value, json};

/// (use case, its page, the query as published, what its `?` stand for).
const USE_CASES: &[(&str, &str, &str, &[Param])] = &[
    (
        "Understand the billing account or sub account entity",
        "https://focus.finops.org/use-case/understand-the-billing-account-or-sub-account-entity/",
        "SELECT DISTINCT ProviderName,
                BillingAccountID,
                BillingAccountName,
                BillingAccountType
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  and ChargePeriodEnd < ?",
        &[Param::From, Param::To],
    ),
    (
        "Analyze credit memos",
        "https://focus.finops.org/use-case/analyze-credit-memos/",
        "SELECT ProviderName,
       InvoiceID,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  and ChargePeriodEnd < ?
  AND ChargeCategory = 'Credit'
GROUP BY ProviderName,
         InvoiceID",
        &[Param::From, Param::To],
    ),
    (
        "Report costs by service category and subcategory",
        "https://focus.finops.org/use-case/report-costs-by-service-category-and-subcategory/",
        "SELECT ProviderName,
       BillingCurrency,
       BillingPeriodStart,
       ServiceCategory,
       ServiceSubcategory,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  and BillingPeriodEnd < ?
GROUP BY ProviderName,
         BillingCurrency,
         BillingPeriodStart,
         ServiceCategory,
         ServiceSubcategory
ORDER BY TotalBilledCost DESC",
        &[Param::From, Param::To],
    ),
    (
        "Corrections by sub account",
        "https://focus.finops.org/use-case/corrections-by-subaccount/",
        "SELECT ProviderName,
       BillingAccountId,
       ServiceCategory,
       SubAccountId,
       SubAccountName,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  AND BillingPeriodEnd < ?
  AND ChargeClass = 'Correction'
GROUP BY ProviderName,
         BillingAccountId,
         SubAccountId,
         SubAccountName,
         ServiceCategory",
        &[Param::From, Param::To],
    ),
    (
        "Analyze service costs by region",
        "https://focus.finops.org/use-case/analyze-service-costs-by-region/",
        "SELECT ChargePeriodStart,
       ProviderName,
       RegionId,
       ServiceName,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  and ChargePeriodEnd < ?
GROUP BY ChargePeriodStart,
         ProviderName,
         RegionId,
         ServiceName
ORDER BY ChargePeriodStart,
         SUM(EffectiveCost) DESC",
        &[Param::From, Param::To],
    ),
    (
        "Service costs month over month",
        "https://focus.finops.org/use-case/service-costs-month-over-month/",
        "SELECT MONTH(ChargePeriodStart),
       ProviderName,
       ServiceName,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  AND ChargePeriodStart < ?
GROUP BY MONTH(ChargePeriodStart),
         ProviderName,
         ServiceName
ORDER BY MONTH(ChargePeriodStart),
         SUM(EffectiveCost) DESC",
        &[Param::From, Param::To],
    ),
    (
        "Effective cost of compute",
        "https://focus.finops.org/use-case/effective-cost-compute/",
        "SELECT CommitmentDiscountType,
       ProviderName,
       ServiceName,
       SubAccountId,
       SubAccountName,
       BillingPeriodStart,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  AND BillingPeriodEnd <= ?
  AND ServiceCategory = 'Compute'
GROUP BY CommitmentDiscountType,
         ServiceName,
         ProviderName,
         SubAccountId,
         SubAccountName,
         BillingPeriodStart",
        &[Param::From, Param::To],
    ),
    (
        "Commitment discount purchases",
        "https://focus.finops.org/use-case/commitment-discount-purchases/",
        "SELECT MIN(ChargePeriodStart) AS ChargePeriodStart,
       MAX(ChargePeriodEnd) AS ChargePeriodEnd,
       ProviderName,
       BillingAccountId,
       CommitmentDiscountId,
       CommitmentDiscountType,
       CommitmentDiscountUnit,
       CommitmentDiscountQuantity,
       ChargeFrequency,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  AND ChargePeriodEnd < ?
  AND ChargeCategory = 'Purchase'
  AND CommitmentDiscountId IS NOT NULL
GROUP BY ProviderName,
         BillingAccountId,
         CommitmentDiscountId,
         CommitmentDiscountType,
         CommitmentDiscountUnit,
         CommitmentDiscountQuantity,
         ChargeFrequency",
        &[Param::From, Param::To],
    ),
    (
        "Costs by availability zone",
        "https://focus.finops.org/use-case/costs-by-availability-zone/",
        "SELECT ProviderName,
       RegionName,
       AvailabilityZone,
       BillingPeriodStart,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE SubAccountId = ?
  AND ChargePeriodStart >= ?
  AND ChargePeriodEnd < ?
GROUP BY ProviderName,
         RegionName,
         AvailabilityZone,
         BillingPeriodStart
ORDER BY ProviderName,
         RegionName,
         AvailabilityZone,
         BillingPeriodStart",
        &[Param::SubAccount, Param::From, Param::To],
    ),
    (
        "Report sub account regions",
        "https://focus.finops.org/use-case/report-subaccount-regions/",
        "SELECT ProviderName,
       SubAccountId,
       RegionId RegionName,
       COUNT(1)
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  AND ChargePeriodEnd < ?
GROUP BY ProviderName,
         SubAccountId,
         RegionId,
         RegionName",
        &[Param::From, Param::To],
    ),
    (
        "Verify service charges",
        "https://focus.finops.org/use-case/verify-service-charges/",
        "SELECT ProviderName,
       BillingAccountId,
       BillingAccountName,
       BillingCurrency,
       ServiceName,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  AND BillingPeriodEnd < ?
GROUP BY ProviderName,
         BillingAccountName,
         BillingAccountId,
         BillingCurrency,
         ServiceName",
        &[Param::From, Param::To],
    ),
    (
        "Cost of compute by sub account",
        "https://focus.finops.org/use-case/cost-compute-subaccount/",
        "SELECT Min(ChargePeriodStart),
       Max(ChargePeriodEnd),
       ServiceName,
       ResourceId,
       ResourceName,
       SUM(PricingQuantity),
       SUM(EffectiveCost) AS MonthlyEffectiveCost
FROM focus_data_table
WHERE SubAccountId = ?
  AND ServiceCategory = 'Compute'
  AND ChargePeriodStart >= ?
  and ChargePeriodEnd < ?
GROUP BY ServiceName,
         ResourceId,
         ResourceName
ORDER BY MonthlyEffectiveCost DESC",
        &[Param::SubAccount, Param::From, Param::To],
    ),
    (
        "Verify discounts applied",
        "https://focus.finops.org/use-case/verify-discounts-applied/",
        "SELECT ProviderName,
       BillingAccountId,
       BillingAccountName,
       BillingCurrency,
       ServiceName,
       SUM(EffectiveCost) AS TotalEffectiveCost,
       SUM(ListCost) AS TotalListCost,
       SUM(BilledCost) AS TotalBilledCost,
       (SUM(EffectiveCost) / SUM(BilledCost)) * 100 AS EffectiveDiscount
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  AND BillingPeriodEnd < ?
  AND ChargeClass != 'Correction'
GROUP BY ProviderName,
         BillingAccountId,
         BillingAccountName,
         BillingCurrency,
         ServiceName",
        &[Param::From, Param::To],
    ),
    (
        "Compare usage month over month",
        "https://focus.finops.org/use-case/compare-usage-month-over-month/",
        "SELECT MONTH(ChargePeriodStart),
       ProviderName,
       ServiceName,
       ResourceId,
       SkuId,
       ConsumedUnit,
       SUM(ConsumedQuantity) AS TotalConsumedQuantity
FROM focus_data_table
WHERE ChargeCategory = 'Usage'
  AND ChargePeriodStart >= ?
  and ChargePeriodEnd < ?
GROUP BY MONTH(ChargePeriodStart),
         ProviderName,
         ServiceName,
         ResourceId,
         SkuId,
         ConsumedUnit",
        &[Param::From, Param::To],
    ),
    (
        "Analyze capacity reservations on compute costs",
        "https://focus.finops.org/use-case/analyze-capacity-reservations-on-compute-costs/",
        "SELECT CASE
           WHEN CapacityReservationId IS NOT NULL
                AND CapacityReservationStatus = 'Unused' THEN 'Unused Capacity Reservation'
           WHEN CapacityReservationId IS NOT NULL
                AND CapacityReservationStatus = 'Used' THEN 'Compute using Capacity Reservation'
           ELSE 'Compute without Capacity Reservation'
       END AS Status,
       ProviderName,
       BillingAccountId,
       SUM(BilledCost) AS TotalBilledCost,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  AND ChargePeriodEnd < ?
  AND ServiceCategory = 'Compute'
GROUP BY ProviderName,
         BillingAccountId,
         CapacityReservationId,
         CapacityReservationStatus",
        &[Param::From, Param::To],
    ),
];

/// What a `?` of a use case stands for.
#[derive(Debug, Clone, Copy)]
enum Param {
    /// The first day asked about.
    From,
    /// The day after the last.
    To,
    /// A sub account of the data.
    SubAccount,
}

const FROM: &str = "2026-01-01";
const TO: &str = "2026-03-01";

/// A cell as both engines can be compared on: a number, or text (date-times as
/// `YYYY-MM-DDTHH:MM:SS`, NULL as the empty string).
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Cell {
    Number(f64),
    Text(String),
}

fn cell(text: &str) -> Cell {
    let t = text.trim();
    let b = t.as_bytes();
    if t.len() >= 19 && b[4] == b'-' && (b[10] == b'T' || b[10] == b' ') {
        return Cell::Text(format!("{}T{}", &t[..10], &t[11..19]));
    }
    t.parse::<f64>().map_or_else(|_| Cell::Text(t.to_string()), Cell::Number)
}

/// Rows of CSV with a header, sorted; and the number of columns.
fn rows_of_csv(text: &str) -> (usize, Vec<Vec<Cell>>) {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let columns = reader.headers().expect("header").len();
    let mut rows: Vec<Vec<Cell>> = reader.records().map(|r| r.expect("row").iter().map(cell).collect()).collect();
    rows.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    (columns, rows)
}

/// The same answer: the same text, and numbers equal but for the rounding of binary floating
/// point (DuckDB reads the CSV's amounts as doubles; assay keeps them as exact decimals).
fn same(a: &[Cell], b: &[Cell]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Cell::Number(x), Cell::Number(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()) + 1e-9,
            _ => x == y,
        })
}

/// The answers of DuckDB to every query, reading the CSV files in `gen/`, as CSV texts. The
/// FOCUS columns the files leave out (`columns` names them all) are NULL, as in assay's store.
fn duckdb(dir: &Path, columns: &[String], queries: &[(String, Vec<String>)]) -> Vec<String> {
    let python = common::python_with_pip("duckdb, pytz", &["duckdb==1.4.2", "pytz==2025.2"]);
    let script = r#"
import csv, io, json, sys, duckdb
columns, queries = json.load(sys.stdin)
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute("CREATE TABLE focus_data_table AS SELECT * FROM read_csv('gen/*.csv', header = true)")
present = {d[0].lower() for d in con.execute("SELECT * FROM focus_data_table LIMIT 0").description}
for c in columns:
    if c.lower() not in present:
        con.execute(f'ALTER TABLE focus_data_table ADD COLUMN "{c}" VARCHAR')
out = []
for sql, params in queries:
    cur = con.execute(sql, params)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([d[0] for d in cur.description])
    for row in cur.fetchall():
        w.writerow(["" if v is None else (v.strftime("%Y-%m-%dT%H:%M:%S") if hasattr(v, "strftime") else v) for v in row])
    out.append(buf.getvalue())
json.dump(out, sys.stdout)
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    let input = json!([columns, queries.iter().map(|(q, p)| json!([q, p])).collect::<Vec<_>>()]).to_string();
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), input.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("duckdb");
    assert!(out.status.success(), "DuckDB: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("answers")
}

#[test]
fn the_finops_foundations_use_case_queries_run_unchanged_and_answer_as_duckdb_does() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    common::scale::billing(dir, &["--days", "59", "--start", FROM, "--seed", "8"]);
    let sub_account = stdout(&assay(
        dir,
        &["cost", "--data", "data", "query", "--format", "csv", "SELECT MIN(SubAccountId) AS s FROM focus"],
    ))
    .lines()
    .nth(1)
    .expect("a sub account")
    .to_string();
    let queries: Vec<(String, Vec<String>)> = USE_CASES
        .iter()
        .map(|(_, _, sql, params)| {
            let values = params
                .iter()
                .map(|p| match p {
                    Param::From => FROM.to_string(),
                    Param::To => TO.to_string(),
                    Param::SubAccount => sub_account.clone(),
                })
                .collect();
            (sql.to_string(), values)
        })
        .collect();
    let described = stdout(&assay(dir, &["cost", "--data", "data", "query", "--format", "csv", "DESCRIBE focus"]));
    let columns: Vec<String> =
        described.lines().skip(1).filter_map(|l| l.split(',').next()).map(str::to_string).collect();
    assert!(columns.len() > 40, "{described}");
    let expected = duckdb(dir, &columns, &queries);
    let mut nonempty = 0;
    for ((name, url, _, _), ((sql, params), duck)) in USE_CASES.iter().zip(queries.iter().zip(&expected)) {
        let mut args = vec!["cost", "--data", "data", "query", "--format", "csv"];
        for p in params {
            args.extend(["--param", p.as_str()]);
        }
        args.push(sql);
        let out = assay(dir, &args);
        assert_eq!(out.status.code(), Some(0), "{name} ({url}):\n{}", stderr(&out));
        let ours = stdout(&out);
        let (columns, rows) = rows_of_csv(&ours);
        let (duck_columns, duck_rows) = rows_of_csv(duck);
        assert_eq!(columns, duck_columns, "{name}: columns");
        let differ: Vec<_> = rows.iter().zip(&duck_rows).filter(|(a, b)| !same(a, b)).take(3).collect();
        assert!(
            rows.len() == duck_rows.len() && differ.is_empty(),
            "{name} ({url}): assay and DuckDB disagree: {} rows and {}; first differences (assay, DuckDB): {differ:?}",
            rows.len(),
            duck_rows.len()
        );
        if !rows.is_empty() {
            nonempty += 1;
        }
    }
    assert!(nonempty >= 10, "most use cases find rows in the generated data: {nonempty}");
}

#[test]
fn a_query_unquoted_in_any_case_answers_as_the_same_query_quoted() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    common::scale::billing(dir, &["--days", "40", "--start", FROM, "--seed", "9"]);
    let run = |sql: &str| -> Value {
        let out = assay(dir, &["cost", "--data", "data", "query", "--format", "json", sql]);
        assert_eq!(out.status.code(), Some(0), "{sql}: {}", stderr(&out));
        serde_json::from_str(&stdout(&out)).expect("JSON")
    };
    let quoted = run(
        r#"SELECT "ServiceName", SUM("EffectiveCost") AS "Total" FROM focus WHERE "Tags"['cost-center'] IS NOT NULL
           GROUP BY "ServiceName" ORDER BY "Total" DESC, "ServiceName""#,
    );
    assert!(quoted.as_array().is_some_and(|r| r.len() > 1), "{quoted}");
    for sql in [
        "SELECT ServiceName, SUM(EffectiveCost) AS Total FROM focus WHERE Tags['cost-center'] IS NOT NULL \
         GROUP BY ServiceName ORDER BY Total DESC, ServiceName",
        "select servicename, sum(effectivecost) as Total from FOCUS where tags['cost-center'] is not null \
         group by SERVICENAME order by total desc, servicename",
        "SELECT ServiceName, SUM(EffectiveCost) AS Total FROM focus_data_table WHERE TAGS['cost-center'] IS NOT NULL \
         GROUP BY 1 ORDER BY 2 DESC, 1",
    ] {
        assert_eq!(run(sql), quoted, "{sql}");
    }
    // Ratios of large sums: decimals divide in double precision, as in DuckDB, instead of
    // overflowing DataFusion's scaled decimal division.
    let sums = run("SELECT SUM(EffectiveCost) AS e, SUM(ListCost) AS l FROM focus");
    let number = |v: &Value| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).expect("a number");
    let (effective, list) = (number(&sums[0]["e"]), number(&sums[0]["l"]));
    assert!(effective > 100_000.0, "large enough to overflow a scaled decimal division: {effective}");
    let ratio = run(
        "SELECT SUM(EffectiveCost) / SUM(ListCost) AS EffectiveOverList, SUM(BilledCost) / 30 AS PerDay FROM focus",
    );
    assert!((number(&ratio[0]["EffectiveOverList"]) - effective / list).abs() < 1e-9, "{ratio}");
    assert!(number(&ratio[0]["PerDay"]) > 0.0, "{ratio}");

    // A name that is neither a column nor an alias is still an error that says so.
    let out = assay(dir, &["cost", "--data", "data", "query", "SELECT ServiceNam FROM focus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("servicenam"), "{}", stderr(&out));
    // Placeholders and values must match.
    let out = assay(dir, &["cost", "--data", "data", "query", "SELECT * FROM focus WHERE BilledCost > ?"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("1 `?` placeholder(s) and 0 value(s)"), "{}", stderr(&out));
}

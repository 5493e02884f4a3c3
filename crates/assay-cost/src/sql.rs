//! SQL as FinOps practitioners write it. The FinOps Foundation publishes its FOCUS use cases as
//! SQL with the column names as the specification spells them, unquoted
//! (`SELECT ServiceName, SUM(BilledCost) FROM focus_data_table ...`), and DuckDB, Athena and
//! BigQuery take them so, in any case. DataFusion folds unquoted identifiers to lower case, so
//! before planning, a query's unquoted identifiers that name a FOCUS column (in any case) are
//! given the column's own spelling, and the aliases it defines keep the case they were written in
//! (and are found in any case, as those engines find them). Quoted identifiers are left as they
//! are. `?` placeholders are numbered in order (`$1`, `$2`, ...), as JDBC and DuckDB number
//! them, and bound to the values given. `YEAR(x)`, `MONTH(x)`, `DAY(x)` and their kin, which the
//! use-case library calls, are DataFusion's `date_part('month', x)`.
//!
//! The table is `focus`; `focus_data_table`, the name the use-case library queries, is the same
//! table.
//!
//! Costs are exact decimals (`Decimal128(38, 16)`), and DataFusion divides decimals as decimals,
//! scaling the dividend up first: `SUM(EffectiveCost) / SUM(ListCost)` overflows as soon as the
//! sum passes a few thousand. [`DecimalDivision`] divides them as DuckDB does, in double
//! precision, so ratios (savings rates, utilisation, unit costs) work at any size.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, ObjectNamePart, Query, SelectItem,
    SetExpr, Value, VisitMut, VisitorMut,
};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, config::ConfigOptions};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{BinaryExpr, ExprSchemable, LogicalPlan, Operator, cast};
use datafusion::optimizer::AnalyzerRule;
use datafusion::prelude::Expr as Plan;

use crate::spec::COLUMNS;
use crate::{Error, Result, Store};

/// Other names of the table `focus`.
pub const TABLE_ALIASES: &[&str] = &["focus_data_table"];

/// Runs one SQL statement over the store, `params` bound to its placeholders in order.
pub async fn query(store: &Store, sql: &str, params: &[String]) -> Result<Vec<RecordBatch>> {
    let ctx = store.session().await?;
    let focus = ctx.table_provider("focus").await.map_err(|e| Error::Query(e.to_string()))?;
    for alias in TABLE_ALIASES {
        ctx.register_table(*alias, focus.clone()).map_err(|e| Error::Query(e.to_string()))?;
    }
    run(&ctx, sql, params).await
}

/// Plans and runs `sql` in `ctx` with FOCUS identifiers resolved (see the module's comment).
pub async fn run(ctx: &SessionContext, sql: &str, params: &[String]) -> Result<Vec<RecordBatch>> {
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let mut statement = state.sql_to_statement(sql, &dialect).map_err(|e| Error::Query(e.to_string()))?;
    let placeholders = resolve(&mut statement);
    // Without `?`, values are for the `$1`, `$2`, ... the query names itself.
    if placeholders > 0 && placeholders != params.len() {
        return Err(Error::Query(format!(
            "the query has {placeholders} `?` placeholder(s) and {} value(s) were given",
            params.len()
        )));
    }
    let plan = state.statement_to_plan(statement).await.map_err(|e| Error::Query(e.to_string()))?;
    let mut frame = ctx.execute_logical_plan(plan).await.map_err(|e| Error::Query(e.to_string()))?;
    if !params.is_empty() {
        let values: Vec<ScalarValue> = params.iter().map(|p| ScalarValue::Utf8(Some(p.clone()))).collect();
        frame = frame.with_param_values(ParamValues::from(values)).map_err(|e| Error::Query(e.to_string()))?;
    }
    let schema = std::sync::Arc::new(frame.schema().as_arrow().clone());
    let mut batches = frame.collect().await.map_err(|e| Error::Query(e.to_string()))?;
    // An answer without rows still has its columns (a CSV header, a table's head).
    if batches.is_empty() {
        batches.push(RecordBatch::new_empty(schema));
    }
    Ok(batches)
}

/// Rewrites a statement's identifiers and placeholders; returns how many `?` it had.
pub fn resolve(statement: &mut Statement) -> usize {
    let mut resolver = Resolver::default();
    resolve_in(statement, &mut resolver);
    resolver.placeholders
}

fn resolve_in(statement: &mut Statement, resolver: &mut Resolver) {
    match statement {
        Statement::Statement(sql) => {
            let _ = sql.as_mut().visit(resolver);
        }
        Statement::Explain(explain) => resolve_in(&mut explain.statement, resolver),
        _ => {}
    }
}

/// Divides decimals in double precision (see the module's comment). Runs before DataFusion's
/// type coercion, so that what uses the quotient is coerced to a double too.
#[derive(Debug)]
pub struct DecimalDivision;

impl AnalyzerRule for DecimalDivision {
    fn name(&self) -> &str {
        "assay_decimal_division"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> datafusion::common::Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let Some(schema) = input_schema(&node) else { return Ok(Transformed::no(node)) };
            let names = NamePreserver::new(&node);
            let rewritten = node.map_expressions(|e| {
                let saved = names.save(&e);
                let t = e.transform_up(|e| divide_as_double(e, &schema))?;
                Ok(if t.transformed { Transformed::yes(saved.restore(t.data)) } else { t })
            })?;
            if rewritten.transformed { rewritten.map_data(LogicalPlan::recompute_schema) } else { Ok(rewritten) }
        })
        .map(|t| t.data)
    }
}

/// What a node's expressions are evaluated against: its inputs' columns together.
fn input_schema(node: &LogicalPlan) -> Option<DFSchema> {
    let inputs = node.inputs();
    let (first, rest) = inputs.split_first()?;
    rest.iter().try_fold(first.schema().as_ref().clone(), |all, next| all.join(next.schema()).ok())
}

fn divide_as_double(e: Plan, schema: &DFSchema) -> datafusion::common::Result<Transformed<Plan>> {
    let Plan::BinaryExpr(BinaryExpr { left, op: Operator::Divide, right }) = &e else {
        return Ok(Transformed::no(e));
    };
    let decimal = |t: &DataType| matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..));
    match (left.get_type(schema), right.get_type(schema)) {
        (Ok(l), Ok(r)) if (decimal(&l) || decimal(&r)) && l.is_numeric() && r.is_numeric() => {
            let (left, right) = (cast((**left).clone(), DataType::Float64), cast((**right).clone(), DataType::Float64));
            Ok(Transformed::yes(Plan::BinaryExpr(BinaryExpr::new(Box::new(left), Operator::Divide, Box::new(right)))))
        }
        _ => Ok(Transformed::no(e)),
    }
}

/// Functions of one date or time that other engines have and DataFusion spells `date_part`.
const DATE_PARTS: &[&str] = &["YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE"];

/// The spelling of the FOCUS column named `name` in any case.
fn column(name: &str) -> Option<&'static str> {
    COLUMNS.iter().find(|c| c.name.eq_ignore_ascii_case(name)).map(|c| c.name)
}

#[derive(Default)]
struct Resolver {
    /// Aliases the query defines, by their lower-case spelling.
    aliases: HashMap<String, String>,
    placeholders: usize,
}

impl Resolver {
    /// Quotes the aliases of a query's select lists so that they keep their case.
    fn aliases_of(&mut self, body: &mut SetExpr) {
        match body {
            SetExpr::Select(select) => {
                for item in &mut select.projection {
                    if let SelectItem::ExprWithAlias { alias, .. } = item
                        && alias.quote_style.is_none()
                    {
                        let spelled = column(&alias.value).map_or_else(|| alias.value.clone(), str::to_string);
                        self.aliases.insert(spelled.to_lowercase(), spelled.clone());
                        *alias = Ident::with_quote('"', spelled);
                    }
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                self.aliases_of(left);
                self.aliases_of(right);
            }
            _ => {}
        }
    }

    fn ident(&self, id: &mut Ident) {
        if id.quote_style.is_some() {
            return;
        }
        let spelled =
            column(&id.value).map(str::to_string).or_else(|| self.aliases.get(&id.value.to_lowercase()).cloned());
        if let Some(spelled) = spelled {
            *id = Ident::with_quote('"', spelled);
        }
    }
}

impl VisitorMut for Resolver {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        self.aliases_of(&mut query.body);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Identifier(id) => self.ident(id),
            // `f.ServiceName`: the table's name or alias is left to DataFusion.
            Expr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last_mut() {
                    self.ident(last);
                }
            }
            Expr::Value(v) if matches!(&v.value, Value::Placeholder(p) if p == "?") => {
                self.placeholders += 1;
                v.value = Value::Placeholder(format!("${}", self.placeholders));
            }
            // `MONTH(ChargePeriodStart)`, as MySQL, DuckDB and BigQuery's dialects write it (the
            // use-case library does): DataFusion's `date_part('month', ...)`.
            Expr::Function(f) => {
                let part = match f.name.0.as_slice() {
                    [ObjectNamePart::Identifier(id)] if id.quote_style.is_none() => {
                        DATE_PARTS.iter().find(|p| p.eq_ignore_ascii_case(&id.value))
                    }
                    _ => None,
                };
                if let (Some(part), FunctionArguments::List(list)) = (part, &mut f.args)
                    && list.args.len() == 1
                {
                    let literal = Expr::Value(Value::SingleQuotedString(part.to_lowercase()).into());
                    list.args.insert(0, FunctionArg::Unnamed(FunctionArgExpr::Expr(literal)));
                    f.name = ObjectName::from(vec![Ident::new("date_part")]);
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::parser::DFParser;

    use super::*;

    /// The statement as DataFusion will plan it, and its placeholders.
    fn resolved(sql: &str) -> (String, usize) {
        let mut statements = DFParser::parse_sql(sql).expect("parses");
        let mut statement = statements.pop_front().expect("a statement");
        let n = resolve(&mut statement);
        (statement.to_string(), n)
    }

    #[test]
    fn focus_columns_take_their_own_spelling_in_any_case() {
        let (sql, _) = resolved("SELECT servicename, SERVICENAME, ServiceName, BillingAccountID FROM focus_data_table");
        assert_eq!(
            sql,
            r#"SELECT "ServiceName", "ServiceName", "ServiceName", "BillingAccountId" FROM focus_data_table"#
        );
        // Qualified, inside functions and conditions, and map access on Tags.
        let (sql, _) = resolved("SELECT f.effectivecost, SUM(BilledCost) FROM focus f WHERE tags['team'] = 'ml'");
        assert_eq!(sql, r#"SELECT f."EffectiveCost", SUM("BilledCost") FROM focus f WHERE "Tags"['team'] = 'ml'"#);
    }

    #[test]
    fn quoted_names_and_other_names_are_left_alone() {
        let (sql, _) = resolved(r#"SELECT "servicename", x, count(*) FROM focus"#);
        assert_eq!(sql, r#"SELECT "servicename", x, count(*) FROM focus"#);
    }

    #[test]
    fn aliases_keep_their_case_and_are_found_in_any_case() {
        let (sql, _) = resolved(
            "SELECT SUM(BilledCost) AS TotalBilledCost FROM focus GROUP BY ServiceName HAVING totalbilledcost > 1 \
             ORDER BY TotalBilledCost DESC",
        );
        assert_eq!(
            sql,
            r#"SELECT SUM("BilledCost") AS "TotalBilledCost" FROM focus GROUP BY "ServiceName" HAVING "TotalBilledCost" > 1 ORDER BY "TotalBilledCost" DESC"#
        );
        // An alias spelled like a column takes the column's spelling.
        let (sql, _) = resolved("SELECT MIN(ChargePeriodStart) AS chargeperiodstart FROM focus");
        assert_eq!(sql, r#"SELECT MIN("ChargePeriodStart") AS "ChargePeriodStart" FROM focus"#);
    }

    #[test]
    fn question_marks_are_numbered_and_date_functions_become_date_part() {
        let (sql, n) = resolved(
            "SELECT MONTH(ChargePeriodStart), year(ChargePeriodStart) FROM focus WHERE ChargePeriodStart >= ? AND \
             ChargePeriodEnd < ? AND ProviderName = ?",
        );
        assert_eq!(n, 3);
        assert_eq!(
            sql,
            r#"SELECT date_part('month', "ChargePeriodStart"), date_part('year', "ChargePeriodStart") FROM focus WHERE "ChargePeriodStart" >= $1 AND "ChargePeriodEnd" < $2 AND "ProviderName" = $3"#
        );
    }
}

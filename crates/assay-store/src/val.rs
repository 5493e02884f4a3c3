//! Values in and out of the store, the same on both engines.

use bytes::BytesMut;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::{Error, Result};

/// A parameter: borrowed, so passing one costs no copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val<'a> {
    /// SQL NULL.
    Null,
    /// An integer (booleans are 0 and 1, as SQLite keeps them).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Bytes(&'a [u8]),
}

impl From<i64> for Val<'_> {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<u32> for Val<'_> {
    fn from(v: u32) -> Self {
        Val::Int(i64::from(v))
    }
}
impl From<bool> for Val<'_> {
    fn from(v: bool) -> Self {
        Val::Int(i64::from(v))
    }
}
impl From<f64> for Val<'_> {
    fn from(v: f64) -> Self {
        Val::Real(v)
    }
}
impl<'a> From<&'a str> for Val<'a> {
    fn from(v: &'a str) -> Self {
        Val::Text(v)
    }
}
impl<'a> From<&'a String> for Val<'a> {
    fn from(v: &'a String) -> Self {
        Val::Text(v)
    }
}
impl<'a> From<&'a [u8]> for Val<'a> {
    fn from(v: &'a [u8]) -> Self {
        Val::Bytes(v)
    }
}
impl<'a> From<&'a Vec<u8>> for Val<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Val::Bytes(v)
    }
}
impl<'a, T: Into<Val<'a>>> From<Option<T>> for Val<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

/// Parameters for a call: `vals![a, b, c]`.
#[macro_export]
macro_rules! vals {
    ($($v:expr),* $(,)?) => { [$($crate::Val::from($v)),*] };
}

impl rusqlite::ToSql for Val<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Val::Null => ValueRef::Null,
            Val::Int(i) => ValueRef::Integer(i),
            Val::Real(f) => ValueRef::Real(f),
            Val::Text(s) => ValueRef::Text(s.as_bytes()),
            Val::Bytes(b) => ValueRef::Blob(b),
        }))
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// PostgreSQL infers each parameter's type from the statement; a value goes in as that type
/// when it fits (an integer into `int4` or `float8`, for instance), and is refused otherwise.
impl ToSql for Val<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match *self {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                _ => Err(format!("an integer given for a parameter of type {ty}").into()),
            },
            Val::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                _ => Err(format!("a number given for a parameter of type {ty}").into()),
            },
            Val::Text(s) => s.to_sql(ty, out),
            Val::Bytes(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

pub(crate) fn pg_params<'a>(params: &'a [Val<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// One column's value in a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// An integer (or a boolean, as 0 or 1).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// One row of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(Vec<Cell>);

impl Row {
    pub(crate) fn from_sqlite(r: &rusqlite::Row<'_>, n: usize) -> Result<Row> {
        use rusqlite::types::ValueRef;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            out.push(match r.get_ref(i)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Real(v) => Cell::Real(v),
                ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
            });
        }
        Ok(Row(out))
    }

    pub(crate) fn from_postgres(r: &postgres::Row) -> Result<Row> {
        let bad = |e: postgres::Error| Error::Type(e.to_string());
        let mut out = Vec::with_capacity(r.len());
        for (i, column) in r.columns().iter().enumerate() {
            let v = match *column.type_() {
                Type::INT8 => r.try_get::<_, Option<i64>>(i).map_err(bad)?.map(Cell::Int),
                Type::INT4 => r.try_get::<_, Option<i32>>(i).map_err(bad)?.map(|v| Cell::Int(v.into())),
                Type::INT2 => r.try_get::<_, Option<i16>>(i).map_err(bad)?.map(|v| Cell::Int(v.into())),
                Type::BOOL => r.try_get::<_, Option<bool>>(i).map_err(bad)?.map(|v| Cell::Int(v.into())),
                Type::FLOAT8 => r.try_get::<_, Option<f64>>(i).map_err(bad)?.map(Cell::Real),
                Type::FLOAT4 => r.try_get::<_, Option<f32>>(i).map_err(bad)?.map(|v| Cell::Real(v.into())),
                Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i).map_err(bad)?.map(Cell::Bytes),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    r.try_get::<_, Option<String>>(i).map_err(bad)?.map(Cell::Text)
                }
                ref other => {
                    return Err(Error::Type(format!(
                        "column {} is of type {other}, which the store does not read (cast it in the query)",
                        column.name()
                    )));
                }
            };
            out.push(v.unwrap_or(Cell::Null));
        }
        Ok(Row(out))
    }

    /// The value of column `i` as `T`.
    pub fn get<T: FromVal>(&self, i: usize) -> Result<T> {
        let v = self.0.get(i).ok_or_else(|| Error::Type(format!("no column {i} in a row of {}", self.0.len())))?;
        T::from_val(v)
            .ok_or_else(|| Error::Type(format!("column {i} holds {v:?}, not a {}", std::any::type_name::<T>())))
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A Rust type a column's value converts to.
pub trait FromVal: Sized {
    /// The value, when the cell holds one of this type.
    fn from_val(v: &Cell) -> Option<Self>;
}

impl FromVal for i64 {
    fn from_val(v: &Cell) -> Option<Self> {
        match v {
            Cell::Int(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromVal for u64 {
    fn from_val(v: &Cell) -> Option<Self> {
        i64::from_val(v).and_then(|i| u64::try_from(i).ok())
    }
}
impl FromVal for u32 {
    fn from_val(v: &Cell) -> Option<Self> {
        i64::from_val(v).and_then(|i| u32::try_from(i).ok())
    }
}
impl FromVal for bool {
    fn from_val(v: &Cell) -> Option<Self> {
        i64::from_val(v).map(|i| i != 0)
    }
}
impl FromVal for f64 {
    fn from_val(v: &Cell) -> Option<Self> {
        match v {
            Cell::Real(f) => Some(*f),
            Cell::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}
impl FromVal for String {
    fn from_val(v: &Cell) -> Option<Self> {
        match v {
            Cell::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl FromVal for Vec<u8> {
    fn from_val(v: &Cell) -> Option<Self> {
        match v {
            Cell::Bytes(b) => Some(b.clone()),
            Cell::Text(s) => Some(s.as_bytes().to_vec()),
            _ => None,
        }
    }
}
impl<T: FromVal> FromVal for Option<T> {
    fn from_val(v: &Cell) -> Option<Self> {
        match v {
            Cell::Null => Some(None),
            v => T::from_val(v).map(Some),
        }
    }
}

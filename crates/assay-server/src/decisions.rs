//! Decisions as ledger records: each decision gets a random id and becomes an
//! `assay.dev/record/decision` record (built by `assay-record`), masked by the estate's
//! `data.system.log.mask` (`assay_policy::mask`) before it is queued for the ledger.

use assay_record::{DecisionRecord, Record};
use serde_json::Value;

use crate::active::Active;

/// A new decision id (a random UUID).
pub(crate) fn decision_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A decision record.
pub(crate) fn record(id: &str, path: &str, input: &Value, result: Option<&Value>, active: &Active) -> Record {
    Record::Decision(DecisionRecord::new(id, path, input, result, active.estate_at()))
}

/// What of a decision's input goes into its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecisionInputs {
    /// Its digest and, of an admission review, what names the request (the default).
    #[default]
    Summary,
    /// The whole input (and its digest), less what `data.system.log.mask` erases.
    Masked,
}

/// Reduces a decision record's input as `inputs` says, then applies the revision's
/// `data.system.log.mask` (other records are left as they are).
pub(crate) fn mask(active: &Active, inputs: DecisionInputs, record: &mut Record) {
    let Record::Decision(d) = record else { return };
    match inputs {
        DecisionInputs::Summary => d.summarize_input(),
        DecisionInputs::Masked => d.digest_input(),
    }
    if !active.has_mask {
        return;
    }
    let m = assay_policy::mask::apply(&active.policies, &d.decision_id, &d.path, d.input.take(), d.result.take());
    d.input = m.input;
    d.result = m.result;
    d.erased = m.erased;
    d.masked = m.masked;
    d.mask_error = m.error;
}

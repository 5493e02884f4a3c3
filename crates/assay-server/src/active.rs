//! The active revision: the compiled estate that every request is decided with, swapped whole
//! so that requests in flight keep the revision they started with.

use std::sync::{Arc, RwLock};

use assay_estate::settings::Actions;
use assay_policy::PolicySet;
use assay_record::EstateAt;

use crate::follow::Candidate;

/// One compiled revision of the estate.
pub(crate) struct Active {
    pub(crate) policies: PolicySet,
    pub(crate) revision: String,
    pub(crate) commit: Option<String>,
    pub(crate) require_signed: bool,
    pub(crate) name: Option<String>,
    pub(crate) since: String,
    pub(crate) diagnostics: Vec<String>,
    /// What event policies' findings trigger.
    pub(crate) actions: Actions,
    /// Whether a `system.log` package may define `mask` for decision records.
    pub(crate) has_mask: bool,
    /// The residency rules that lineage flows are checked against.
    pub(crate) residency: assay_estate::residency::Residency,
    /// The revision without its manifests (see `manifests`), for what compares it with live
    /// state (the drift watch) and reads its settings, budgets and prices.
    pub(crate) estate: std::sync::Arc<assay_estate::Estate>,
    /// The revision's manifests, packed: held for as long as the revision is active, and parsed
    /// one at a time when compared with the cluster (37 MB parsed for ten thousand
    /// Deployments, 4 MB packed).
    pub(crate) manifests: std::sync::Arc<[assay_estate::PackedObject]>,
    /// The revision's verdict, as `assay check` gives it: worked out when first asked for.
    pub(crate) verdict: std::sync::OnceLock<std::sync::Arc<assay_verdict::Verdict>>,
    /// Answers of the read pages worked out with this revision.
    pub(crate) views: crate::view_cache::Views,
}

impl Active {
    /// A candidate made the active revision, now.
    pub(crate) fn from_candidate(candidate: Candidate) -> Active {
        // Shared, not copied: a large estate (thousands of manifests) is held once, and its
        // manifests packed (the policies are compiled already).
        let mut estate = candidate.estate;
        let manifests = std::mem::take(&mut estate.manifests).iter().map(assay_estate::PackedObject::pack).collect();
        let estate = std::sync::Arc::new(estate);
        let has_mask = assay_policy::mask::defines_mask(&estate.policies);
        let diagnostics =
            estate.diagnostics.iter().chain(candidate.policies.diagnostics.iter()).map(|d| d.to_string()).collect();
        Active {
            revision: estate.revision(),
            commit: candidate.commit,
            require_signed: estate.settings.require_signed,
            name: estate.settings.name.clone(),
            policies: candidate.policies,
            since: assay_record::Time::now().to_string(),
            diagnostics,
            actions: estate.settings.actions.clone(),
            has_mask,
            residency: estate.residency.clone(),
            estate: std::sync::Arc::clone(&estate),
            manifests,
            verdict: std::sync::OnceLock::new(),
            views: crate::view_cache::Views::default(),
        }
    }

    /// The whole revision, its manifests parsed again: for what judges it as `assay check` does.
    pub(crate) fn whole_estate(&self) -> assay_estate::Estate {
        let mut estate = assay_estate::Estate::clone(&self.estate);
        estate.manifests = self.manifests.iter().map(assay_estate::PackedObject::unpack).collect();
        estate
    }

    /// What the next head is judged against.
    pub(crate) fn baseline(&self) -> crate::follow::Baseline {
        crate::follow::Baseline {
            revision: self.revision.clone(),
            commit: self.commit.clone(),
            require_signed: self.require_signed,
        }
    }

    /// The revision, as run-time records name it.
    pub(crate) fn estate_at(&self) -> EstateAt {
        EstateAt { name: self.name.clone(), revision: self.revision.clone() }
    }
}

/// Where the active revision is kept: read by every request, replaced on activation. The lock
/// is only held to clone or replace an `Arc`.
pub(crate) struct ActiveCell(RwLock<Arc<Active>>);

impl ActiveCell {
    pub(crate) fn new(active: Active) -> ActiveCell {
        ActiveCell(RwLock::new(Arc::new(active)))
    }

    /// The active revision.
    pub(crate) fn get(&self) -> Arc<Active> {
        Arc::clone(&self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Makes `next` the active revision.
    pub(crate) fn set(&self, next: Arc<Active>) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
    }
}
